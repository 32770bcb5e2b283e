"""The LLaMA-Factory sharegpt export: validation, loading, the chat encoding and the data order.

Validation needs only the standard library and Pillow, so a bad dataset fails in about a second, before
torch and transformers are imported.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any, Iterable

from .protocol import DatasetError

IMAGE_PLACEHOLDER = "<image>"
MAX_REPORTED_PROBLEMS = 20
# Qwen2-VL's image processor refuses images whose long side is more than 200x the short side.
MAX_ASPECT_RATIO = 200

# LLaMA-Factory's defaults for a sharegpt entry (its DatasetAttr), used where dataset_info omits a key.
DEFAULT_COLUMNS = {"messages": "conversations", "images": None, "system": None}
DEFAULT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "system_tag": "system",
}


@dataclass
class Sample:
    file: str  # the data file, relative to the dataset dir
    index: int  # the sample's index within that file
    system: str | None
    turns: list[tuple[str, str]]  # ("user" | "assistant", content), alternating, user first
    images: list[str]  # absolute paths, in <image> order
    image_sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) as stored


@dataclass
class LoadedDataset:
    dataset_dir: str
    names: list[str]
    samples: list[Sample]
    files: list[str]
    content_hash: str  # sha256 over the data files' bytes (not the images): identifies the dataset version
    image_count: int


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.count = 0

    def add(self, problem: str, message: str, **where: Any) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_PROBLEMS:
            self.items.append({"problem": problem, "message": message, **where})

    def raise_if_any(self) -> None:
        if not self.count:
            return
        first = self.items[0]
        more = f" (and {self.count - 1} more problem{'s' if self.count > 2 else ''})" if self.count > 1 else ""
        raise DatasetError(
            first["message"] + more,
            problem=first["problem"],
            problem_count=self.count,
            problems=self.items,
        )


def _fail(problem: str, message: str, **where: Any) -> DatasetError:
    return DatasetError(message, problem=problem, problem_count=1, problems=[{"problem": problem, "message": message, **where}])


def read_dataset_info(dataset_dir: str) -> dict[str, Any]:
    if not os.path.isdir(dataset_dir):
        raise _fail("dataset_dir_missing", f"dataset dir {dataset_dir} does not exist or is not a directory", path=dataset_dir)
    info_path = os.path.join(dataset_dir, "dataset_info.json")
    if not os.path.isfile(info_path):
        raise _fail("dataset_info_missing", f"{info_path} does not exist", path=info_path)
    try:
        with open(info_path, "rb") as f:
            info = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail("dataset_info_invalid", f"dataset_info.json is not valid JSON: {e}", path=info_path) from None
    if not isinstance(info, dict) or not info:
        raise _fail("dataset_info_invalid", "dataset_info.json must be a non-empty JSON object of named datasets", path=info_path)
    return info


def resolve_names(info: dict[str, Any], requested: str | None) -> list[str]:
    if requested:
        names = [n.strip() for n in requested.split(",") if n.strip()]
    elif len(info) == 1:
        names = list(info)
    else:
        raise _fail(
            "dataset_name_required",
            f"dataset_info.json names {len(info)} datasets ({', '.join(sorted(info))}); choose with --dataset",
            available=sorted(info),
        )
    missing = [n for n in names if n not in info]
    if missing:
        raise _fail(
            "dataset_not_found",
            f"dataset {missing[0]!r} is not in dataset_info.json (it has: {', '.join(sorted(info))})",
            dataset=missing[0],
            available=sorted(info),
        )
    return names


def _data_files(dataset_dir: str, name: str, entry: Any, problems: _Problems) -> list[str]:
    if not isinstance(entry, dict):
        problems.add("dataset_entry_invalid", f"dataset_info.json entry {name!r} is not an object", dataset=name)
        return []
    if "file_name" not in entry:
        other = [k for k in ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name") if k in entry]
        detail = f"uses {other[0]}, which this trainer does not support (no downloads)" if other else "has no file_name"
        problems.add("dataset_source_unsupported", f"dataset {name!r} {detail}", dataset=name)
        return []
    formatting = entry.get("formatting", "alpaca")
    if formatting != "sharegpt":
        problems.add(
            "formatting_unsupported",
            f"dataset {name!r} has formatting {formatting!r}; this trainer reads LLaMA-Factory's sharegpt format",
            dataset=name,
        )
        return []
    rel = entry["file_name"]
    full = os.path.join(dataset_dir, rel)
    if os.path.isdir(full):
        files = sorted(
            os.path.join(rel, f) for f in os.listdir(full) if f.endswith((".json", ".jsonl")) and not f.startswith(".")
        )
        if not files:
            problems.add("data_file_missing", f"dataset {name!r}: directory {rel} holds no .json or .jsonl files", dataset=name, file=rel)
        return files
    if not os.path.isfile(full):
        problems.add("data_file_missing", f"dataset {name!r}: data file {rel} does not exist ({full})", dataset=name, file=rel)
        return []
    return [rel]


def _read_records(dataset_dir: str, rel: str, problems: _Problems, hasher: Any) -> list[Any] | None:
    full = os.path.join(dataset_dir, rel)
    with open(full, "rb") as f:
        raw = f.read()
    hasher.update(rel.encode("utf-8") + b"\0" + raw + b"\0")
    if not raw.strip():
        problems.add("data_file_empty", f"{rel} is empty", file=rel)
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problems.add("data_file_invalid", f"{rel} is not UTF-8: {e}", file=rel)
        return None
    if rel.endswith(".jsonl"):
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                problems.add("data_file_invalid", f"{rel} line {lineno} is not valid JSON: {e}", file=rel, line=lineno)
                return None
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            problems.add("data_file_invalid", f"{rel} is not valid JSON: {e}", file=rel)
            return None
        if not isinstance(records, list):
            problems.add("data_file_invalid", f"{rel} must hold a JSON array of samples, not {type(records).__name__}", file=rel)
            return None
    if not records:
        problems.add("data_file_empty", f"{rel} contains no samples", file=rel)
        return None
    return records


class _ImageChecker:
    """Checks each distinct image file once: exists, opens, (optionally) decodes, sane aspect ratio."""

    def __init__(self, mode: str) -> None:
        self.mode = mode  # "decode" | "header" | "exists"
        self.cache: dict[str, tuple[str | None, str | None, tuple[int, int] | None]] = {}

    def check(self, path: str) -> tuple[str | None, str | None, tuple[int, int] | None]:
        """(problem, detail, (width, height))."""
        hit = self.cache.get(path)
        if hit is not None:
            return hit
        result = self._check(path)
        self.cache[path] = result
        return result

    def _check(self, path: str) -> tuple[str | None, str | None, tuple[int, int] | None]:
        if not os.path.isfile(path):
            return "image_missing", "does not exist", None
        if self.mode == "exists":
            return None, None, None
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                size = img.size
                if self.mode == "decode":
                    img.load()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            return "image_undecodable", f"cannot be decoded: {type(e).__name__}: {e}", None
        w, h = size
        if w < 1 or h < 1:
            return "image_undecodable", f"has an empty size {w}x{h}", None
        if max(w, h) / min(w, h) > MAX_ASPECT_RATIO:
            return "image_aspect_ratio", f"is {w}x{h}, an aspect ratio over {MAX_ASPECT_RATIO}", size
        return None, None, size


def _validate_sample(
    rec: Any,
    rel: str,
    idx: int,
    dataset_dir: str,
    columns: dict[str, Any],
    tags: dict[str, Any],
    problems: _Problems,
    images: _ImageChecker,
) -> Sample | None:
    where = {"file": rel, "sample": idx}
    prefix = f"{rel} sample {idx}"
    if not isinstance(rec, dict):
        problems.add("sample_invalid", f"{prefix} is not a JSON object", **where)
        return None
    messages = rec.get(columns["messages"])
    if not isinstance(messages, list) or not messages:
        problems.add("messages_missing", f"{prefix} has no {columns['messages']!r} list of messages", **where)
        return None
    role_tag, content_tag = tags["role_tag"], tags["content_tag"]
    role_of = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["system_tag"]: "system"}
    system = None
    if columns.get("system"):
        sys_val = rec.get(columns["system"])
        if sys_val is not None and not isinstance(sys_val, str):
            problems.add("message_invalid", f"{prefix}: the {columns['system']!r} column is not a string", **where)
            return None
        system = sys_val or None
    turns: list[tuple[str, str]] = []
    for m_idx, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get(content_tag), str) or role_tag not in msg:
            problems.add(
                "message_invalid",
                f"{prefix} message {m_idx} must be an object with a {role_tag!r} and a string {content_tag!r}",
                message=m_idx,
                **where,
            )
            return None
        role = role_of.get(msg[role_tag])
        if role is None:
            problems.add(
                "message_role_invalid",
                f"{prefix} message {m_idx} has role {msg[role_tag]!r}; expected one of {sorted(role_of)}",
                message=m_idx,
                **where,
            )
            return None
        if role == "system":
            if m_idx != 0:
                problems.add("message_order_invalid", f"{prefix} message {m_idx}: a system message may only come first", message=m_idx, **where)
                return None
            system = msg[content_tag]
            continue
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if role != expected:
            problems.add(
                "message_order_invalid",
                f"{prefix} message {m_idx} is {role!r} where {expected!r} was expected (turns must alternate user, assistant)",
                message=m_idx,
                **where,
            )
            return None
        turns.append((role, msg[content_tag]))
    if not turns or turns[-1][0] != "assistant":
        problems.add("message_order_invalid", f"{prefix} must end with an assistant message", **where)
        return None
    if not any(content.strip() for role, content in turns if role == "assistant"):
        problems.add("message_invalid", f"{prefix} has only empty assistant messages: nothing to learn", **where)
        return None

    image_col = columns.get("images")
    raw_images = rec.get(image_col) if image_col else None
    if raw_images is None:
        raw_images = []
    elif isinstance(raw_images, str):
        raw_images = [raw_images]
    if not isinstance(raw_images, list) or not all(isinstance(p, str) and p for p in raw_images):
        problems.add("images_invalid", f"{prefix}: {image_col!r} must be a list of image paths", **where)
        return None
    placeholders = sum(content.count(IMAGE_PLACEHOLDER) for _, content in turns) + (system or "").count(IMAGE_PLACEHOLDER)
    if (system or "").count(IMAGE_PLACEHOLDER):
        problems.add("image_token_mismatch", f"{prefix}: the system message may not contain {IMAGE_PLACEHOLDER}", **where)
        return None
    if any(content.count(IMAGE_PLACEHOLDER) for role, content in turns if role == "assistant"):
        problems.add("image_token_mismatch", f"{prefix}: an assistant message contains {IMAGE_PLACEHOLDER}", **where)
        return None
    if placeholders != len(raw_images):
        problems.add(
            "image_token_mismatch",
            f"{prefix} has {placeholders} {IMAGE_PLACEHOLDER} token(s) but {len(raw_images)} image(s)",
            tokens=placeholders,
            images=len(raw_images),
            **where,
        )
        return None
    paths: list[str] = []
    sizes: list[tuple[int, int]] = []
    ok = True
    for rel_img in raw_images:
        full = rel_img if os.path.isabs(rel_img) else os.path.normpath(os.path.join(dataset_dir, rel_img))
        problem, detail, size = images.check(full)
        if problem:
            problems.add(problem, f"{prefix}: image {rel_img} {detail} ({full})", path=rel_img, resolved=full, **where)
            ok = False
            continue
        paths.append(full)
        sizes.append(size or (0, 0))
    if not ok:
        return None
    return Sample(file=rel, index=idx, system=system, turns=turns, images=paths, image_sizes=sizes)


def load_dataset(dataset_dir: str, requested: str | None, image_check: str = "decode") -> LoadedDataset:
    """Reads and validates the export; raises DatasetError listing what is wrong, where."""
    dataset_dir = os.path.abspath(dataset_dir)
    info = read_dataset_info(dataset_dir)
    names = resolve_names(info, requested)
    problems = _Problems()
    checker = _ImageChecker(image_check)
    hasher = hashlib.sha256()
    samples: list[Sample] = []
    all_files: list[str] = []
    for name in names:
        entry = info[name]
        files = _data_files(dataset_dir, name, entry, problems)
        if not files:
            continue
        columns = {**DEFAULT_COLUMNS, **(entry.get("columns") or {})}
        tags = {**DEFAULT_TAGS, **(entry.get("tags") or {})}
        for rel in files:
            all_files.append(rel)
            records = _read_records(dataset_dir, rel, problems, hasher)
            if records is None:
                continue
            for idx, rec in enumerate(records):
                s = _validate_sample(rec, rel, idx, dataset_dir, columns, tags, problems, checker)
                if s is not None:
                    samples.append(s)
    problems.raise_if_any()
    if not samples:
        raise _fail("dataset_empty", f"datasets {', '.join(names)} hold no samples")
    return LoadedDataset(
        dataset_dir=dataset_dir,
        names=names,
        samples=samples,
        files=all_files,
        content_hash=hasher.hexdigest(),
        image_count=len(checker.cache),
    )


def dataset_texts(samples: Iterable[Sample], limit: int = 50_000) -> Iterable[str]:
    """The texts a tiny tokenizer is trained on (placeholders removed)."""
    for i, s in enumerate(samples):
        if i >= limit:
            return
        if s.system:
            yield s.system
        for _, content in s.turns:
            yield content.replace(IMAGE_PLACEHOLDER, " ")


# --- data order ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """Which samples each optimizer step sees: a pure function of (seed, step), so a resumed run sees the
    same data in the same order as an uninterrupted one."""

    num_samples: int
    batch_size: int
    grad_accum: int
    seed: int
    total_steps: int

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.batches_per_epoch / self.grad_accum)

    def epoch_order(self, epoch: int) -> list[int]:
        order = list(range(self.num_samples))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def micro_batches(self, step: int) -> list[list[int]]:
        """Sample indices of each micro-batch of 0-based optimizer step `step`."""
        epoch, k = divmod(step, self.steps_per_epoch)
        order = self.epoch_order(epoch)
        first = k * self.grad_accum
        last = min(first + self.grad_accum, self.batches_per_epoch)
        return [order[j * self.batch_size : (j + 1) * self.batch_size] for j in range(first, last)]

    def epoch_at(self, steps_done: int) -> float:
        return steps_done / self.steps_per_epoch


def make_schedule(num_samples: int, batch_size: int, grad_accum: int, seed: int, epochs: float, max_steps: int) -> Schedule:
    steps_per_epoch = math.ceil(math.ceil(num_samples / batch_size) / grad_accum)
    total = max_steps if max_steps > 0 else max(1, math.ceil(epochs * steps_per_epoch))
    return Schedule(num_samples, batch_size, grad_accum, seed, total)


# --- chat encoding (Qwen2-VL's ChatML template, as LLaMA-Factory's `qwen2_vl` template) --------------------

IGNORE_INDEX = -100
DEFAULT_SYSTEM = "You are a helpful assistant."


class ChatEncoder:
    """Turns a sample into input ids and labels, with the loss on assistant tokens only:

        <|im_start|>system\\n{system}<|im_end|>\\n
        <|im_start|>user\\n{text with each <image> as <|vision_start|><|image_pad|>*n<|vision_end|>}<|im_end|>\\n
        <|im_start|>assistant\\n{answer}<|im_end|>\\n      <- labels: {answer}<|im_end|>\\n

    n is the image's merged patch count after the image processor's resize.
    """

    def __init__(self, tokenizer: Any, image_processor: Any, model_config: Any, cutoff_len: int, image_max_pixels: int, default_system: str | None) -> None:
        self.tok = tokenizer
        self.ip = image_processor
        self.cutoff_len = cutoff_len
        self.image_max_pixels = image_max_pixels
        self.default_system = default_system
        ids = {}
        for name in ("<|im_start|>", "<|im_end|>"):
            tid = tokenizer.convert_tokens_to_ids(name)
            if tid is None or tid == getattr(tokenizer, "unk_token_id", None):
                from .protocol import ConfigError

                raise ConfigError(f"the model's tokenizer has no {name} token: this trainer speaks the Qwen2-VL chat template")
            ids[name] = tid
        self.im_start = ids["<|im_start|>"]
        self.im_end = ids["<|im_end|>"]
        self.image_pad = int(model_config.image_token_id)
        self.vision_start = int(model_config.vision_start_token_id)
        self.vision_end = int(model_config.vision_end_token_id)
        self.merge = int(getattr(image_processor, "merge_size", 2))
        self.newline = self._enc("\n")
        self._text_cache: dict[str, list[int]] = {}

    def _enc(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False)) if text else []

    def fit_size(self, w: int, h: int) -> tuple[int, int]:
        """The size an image is resized to before the processor: at most image_max_pixels, aspect kept."""
        if self.image_max_pixels and w * h > self.image_max_pixels:
            scale = math.sqrt(self.image_max_pixels / (w * h))
            return max(1, int(w * scale)), max(1, int(h * scale))
        return w, h

    def image_token_count(self, w: int, h: int) -> int:
        fw, fh = self.fit_size(w, h)
        return int(self.ip.get_number_of_image_patches(fh, fw, {})) // (self.merge**2)

    def _pieces(self, sample: Sample, image_tokens: list[int]) -> tuple[list[int], list[int], int]:
        """(input_ids, labels, index just past the last image token)."""
        ids: list[int] = []
        labels: list[int] = []

        def add(tokens: list[int], learn: bool) -> None:
            ids.extend(tokens)
            labels.extend(tokens if learn else [IGNORE_INDEX] * len(tokens))

        system = sample.system if sample.system is not None else self.default_system
        if system:
            add([self.im_start] + self._enc("system\n" + system) + [self.im_end] + self.newline, False)
        img = 0
        last_image_end = 0
        for role, content in sample.turns:
            if role == "user":
                add([self.im_start] + self._enc("user\n"), False)
                parts = content.split("<image>")
                for i, part in enumerate(parts):
                    if i > 0:
                        add([self.vision_start] + [self.image_pad] * image_tokens[img] + [self.vision_end], False)
                        img += 1
                        last_image_end = len(ids)
                    add(self._enc(part), False)
                add([self.im_end] + self.newline, False)
            else:
                add([self.im_start] + self._enc("assistant\n"), False)
                add(self._enc(content) + [self.im_end] + self.newline, True)
        return ids, labels, last_image_end

    def planned_length(self, sample: Sample) -> tuple[int, int, int]:
        """(full length, last image token end, labelled tokens within cutoff) from image header sizes."""
        counts = [self.image_token_count(w, h) for (w, h) in sample.image_sizes]
        ids, labels, last_img = self._pieces(sample, counts)
        kept = sum(1 for t in labels[1 : self.cutoff_len] if t != IGNORE_INDEX)
        return len(ids), last_img, kept

    def encode(self, sample: Sample) -> dict[str, Any]:
        from PIL import Image

        pil = []
        for path in sample.images:
            with Image.open(path) as im:
                im = im.convert("RGB")
                size = self.fit_size(*im.size)
                if size != im.size:
                    im = im.resize(size, Image.Resampling.BICUBIC)
                pil.append(im)
        pixel_values = grid = None
        counts: list[int] = []
        if pil:
            out = self.ip(images=pil, return_tensors="pt")
            pixel_values, grid = out["pixel_values"], out["image_grid_thw"]
            counts = [int(g.prod()) // (self.merge**2) for g in grid]
        ids, labels, _ = self._pieces(sample, counts)
        ids, labels = ids[: self.cutoff_len], labels[: self.cutoff_len]
        return {"input_ids": ids, "labels": labels, "pixel_values": pixel_values, "image_grid_thw": grid}
