"""Checks that mella_serve.py's prompts are the trainer's: run by tests/trainer-serve.test.ts with the venv.

    .venv-trainer/bin/python trainer/tests/check_serve_encoding.py <model dir (final/ or base-model/)> <export dir>

For the export's first samples, the OpenAI-style request (an image_url data URL part + the user text) is
parsed and encoded by the server's code; its tokens and pixel values must equal the trainer's encoding of
the same sample (ChatEncoder.encode) up to the assistant's answer. Prints "OK <n> checks" or raises.
"""

from __future__ import annotations

import base64
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mella_trainer.data import IGNORE_INDEX, load_dataset  # noqa: E402
from mella_trainer.serve_http import parse_messages  # noqa: E402
from mella_trainer.serve_model import ServedModel  # noqa: E402


def main(model_dir: str, export_dir: str) -> None:
    import torch

    m = ServedModel("check", model_dir, torch.device("cpu"), torch.float32, {})
    ds = load_dataset(export_dir, None, "decode")
    checks = 0
    for s in ds.samples[:4]:
        user = s.turns[0][1]
        with open(s.images[0], "rb") as f:
            url = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
        text = user.replace("<image>", "")
        # The way the evaluate stage sends it (image part, then the instruction) and the export's own way.
        for content in ([{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}],
                        [{"type": "text", "text": user}, {"type": "image_url", "image_url": {"url": url}}]):
            served = m.encode_prompt(parse_messages([{"role": "user", "content": content}]))
            trained = m.encoder.encode(s)
            first_label = next(i for i, t in enumerate(trained["labels"]) if t != IGNORE_INDEX)
            assert served["input_ids"][0].tolist() == trained["input_ids"][:first_label], "prompt tokens differ from training"
            assert torch.equal(served["pixel_values"], trained["pixel_values"]), "pixel values differ from training"
            assert torch.equal(served["image_grid_thw"], trained["image_grid_thw"])
            checks += 3
    print(f"OK {checks} checks")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
