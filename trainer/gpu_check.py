#!/usr/bin/env python3
"""GPU check of the project's own trainer (issue 7): the same trainer, the tiny model, on CUDA.

    python3 trainer/gpu_check.py --dataset-dir EXPORT --dataset mella_train --out DIR [--steps 60]

Runs trainer/mella_train.py as a child process, the way the fine-tune activity does, and reads its
protocol lines (docs/trainer.md):
  1. LoRA on CUDA for --steps steps (bf16 where the card supports it), checkpoints every steps/3;
  2. a crash and resume on CUDA: a run SIGKILLed after its second checkpoint is started again with the
     same output dir, and must resume from the latest complete checkpoint with the step continuing;
  3. full fine-tuning on CUDA, a few steps;
  4. the same LoRA run on the CPU of the same machine, for a side-by-side steps/s.
Prints one line per run and `GPU_CHECK {json}` with every figure; writes the figures, the protocol lines
and each run's trainer_log.jsonl under --out. Exit 0 only when every run did what it must.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "mella_train.py")


def gpu_memory_sampler() -> tuple[Any, Any]:
    """Samples the GPU's used memory (nvidia-smi) every 0.2 s until stopped; returns (stop, peak())."""
    import threading

    peak = [None]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                used = int(subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                          capture_output=True, text=True, timeout=5).stdout.split()[0])
                peak[0] = used if peak[0] is None else max(peak[0], used)
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                pass
            stop.wait(0.2)

    threading.Thread(target=loop, daemon=True).start()
    return stop, lambda: peak[0]


