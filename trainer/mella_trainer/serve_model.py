"""A model dir the trainer wrote, loaded for inference: the base, a full-method `final/`, or a LoRA `final/`
(the adapter on its base), with the trainer's own chat encoding and image preprocessing.

Used by `trainer/mella_serve.py` (the OpenAI-compatible server); see docs/trainer.md, "Serving a trained model".
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .data import DEFAULT_SYSTEM, IMAGE_PLACEHOLDER, ChatEncoder, Sample
from .protocol import ConfigError

SUPPORTED_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")
DEFAULT_IMAGE_MAX_PIXELS = 768 * 768
DEFAULT_CUTOFF_LEN = 2048


class RequestError(Exception):
    """A request the model cannot serve as asked: an HTTP 400 with an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


@dataclass
class EncodingSettings:
    """What shaped the prompts in training: read from the run, so that served prompts match."""

    default_system: str | None = DEFAULT_SYSTEM
    image_max_pixels: int = DEFAULT_IMAGE_MAX_PIXELS
    cutoff_len: int = DEFAULT_CUTOFF_LEN
    source: str = "defaults"


@dataclass
class Prompt:
    system: str | None
    turns: list[tuple[str, str]]  # ("user" | "assistant", text with <image> placeholders)
    images: list[Any] = field(default_factory=list)  # PIL images, in placeholder order


def _read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def encoding_settings(model_dir: str, overrides: dict[str, Any]) -> EncodingSettings:
    """The run's settings: the dir's COMPLETE marker fingerprint (final/, checkpoints), else the output dir's
    run_config.json (base-model/ beside it), else the trainer's defaults; command-line overrides win."""
    s = EncodingSettings()
    found: dict[str, Any] | None = None
    marker = _read_json(os.path.join(model_dir, "COMPLETE"))
    if isinstance(marker, dict) and isinstance(marker.get("fingerprint"), dict):
        found, s.source = marker["fingerprint"], os.path.join(model_dir, "COMPLETE")
    else:
        run_config = _read_json(os.path.join(os.path.dirname(os.path.abspath(model_dir)), "run_config.json"))
        if isinstance(run_config, dict) and isinstance(run_config.get("args"), dict):
            found, s.source = run_config["args"], os.path.join(os.path.dirname(os.path.abspath(model_dir)), "run_config.json")
    if found:
        if "default_system" in found:
            s.default_system = found["default_system"] or None
        if isinstance(found.get("image_max_pixels"), int):
            s.image_max_pixels = found["image_max_pixels"]
        if isinstance(found.get("cutoff_len"), int):
            s.cutoff_len = found["cutoff_len"]
    if overrides.get("default_system") is not None:
        s.default_system = overrides["default_system"] or None
        s.source += " + command line"
    if overrides.get("image_max_pixels"):
        s.image_max_pixels = int(overrides["image_max_pixels"])
        s.source += " + command line"
    return s


def resolve_dirs(model_dir: str) -> tuple[str, str | None]:
    """(the dir holding the full model, the LoRA adapter dir or None)."""
    model_dir = os.path.abspath(model_dir)
    if not os.path.isdir(model_dir):
        raise ConfigError(f"model dir {model_dir} does not exist")
    if os.path.isfile(os.path.join(model_dir, "adapter_config.json")):
        # tiny-random ships its random base inside final/; otherwise the adapter names its base dir.
        inner = os.path.join(model_dir, "base_model")
        if os.path.isfile(os.path.join(inner, "config.json")):
            return inner, model_dir
        cfg = _read_json(os.path.join(model_dir, "adapter_config.json")) or {}
        base = cfg.get("base_model_name_or_path")
        if isinstance(base, str) and base and not os.path.isabs(base):
            base = os.path.normpath(os.path.join(model_dir, base))
        if not (isinstance(base, str) and os.path.isfile(os.path.join(base, "config.json"))):
            raise ConfigError(f"{model_dir} is a LoRA adapter whose base model {base!r} is not a local model dir (nothing is downloaded)")
        return base, model_dir
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise ConfigError(f"{model_dir} is neither a model dir (config.json) nor a LoRA adapter (adapter_config.json)")
    return model_dir, None


