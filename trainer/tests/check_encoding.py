"""Checks of the chat encoding and the data order, run by tests/trainer.test.ts with the trainer's venv:

    .venv-trainer/bin/python trainer/tests/check_encoding.py <tiny base-model dir> <export dir>

- labels cover exactly the assistant answers (+ <|im_end|>\\n), nothing of the prompt, system or images;
- each <image> becomes <|vision_start|> + n x <|image_pad|> + <|vision_end|>, n = the image grid / merge^2,
  the same n that the planning pass computes from the image header;
- the schedule visits every sample once per epoch, in a seed-determined order, and a step's batches
  are the same whether computed in one process or another.
Prints "OK <n> checks" and exits 0, or raises.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mella_trainer.data import IGNORE_INDEX, ChatEncoder, Sample, load_dataset, make_schedule  # noqa: E402


def main(model_dir: str, export_dir: str) -> None:
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    checks = 0
    tok = AutoTokenizer.from_pretrained(model_dir)
    ip = Qwen2VLImageProcessorPil.from_pretrained(model_dir)
    cfg = AutoConfig.from_pretrained(model_dir)
    enc = ChatEncoder(tok, ip, cfg, cutoff_len=4096, image_max_pixels=768 * 768, default_system="Be brief.")
    ds = load_dataset(export_dir, None, "decode")

    for s in ds.samples[:6]:
        e = enc.encode(s)
        ids, labels = e["input_ids"], e["labels"]
        assert len(ids) == len(labels)
        learned = [t for t in labels if t != IGNORE_INDEX]
        answer = "".join(c for r, c in s.turns if r == "assistant")
        assert tok.decode(learned) == answer + "<|im_end|>\n", (tok.decode(learned), answer)
        checks += 1
        n_pad = sum(1 for t in ids if t == cfg.image_token_id)
        expected = sum(int(g.prod()) // ip.merge_size**2 for g in e["image_grid_thw"])
        assert n_pad == expected, (n_pad, expected)
        assert all(labels[i] == IGNORE_INDEX for i, t in enumerate(ids) if t in (cfg.image_token_id, cfg.vision_start_token_id))
        assert e["pixel_values"].shape[0] == int(e["image_grid_thw"].prod(-1).sum())
        length, _, _ = enc.planned_length(s)
        assert length == len(ids), (length, len(ids))
        prompt = tok.decode([t for t, lab in zip(ids, labels) if lab == IGNORE_INDEX and t != cfg.image_token_id])
        assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|><|vision_end|>"), prompt
        assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n"), prompt
        checks += 5

    # Two turns, text only: both answers learned, the second question not.
    multi = Sample("x.json", 0, None, [("user", "a?"), ("assistant", "b"), ("user", "c?"), ("assistant", "d")], [], [])
    e = enc.encode(multi)
    assert tok.decode([t for t in e["labels"] if t != IGNORE_INDEX]) == "b<|im_end|>\nd<|im_end|>\n"
    assert e["pixel_values"] is None
    checks += 1

    sched = make_schedule(num_samples=10, batch_size=3, grad_accum=2, seed=5, epochs=3, max_steps=0)
    assert sched.steps_per_epoch == 2 and sched.total_steps == 6
    for epoch in range(3):
        seen = [i for k in range(2) for mb in sched.micro_batches(epoch * 2 + k) for i in mb]
        assert sorted(seen) == list(range(10)), seen
    assert sched.micro_batches(3) == make_schedule(10, 3, 2, 5, 3, 0).micro_batches(3)
    assert sched.epoch_order(0) != sched.epoch_order(1)
    assert make_schedule(10, 3, 2, 6, 3, 0).epoch_order(0) != sched.epoch_order(0)
    checks += 5
    print(f"OK {checks} checks")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
