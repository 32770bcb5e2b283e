"""The training run: dataset -> model -> deterministic loop with atomic checkpoints -> final/."""

from __future__ import annotations

import json
import math
import os
import random
import re
import resource
import shutil
import signal
import sys
import time
from datetime import timedelta
from typing import Any

from . import checkpoints as ck
from .data import ChatEncoder, IGNORE_INDEX, LoadedDataset, Schedule, dataset_texts, load_dataset, make_schedule
from .protocol import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    ConfigError,
    DatasetError,
    emit,
    emit_json,
    note,
    to_json_line,
)

SUPPORTED_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")
TINY = "tiny-random"
LORA_TARGETS_ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FINGERPRINT_KEYS = (
    "model", "method", "lora_rank", "lora_alpha", "lora_dropout", "lora_target", "additional_target", "freeze_vision_tower",
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "lr_scheduler_type", "warmup_ratio", "warmup_steps", "weight_decay", "max_grad_norm", "seed", "cutoff_len",
    "image_max_pixels", "default_system", "tiny_vocab_size",
)


class Interrupted(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_SIGINT if self.signum == signal.SIGINT else EXIT_SIGTERM


class StopFlag:
    """SIGTERM/SIGINT: inside the loop, stop at the next step boundary; elsewhere (loading, a second
    signal while saving), stop now. Nothing half-written can look complete either way."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.in_loop = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if not self.in_loop or not first:
            raise Interrupted(signum)
        note(f"signal {signal.Signals(signum).name}: stopping at the next step boundary")


def _hms(seconds: float) -> str:
    return str(timedelta(seconds=int(max(0, seconds))))


def _write_json_atomic(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _fingerprint(args: Any, ds: LoadedDataset) -> dict[str, Any]:
    """What makes two attempts the same run: the settings that shape the model, the data and its order.
    (Sample count after the cutoff and total steps follow from these.) Not: device, dtype, logging, saving."""
    fp = {k: getattr(args, k) for k in FINGERPRINT_KEYS}
    if args.model != TINY:
        fp["model"] = os.path.abspath(args.model)
    fp.update(dataset=ds.names, dataset_hash=ds.content_hash)
    return fp


def _differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


class Trainer:
    def __init__(self, args: Any, stop: StopFlag) -> None:
        self.args = args
        self.stop = stop
        self.output = os.path.abspath(args.output)

    # --- setup ---------------------------------------------------------------------------------------

    def prepare_output(self) -> None:
        os.makedirs(self.output, exist_ok=True)
        self.lock = ck.OutputLock(self.output)
        self.lock.acquire()
        if self.args.resume == "never":
            leftovers = [n for n in os.listdir(self.output) if ck.CHECKPOINT_RE.match(n) or n in ("final", "trainer_log.jsonl")]
            if leftovers and not self.args.overwrite_output:
                raise ConfigError(
                    f"{self.output} holds a previous run ({', '.join(sorted(leftovers)[:4])}); "
                    "use --resume auto, a new --output, or --overwrite-output",
                    output=self.output,
                )
            for n in leftovers + (["base-model"] if self.args.overwrite_output else []):
                full = os.path.join(self.output, n)
                if os.path.isdir(full):
                    ck.remove_dir(full)
                elif os.path.exists(full):
                    os.unlink(full)

    def finished_summary(self) -> dict[str, Any] | None:
        """A retry after the run had already finished: final/ is complete, nothing to do."""
        final = os.path.join(self.output, "final")
        marker = ck.read_marker(final)
        if self.args.resume == "never" or marker is None:
            return None
        diff = _differing(marker.get("fingerprint", {}), self.fingerprint)
        if diff:
            raise ConfigError(
                f"{final} holds a finished run with different settings ({', '.join(diff)}); "
                "use a new --output, or --resume never --overwrite-output",
                differing=diff,
            )
        with open(os.path.join(final, "training_metrics.json")) as f:
            metrics = json.load(f)
        return self._done_summary(final, metrics, already_complete=True)

    def import_libs(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)
        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        self.torch = torch

    def resolve_device(self) -> None:
        torch = self.torch
        dev = self.args.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {self.args.device}: CUDA is not available to this process")
        try:
            self.device = torch.device(dev)
        except RuntimeError as e:
            raise ConfigError(f"--device {dev}: {e}") from None
        if self.device.type == "cpu":
            threads = self.args.cpu_threads
            if threads == "auto":
                threads = "1" if self.args.model == TINY else None
            if threads:
                torch.set_num_threads(int(threads))
        dt = self.args.dtype
        if dt == "auto":
            dt = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        if dt in ("bf16", "fp16") and self.device.type == "cpu":
            raise ConfigError(f"--dtype {dt} is for CUDA; use fp32 on the CPU")
        self.dtype_name = dt
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dt]

    def model_dir(self, ds: LoadedDataset) -> str:
        if self.args.model != TINY:
            path = os.path.abspath(self.args.model)
            if not os.path.isfile(os.path.join(path, "config.json")):
                raise ConfigError(f"--model {self.args.model}: not a local model dir (no config.json); nothing is downloaded")
            return path
        base = os.path.join(self.output, "base-model")
        # Built from the seed and the dataset's texts (the tokenizer): rebuilt if either changed.
        recipe = {"seed": self.args.seed, "dataset_hash": ds.content_hash, "tiny_vocab_size": self.args.tiny_vocab_size}
        marker = ck.read_marker(base)
        if marker is not None and marker.get("recipe") == recipe:
            return base
        from .tiny import build_tiny_model

        summary: dict[str, Any] = {}

        def write(tmp: str) -> None:
            summary.update(build_tiny_model(tmp, dataset_texts(ds.samples), self.args.seed, self.args.tiny_vocab_size))

        ck.publish_dir(self.output, "base-model", write, {"step": 0, "kind": "tiny-random base model", "recipe": recipe})
        note(f"built the tiny model in {base}: {summary}")
        return base

    def load_processors(self, model_dir: str) -> None:
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

        try:
            self.config = AutoConfig.from_pretrained(model_dir)
        except Exception as e:  # noqa: BLE001 - any failure here is the model dir's fault
            raise ConfigError(f"cannot read the model config in {model_dir}: {e}") from None
        if self.config.model_type not in SUPPORTED_MODEL_TYPES:
            raise ConfigError(
                f"model type {self.config.model_type!r} is not supported; this trainer handles {', '.join(SUPPORTED_MODEL_TYPES)}",
                model_type=self.config.model_type,
            )
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        try:
            self.image_processor = AutoImageProcessor.from_pretrained(model_dir)
        except Exception:  # noqa: BLE001 - e.g. the torchvision backend is missing: use the PIL one
            from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

            self.image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_dir)

    def plan_samples(self, ds: LoadedDataset) -> None:
        """Drops samples the cutoff would cut inside an image or before any answer token; counts them."""
        a = self.args
        self.encoder = ChatEncoder(self.tokenizer, self.image_processor, self.config, a.cutoff_len, a.image_max_pixels, a.default_system or None)
        kept, dropped, truncated = [], [], 0
        for s in ds.samples:
            length, last_img, labelled = self.encoder.planned_length(s)
            if length > a.cutoff_len and (last_img > a.cutoff_len or labelled == 0):
                dropped.append({"file": s.file, "sample": s.index, "tokens": length})
                continue
            truncated += length > a.cutoff_len
            kept.append(s)
        if dropped:
            note(f"{len(dropped)} sample(s) longer than --cutoff-len {a.cutoff_len} with images or answers past it are left out: {dropped[:5]}")
        if not kept:
            raise DatasetError(
                f"every sample is longer than --cutoff-len {a.cutoff_len} tokens in a way that cannot be truncated",
                problem="all_samples_too_long",
                problem_count=len(dropped),
                problems=dropped[:20],
            )
        self.samples = kept
        self.dropped = dropped
        self.truncated = truncated

    def find_resume(self, fingerprint: dict[str, Any]) -> ck.Checkpoint | None:
        a = self.args
        if a.resume == "never":
            ck.scan(self.output, clean=True)
            return None
        if a.resume == "auto":
            found = ck.scan(self.output, clean=True)
            ckpt = found[-1] if found else None
        else:
            path = os.path.abspath(a.resume)
            marker = ck.read_marker(path)
            if marker is None:
                raise ConfigError(f"--resume {a.resume}: not a complete checkpoint (no valid {ck.MARKER} marker)")
            ck.scan(self.output, clean=True)
            ckpt = ck.Checkpoint(path, int(marker["step"]))
        if ckpt is None:
            return None
        with open(os.path.join(ckpt.path, "trainer_state.json")) as f:
            state = json.load(f)
        diff = _differing(state.get("fingerprint", {}), fingerprint)
        if diff:
            raise ConfigError(
                f"{ckpt.path} belongs to a run with different settings ({', '.join(diff)}); "
                "resume it with the same settings, or use a new --output / --resume never --overwrite-output",
                differing=diff,
            )
        self.resume_state = state
        return ckpt

    def build_model(self, model_dir: str, resume: ck.Checkpoint | None) -> None:
        torch = self.torch
        from transformers import AutoModelForImageTextToText

        a = self.args
        src = resume.path if (resume and a.method == "full") else model_dir
        torch.manual_seed(a.seed)
        # On CUDA the weights load straight onto the device (accelerate's device_map), not via host memory.
        placement = {"device_map": {"": str(self.device)}} if self.device.type == "cuda" else {}
        model = AutoModelForImageTextToText.from_pretrained(src, dtype=self.dtype, **placement)
        model.config.use_cache = False
        if a.method == "lora":
            from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
            from safetensors.torch import load_file

            names = LORA_TARGETS_ALL if a.lora_target == "all" else tuple(t.strip() for t in a.lora_target.split(",") if t.strip())
            # Only the language model's projections: the vision tower's layers are named qkv/proj/fc1/fc2.
            target = r".*language_model.*\.(" + "|".join(names) + r")$"
            if not any(re.match(target, n) for n, _ in model.named_modules()):
                raise ConfigError(f"--lora-target {a.lora_target}: no such module in the language model")
            extra = [t.strip() for t in a.additional_target.split(",") if t.strip()] or None
            cfg = LoraConfig(r=a.lora_rank, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout, target_modules=target,
                             modules_to_save=extra, task_type="CAUSAL_LM")
            model = get_peft_model(model, cfg)
            if resume:
                set_peft_model_state_dict(model, load_file(os.path.join(resume.path, "adapter_model.safetensors")))
        elif a.freeze_vision_tower:
            for name, p in model.named_parameters():
                if ".visual." in f".{name}":
                    p.requires_grad_(False)
        if a.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if a.method == "lora":
                model.enable_input_require_grads()
        model.to(self.device)
        model.train()
        self.model = model
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.trainable_params = sum(p.numel() for p in self.trainable)
        self.total_params = sum(p.numel() for p in model.parameters())

    def build_optimizer(self, sched: Schedule, resume: ck.Checkpoint | None) -> None:
        torch = self.torch
        a = self.args
        total = sched.total_steps
        warmup = a.warmup_steps if a.warmup_steps > 0 else math.ceil(a.warmup_ratio * total)

        def factor(step: int) -> float:
            if step < warmup:
                return step / max(1, warmup)
            progress = (step - warmup) / max(1, total - warmup)
            if a.lr_scheduler_type == "cosine":
                return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
            if a.lr_scheduler_type == "linear":
                return max(0.0, 1.0 - progress)
            return 1.0

        self.optimizer = torch.optim.AdamW(self.trainable, lr=a.learning_rate, weight_decay=a.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        if resume:
            self.optimizer.load_state_dict(torch.load(os.path.join(resume.path, "optimizer.pt"), map_location=self.device, weights_only=True))
            self.scheduler.load_state_dict(torch.load(os.path.join(resume.path, "scheduler.pt"), weights_only=True))
            rng = torch.load(os.path.join(resume.path, "rng_state.pth"), weights_only=True)
            random.setstate(rng["python"])
            torch.set_rng_state(rng["torch"])
            if self.device.type == "cuda" and rng.get("cuda") is not None:
                torch.cuda.set_rng_state_all(rng["cuda"])
        else:
            random.seed(a.seed)
            torch.manual_seed(a.seed)

    # --- the loop --------------------------------------------------------------------------------------

    def collate(self, indices: list[int]) -> dict[str, Any]:
        torch = self.torch
        encoded = [self.encoder.encode(self.samples[i]) for i in indices]
        width = max(len(e["input_ids"]) for e in encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.encoder.im_end
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            n = len(e["input_ids"])
            ids[row, :n] = torch.tensor(e["input_ids"])
            labels[row, :n] = torch.tensor(e["labels"])
            mask[row, :n] = 1
        batch: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "mm_token_type_ids": (ids == self.encoder.image_pad).long() * mask,
        }
        pv = [e["pixel_values"] for e in encoded if e["pixel_values"] is not None]
        if pv:
            batch["pixel_values"] = torch.cat(pv)
            batch["image_grid_thw"] = torch.cat([e["image_grid_thw"] for e in encoded if e["image_grid_thw"] is not None])
        return batch

    def micro_loss(self, batch: dict[str, Any], step_tokens: int) -> Any:
        torch = self.torch
        labels = batch.pop("labels").to(self.device)
        inputs = {k: v.to(self.device) for k, v in batch.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)
        with autocast:
            logits = self.model(**inputs, use_cache=False).logits
        shift_logits = logits[:, :-1, :].float()
        shift_labels = labels[:, 1:]
        loss_sum = torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        return loss_sum / step_tokens

    def run_loop(self, sched: Schedule, start_step: int, state: dict[str, Any]) -> dict[str, Any]:
        torch = self.torch
        a = self.args
        log_path = os.path.join(self.output, "trainer_log.jsonl")
        curve = state["curve"]  # {"step": [...], "loss": [...], "lr": [...]}
        elapsed_before = state["elapsed_seconds"]
        t0 = time.monotonic()
        window: list[float] = []
        self.last_checkpoint = state.get("last_checkpoint")
        step = start_step
        self.stop.in_loop = True
        while step < sched.total_steps:
            micro = sched.micro_batches(step)
            batches = [self.collate(idx) for idx in micro]
            step_tokens = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches)
            lr = self.scheduler.get_last_lr()[0]
            step_loss = 0.0
            for b in batches:
                loss = self.micro_loss(b, max(1, step_tokens))
                loss.backward()
                step_loss += float(loss.detach())
            if a.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.trainable, a.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            step += 1
            if not math.isfinite(step_loss):
                raise RuntimeError(f"the loss is {step_loss} at step {step}: training diverged")
            curve["step"].append(step)
            curve["loss"].append(round(step_loss, 6))
            curve["lr"].append(lr)
            window.append(step_loss)
            elapsed_here = time.monotonic() - t0
            if step % a.logging_steps == 0 or step == sched.total_steps:
                per_step = elapsed_here / (step - start_step)
                entry = {
                    "current_steps": step,
                    "total_steps": sched.total_steps,
                    "loss": round(sum(window) / len(window), 4),
                    "lr": lr,
                    "epoch": round(sched.epoch_at(step), 4),
                    "percentage": round(step / sched.total_steps * 100, 2),
                    "elapsed_time": _hms(elapsed_before + elapsed_here),
                    "remaining_time": _hms(per_step * (sched.total_steps - step)),
                }
                window = []
                line = to_json_line(entry)
                with open(log_path, "a") as f:
                    f.write(line + "\n")
                emit("MELLA_PROGRESS", line)
            state["elapsed_seconds"] = elapsed_before + elapsed_here
            saved = False
            if a.save_steps > 0 and step % a.save_steps == 0 and step < sched.total_steps:
                self.save_checkpoint(step, sched, state)
                saved = True
            if self.stop.signum is not None:  # checked after any save, so a signal during one counts here
                if a.save_on_signal and not saved:
                    self.save_checkpoint(step, sched, state)
                raise Interrupted(self.stop.signum)
        self.stop.in_loop = False
        return state

    # --- saving ----------------------------------------------------------------------------------------

    def _save_model_files(self, target: str) -> None:
        self.model.save_pretrained(target)
        if self.args.method == "full":
            self.tokenizer.save_pretrained(target)
            self.image_processor.save_pretrained(target)

    def save_checkpoint(self, step: int, sched: Schedule, state: dict[str, Any]) -> str:
        torch = self.torch
        name = f"checkpoint-{step}"

        def write(tmp: str) -> None:
            self._save_model_files(tmp)
            torch.save(self.optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
            torch.save(self.scheduler.state_dict(), os.path.join(tmp, "scheduler.pt"))
            rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
            if self.device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state_all()
            torch.save(rng, os.path.join(tmp, "rng_state.pth"))
            with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
                json.dump(
                    {
                        "global_step": step,
                        "total_steps": sched.total_steps,
                        "epoch": sched.epoch_at(step),
                        "steps_per_epoch": sched.steps_per_epoch,
                        "num_samples": sched.num_samples,
                        "elapsed_seconds": state["elapsed_seconds"],
                        "resumed_from": state["resumed_from"],
                        "fingerprint": self.fingerprint,
                        "curve": state["curve"],
                    },
                    f,
                )

        path = ck.publish_dir(self.output, name, write, {"step": step, "method": self.args.method})
        state["last_checkpoint"] = path
        self.last_checkpoint = path
        emit("MELLA_CHECKPOINT", f"{path} step={step}")
        for removed in ck.prune(self.output, self.args.save_total_limit):
            note(f"removed old checkpoint {removed}")
        return path

    def save_final(self, sched: Schedule, state: dict[str, Any], model_dir: str) -> tuple[str, dict[str, Any]]:
        a = self.args
        curve = state["curve"]
        losses = curve["loss"]
        tail = losses[-max(1, a.logging_steps):]
        runtime = state["elapsed_seconds"]
        metrics = {
            "final_loss": round(sum(tail) / len(tail), 6) if tail else None,
            "train_loss": round(sum(losses) / len(losses), 6) if losses else None,
            "first_loss": losses[0] if losses else None,
            "total_steps": sched.total_steps,
            "epoch": round(sched.epoch_at(sched.total_steps), 4),
            "num_samples": len(self.samples),
            "dropped_samples": len(self.dropped),
            "truncated_samples": self.truncated,
            "train_runtime": round(runtime, 3),
            "train_steps_per_second": round(len(losses) / runtime, 4) if runtime > 0 else None,
            "train_samples_per_second": round(len(losses) * a.per_device_train_batch_size * a.gradient_accumulation_steps / runtime, 4) if runtime > 0 else None,
            "method": a.method,
            "model": a.model,
            "base_model_dir": model_dir,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "device": str(self.device),
            "dtype": self.dtype_name,
            "seed": a.seed,
            "resumed_from": state["resumed_from"],
            "dataset": self.fingerprint["dataset"],
            "dataset_hash": self.fingerprint["dataset_hash"],
            "peak_rss_mb": _peak_rss_mb(),
        }
        if self.device.type == "cuda":
            metrics["cuda_peak_memory_mb"] = round(self.torch.cuda.max_memory_allocated(self.device) / 2**20, 1)

        def write(tmp: str) -> None:
            self._save_model_files(tmp)
            if a.method == "lora":
                self.tokenizer.save_pretrained(tmp)
                self.image_processor.save_pretrained(tmp)
                if a.model == TINY:  # the adapter is useless without its random base: ship it along
                    shutil.copytree(model_dir, os.path.join(tmp, "base_model"), ignore=shutil.ignore_patterns(ck.MARKER))
            with open(os.path.join(tmp, "training_metrics.json"), "w") as f:
                json.dump(metrics, f, indent=1)
            with open(os.path.join(tmp, "loss_curve.json"), "w") as f:
                json.dump(curve, f)

        final = ck.publish_dir(self.output, "final", write, {"step": sched.total_steps, "method": a.method, "fingerprint": self.fingerprint})
        return final, metrics

    def _done_summary(self, final: str, metrics: dict[str, Any], already_complete: bool = False) -> dict[str, Any]:
        files = sorted(os.path.relpath(os.path.join(d, f), final) for d, _, fs in os.walk(final) for f in fs)
        return {
            "output_dir": self.output,
            "final_dir": final,
            "total_steps": metrics.get("total_steps"),
            "final_loss": metrics.get("final_loss"),
            "train_loss": metrics.get("train_loss"),
            "train_runtime": metrics.get("train_runtime"),
            "method": metrics.get("method"),
            "files": files,
            "already_complete": already_complete,
        }

    # --- the whole run -----------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        ds = load_dataset(a.dataset_dir, a.dataset, a.validate_images)
        if a.validate_only:
            emit_json("MELLA_VALID", {"dataset_dir": ds.dataset_dir, "datasets": ds.names, "samples": len(ds.samples),
                                      "images": ds.image_count, "files": ds.files, "dataset_hash": ds.content_hash})
            return 0
        if a.model != TINY and not os.path.isfile(os.path.join(a.model, "config.json")):
            raise ConfigError(f"--model {a.model}: not a local model dir (no config.json); nothing is downloaded")
        self.fingerprint = _fingerprint(a, ds)
        self.prepare_output()
        done = self.finished_summary()
        if done is not None:
            note(f"{done['final_dir']} is already complete: nothing to do")
            emit_json("MELLA_DONE", done)
            return 0
        self.import_libs()
        self.resolve_device()
        model_dir = self.model_dir(ds)
        self.load_processors(model_dir)
        self.plan_samples(ds)
        sched = make_schedule(len(self.samples), a.per_device_train_batch_size, a.gradient_accumulation_steps, a.seed, a.num_train_epochs, a.max_steps)
        self.resume_state: dict[str, Any] | None = None
        resume = self.find_resume(self.fingerprint)
        if resume and self.resume_state and self.resume_state.get("total_steps") != sched.total_steps:
            raise ConfigError(f"{resume.path} was planned for {self.resume_state.get('total_steps')} steps, this run for {sched.total_steps}")
        self.build_model(model_dir, resume)
        self.build_optimizer(sched, resume)

        log_path = os.path.join(self.output, "trainer_log.jsonl")
        if resume and self.resume_state is not None:
            rs = self.resume_state
            state = {"curve": rs["curve"], "elapsed_seconds": rs["elapsed_seconds"],
                     "resumed_from": rs.get("resumed_from", []) + [resume.step], "last_checkpoint": resume.path}
            start_step = resume.step
            # Lines a killed attempt logged past the checkpoint are dropped: the log reads as one run.
            kept = []
            if os.path.exists(log_path):
                with open(log_path) as f:
                    for line in f:
                        try:
                            if json.loads(line)["current_steps"] <= start_step:
                                kept.append(line if line.endswith("\n") else line + "\n")
                        except (ValueError, KeyError, TypeError):
                            pass
            tmp = f"{log_path}.tmp-{os.getpid()}"
            with open(tmp, "w") as f:
                f.writelines(kept)
            os.replace(tmp, log_path)
            emit("MELLA_RESUME", f"{resume.path} step={resume.step}")
        else:
            state = {"curve": {"step": [], "loss": [], "lr": []}, "elapsed_seconds": 0.0, "resumed_from": [], "last_checkpoint": None}
            start_step = 0
            if os.path.exists(log_path):
                os.unlink(log_path)
        _write_json_atomic(os.path.join(self.output, "run_config.json"), {"args": vars(a), "fingerprint": self.fingerprint})
        emit_json("MELLA_START", {
            "pid": os.getpid(),
            "output_dir": self.output,
            "total_steps": sched.total_steps,
            "start_step": start_step,
            "resumed_from": resume.path if resume else None,
            "num_samples": len(self.samples),
            "dropped_samples": len(self.dropped),
            "truncated_samples": self.truncated,
            "steps_per_epoch": sched.steps_per_epoch,
            "method": a.method,
            "model": a.model,
            "model_dir": model_dir,
            "device": str(self.device),
            "dtype": self.dtype_name,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
        })
        state = self.run_loop(sched, start_step, state)
        final, metrics = self.save_final(sched, state, model_dir)
        emit_json("MELLA_DONE", self._done_summary(final, metrics))
        return 0


def stopped(trainer: Trainer | None, err: Interrupted) -> int:
    emit_json("MELLA_STOPPED", {
        "signal": signal.Signals(err.signum).name,
        "exit_code": err.exit_code,
        "last_checkpoint": getattr(trainer, "last_checkpoint", None) if trainer else None,
    })
    sys.stdout.flush()
    return err.exit_code