class ServedModel:
    """One model: loaded once, one generation at a time (a lock)."""

    def __init__(self, name: str, model_dir: str, device: Any, dtype: Any, overrides: dict[str, Any]) -> None:
        import torch
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.torch = torch
        self.name = name
        self.model_dir = os.path.abspath(model_dir)
        self.base_dir, self.adapter_dir = resolve_dirs(self.model_dir)
        self.device = device
        self.dtype = dtype
        self.lock = threading.Lock()
        self.created = int(os.path.getmtime(self.model_dir))
        t0 = time.monotonic()
        try:
            self.config = AutoConfig.from_pretrained(self.base_dir)
        except Exception as e:  # noqa: BLE001 - the dir's fault
            raise ConfigError(f"cannot read the model config in {self.base_dir}: {e}") from None
        if self.config.model_type not in SUPPORTED_MODEL_TYPES:
            raise ConfigError(f"model type {self.config.model_type!r} is not supported; this server handles {', '.join(SUPPORTED_MODEL_TYPES)}")
        # The tokenizer and image processor saved with the adapter are the ones training used (same as the base's).
        proc_dir = self.model_dir if os.path.isfile(os.path.join(self.model_dir, "tokenizer_config.json")) else self.base_dir
        self.tokenizer = AutoTokenizer.from_pretrained(proc_dir)
        try:
            self.image_processor = AutoImageProcessor.from_pretrained(proc_dir)
        except Exception:  # noqa: BLE001 - e.g. no torchvision: the PIL one (same arithmetic), as the trainer does
            from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

            self.image_processor = Qwen2VLImageProcessorPil.from_pretrained(proc_dir)
        self.settings = encoding_settings(self.model_dir, overrides)
        self.encoder = ChatEncoder(self.tokenizer, self.image_processor, self.config, self.settings.cutoff_len,
                                   self.settings.image_max_pixels, self.settings.default_system)
        placement = {"device_map": {"": str(device)}} if device.type == "cuda" else {}
        model = AutoModelForImageTextToText.from_pretrained(self.base_dir, dtype=dtype, **placement)
        self.method = "full" if self.adapter_dir is None else "lora"
        if self.adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter_dir, is_trainable=False)
            model = model.merge_and_unload()  # plain weights: the same outputs, faster generation
        model.to(device)
        model.eval()
        self.model = model
        text_cfg = getattr(self.config, "text_config", self.config)
        self.context_length = int(getattr(text_cfg, "max_position_embeddings", 0) or 32768)
        stops = {self.encoder.im_end}
        for tok in ("<|endoftext|>",):
            tid = self.tokenizer.convert_tokens_to_ids(tok)
            if isinstance(tid, int) and tid != getattr(self.tokenizer, "unk_token_id", None):
                stops.add(tid)
        self.stop_ids = sorted(stops)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.encoder.im_end
        self.load_seconds = round(time.monotonic() - t0, 2)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model_dir": self.model_dir, "base_dir": self.base_dir, "adapter_dir": self.adapter_dir,
                "method": self.method, "model_type": self.config.model_type, "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""), "context_length": self.context_length,
                "default_system": self.settings.default_system, "image_max_pixels": self.settings.image_max_pixels,
                "settings_from": self.settings.source, "load_seconds": self.load_seconds}

    # --- encoding ------------------------------------------------------------------------------------

    def encode_prompt(self, prompt: Prompt) -> dict[str, Any]:
        """The trainer's encoding of the conversation, ending with `<|im_start|>assistant\\n`."""
        from PIL import Image

        torch = self.torch
        enc = self.encoder
        pil = []
        for im in prompt.images:  # as ChatEncoder.encode: RGB, downscaled to image_max_pixels (bicubic)
            im = im.convert("RGB")
            size = enc.fit_size(*im.size)
            if size != im.size:
                im = im.resize(size, Image.Resampling.BICUBIC)
            pil.append(im)
        pixel_values = grid = None
        counts: list[int] = []
        if pil:
            try:
                out = self.image_processor(images=pil, return_tensors="pt")
            except ValueError as e:
                raise RequestError(f"the image processor refused an image: {e}", code="invalid_image_format") from None
            pixel_values, grid = out["pixel_values"], out["image_grid_thw"]
            counts = [int(g.prod()) // (enc.merge**2) for g in grid]
        sample = Sample(file="<request>", index=0, system=prompt.system, turns=prompt.turns + [("assistant", "")], images=[])
        ids, _, _ = enc._pieces(sample, counts)
        tail = [enc.im_end] + enc.newline  # the empty answer's end: the prompt stops right after "assistant\n"
        assert ids[-len(tail):] == tail, "unexpected chat encoding"
        ids = ids[: -len(tail)]
        input_ids = torch.tensor([ids], dtype=torch.long)
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "mm_token_type_ids": (input_ids == enc.image_pad).long(),
        }
        if pixel_values is not None:
            batch["pixel_values"] = pixel_values.to(self.dtype)
            batch["image_grid_thw"] = grid
        return batch

    # --- generation ----------------------------------------------------------------------------------

    def generate(self, prompt: Prompt, *, max_tokens: int, temperature: float, top_p: float, n: int,
                 seed: int | None, stop: list[str]) -> dict[str, Any]:
        torch = self.torch
        from transformers import GenerationConfig

        batch = self.encode_prompt(prompt)
        prompt_tokens = int(batch["input_ids"].shape[1])
        if prompt_tokens >= self.context_length:
            raise RequestError(f"the prompt is {prompt_tokens} tokens; this model's context is {self.context_length}",
                               param="messages", code="context_length_exceeded")
        max_new = min(max_tokens, self.context_length - prompt_tokens)
        greedy = temperature <= 0
        gen = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_p=None if greedy or top_p >= 1 else top_p,
            top_k=None,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            use_cache=True,
        )
        inputs = {k: v.to(self.device) for k, v in batch.items()}
        choices = []
        completion_tokens = 0
        t0 = time.monotonic()
        with self.lock:
            if seed is not None:
                torch.manual_seed(seed)
            for i in range(n):
                with torch.inference_mode():
                    out = self.model.generate(**inputs, generation_config=gen)
                new = out[0, prompt_tokens:].tolist()
                completion_tokens += len(new)
                finish = "length"
                if new and new[-1] in self.stop_ids:
                    finish = "stop"
                    new = new[:-1]
                while new and new[-1] == self.pad_id:
                    new.pop()
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                for s in stop:
                    cut = text.find(s)
                    if cut >= 0:
                        text, finish = text[:cut], "stop"
                choices.append({"index": i, "text": text, "finish_reason": finish})
                if greedy and n > 1:  # the same answer again: no need to recompute
                    for j in range(1, n):
                        choices.append({**choices[0], "index": j})
                    completion_tokens *= n
                    break
        return {"choices": choices, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "seconds": time.monotonic() - t0}


def placeholder_count(text: str) -> int:
    return text.count(IMAGE_PLACEHOLDER)