def run_trainer(args: list[str], log_path: str, kill_after_checkpoints: int = 0) -> dict[str, Any]:
    """One trainer process; its protocol lines parsed. With kill_after_checkpoints, SIGKILL it then."""
    started = time.monotonic()
    stop_sampler, gpu_peak = gpu_memory_sampler()
    proc = subprocess.Popen([sys.executable, TRAIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: dict[str, Any] = {"progress": [], "checkpoints": [], "start": None, "done": None, "error": None, "resume": None, "killed": False}
    with open(log_path, "w", encoding="utf-8") as log:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            kind, _, rest = line.strip().partition(" ")
            if kind == "MELLA_START":
                out["start"] = json.loads(rest)
                out["first_step_at"] = time.monotonic()
            elif kind == "MELLA_PROGRESS":
                out["progress"].append(json.loads(rest))
            elif kind == "MELLA_CHECKPOINT":
                out["checkpoints"].append(rest)
                if kill_after_checkpoints and len(out["checkpoints"]) >= kill_after_checkpoints:
                    proc.send_signal(signal.SIGKILL)
                    out["killed"] = True
            elif kind == "MELLA_RESUME":
                out["resume"] = rest
            elif kind == "MELLA_DONE":
                out["done"] = json.loads(rest)
            elif kind == "MELLA_ERROR":
                out["error"] = json.loads(rest)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    out["exit_code"] = proc.wait()
    stop_sampler.set()
    out["gpu_mem_peak_mib"] = gpu_peak()
    out["wall_s"] = round(time.monotonic() - started, 2)
    if "first_step_at" in out:
        out["train_s"] = round(time.monotonic() - out.pop("first_step_at"), 2)
    if out["exit_code"] not in (0, -signal.SIGKILL):
        out["stderr_tail"] = stderr[-3000:]
    return out


def summary(name: str, r: dict[str, Any]) -> dict[str, Any]:
    steps = [p.get("current_steps") for p in r["progress"]]
    losses = [p.get("loss") for p in r["progress"] if p.get("loss") is not None]
    s = {
        "run": name,
        "exit_code": r["exit_code"],
        "device": (r["start"] or {}).get("device"),
        "dtype": (r["start"] or {}).get("dtype"),
        "first_step": steps[0] if steps else None,
        "last_step": steps[-1] if steps else None,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "checkpoints": len(r["checkpoints"]),
        "resume": r["resume"],
        "wall_s": r["wall_s"],
        "train_s": r.get("train_s"),
    }
    if r["done"]:
        s["done"] = {k: r["done"].get(k) for k in ("total_steps", "final_loss", "train_loss", "train_runtime", "method")}
        s["final_files"] = len(r["done"].get("files", []))
    if r["start"]:
        s["trainable_params"] = r["start"].get("trainable_params")
        s["total_params"] = r["start"].get("total_params")
        s["num_samples"] = r["start"].get("num_samples")
    if r.get("gpu_mem_peak_mib") is not None:
        s["gpu_mem_peak_mib"] = r["gpu_mem_peak_mib"]
    # The trainer's own train_runtime (the optimisation loop alone) where it finished; else from MELLA_START on.
    runtime = (r["done"] or {}).get("train_runtime") or s.get("train_s")
    if s["first_step"] is not None and s["last_step"] is not None and runtime:
        s["steps_per_s"] = round((s["last_step"] - s["first_step"] + 1) / runtime, 2)
    if r["error"]:
        s["error"] = r["error"]
    if "stderr_tail" in r:
        s["stderr_tail"] = r["stderr_tail"]
    return s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--dataset", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--cpu-steps", type=int, default=60)
    p.add_argument("--device", default="cuda", help="the device under test (cpu: a dry run of this script where no GPU is)")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)

    import torch  # the device's own torch

    env = {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    }
    for mod in ("transformers", "peft", "tokenizers", "accelerate"):
        env[mod] = __import__(mod).__version__
    print("environment", json.dumps(env), flush=True)
    if a.device.startswith("cuda") and not env["cuda_available"]:
        print("GPU_CHECK", json.dumps({"ok": False, "why": "CUDA is not available", "env": env}))
        return 1

    base = ["--dataset-dir", a.dataset_dir, "--logging-steps", "1", "--seed", "7"]
    if a.dataset:
        base += ["--dataset", a.dataset]
    every = max(1, a.steps // 3)
    runs: list[dict[str, Any]] = []
    checks: dict[str, bool] = {}

    def go(name: str, extra: list[str], kill: int = 0, output: str | None = None) -> dict[str, Any]:
        out_dir = output or os.path.join(a.out, name)
        r = run_trainer([*base, "--output", out_dir, *extra], os.path.join(a.out, f"{name}.protocol.log"), kill)
        s = summary(name, r)
        runs.append(s)
        print(name, json.dumps(s), flush=True)
        tl = os.path.join(out_dir, "trainer_log.jsonl")
        if os.path.exists(tl):
            with open(tl, encoding="utf-8") as f, open(os.path.join(a.out, f"{name}.trainer_log.jsonl"), "w", encoding="utf-8") as g:
                g.write(f.read())
        return s

    lora = go("lora-cuda", ["--device", a.device, "--max-steps", str(a.steps), "--save-steps", str(every)])
    checks["lora_cuda_done"] = lora["exit_code"] == 0 and lora["last_step"] == a.steps and lora["device"] is not None and str(lora["device"]).startswith(a.device)
    checks["lora_cuda_loss_fell"] = lora["first_loss"] is not None and lora["last_loss"] is not None and lora["last_loss"] < lora["first_loss"]

    resume_dir = os.path.join(a.out, "resume-cuda")
    killed = go("resume-cuda-killed", ["--device", a.device, "--max-steps", str(a.steps), "--save-steps", str(every)], kill=2, output=resume_dir)
    resumed = go("resume-cuda-resumed", ["--device", a.device, "--max-steps", str(a.steps), "--save-steps", str(every)], output=resume_dir)
    checks["killed_mid_run"] = killed["exit_code"] == -signal.SIGKILL and killed["checkpoints"] >= 2
    checks["resumed_from_checkpoint"] = resumed["resume"] is not None and f"step={2 * every}" in resumed["resume"]
    checks["step_continued"] = resumed["first_step"] == 2 * every + 1 and resumed["last_step"] == a.steps and resumed["exit_code"] == 0

    full = go("full-cuda", ["--device", a.device, "--method", "full", "--max-steps", "10", "--save-steps", "0"])
    checks["full_cuda_done"] = full["exit_code"] == 0 and full["last_step"] == 10

    cpu = go("lora-cpu", ["--device", "cpu", "--max-steps", str(a.cpu_steps), "--save-steps", "0"])
    checks["lora_cpu_done"] = cpu["exit_code"] == 0 and cpu["last_step"] == a.cpu_steps

    speedup = None
    if lora.get("steps_per_s") and cpu.get("steps_per_s"):
        speedup = round(lora["steps_per_s"] / cpu["steps_per_s"], 2)
    result = {"ok": all(checks.values()), "checks": checks, "env": env, "cuda_vs_cpu_steps_per_s": speedup, "runs": runs}
    with open(os.path.join(a.out, "gpu_check.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print("GPU_CHECK", json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
