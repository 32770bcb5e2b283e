"""`--model tiny-random`: a real transformers Qwen2-VL (Qwen2VLForConditionalGeneration) with a tiny config,
randomly initialised from the seed, with a byte-level BPE tokenizer trained locally on the dataset's texts
and a Qwen2-VL image processor with small patches. Nothing is downloaded. It is saved as an ordinary HF
model dir, so everything after it runs the same code as a real Qwen2-VL checkpoint.
"""

from __future__ import annotations

from typing import Iterable

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# The sizes: about 0.2M parameters with a 1K vocabulary.
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
VISION = dict(depth=2, embed_dim=32, num_heads=2, mlp_ratio=2, patch_size=4, spatial_merge_size=2, temporal_patch_size=2)
# Images are resized into 16x16..32x32 pixels: 4 to 16 image tokens each.
IMAGE_MIN_PIXELS = 16 * 16
IMAGE_MAX_PIXELS = 32 * 32


def build_tiny_model(out_dir: str, texts: Iterable[str], seed: int, vocab_size: int = 1024) -> dict:
    """Writes config, weights (safetensors), tokenizer and image processor to out_dir; returns a summary."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte: any language encodes
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = TEXT["hidden_size"] // TEXT["num_attention_heads"]
    half = head_dim // 2  # M-RoPE splits the rotary half-dimension into (temporal, height, width)
    mrope = [half - 2 * (half // 3), half // 3, half // 3]
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
            bos_token_id=None,
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
            **TEXT,
        ),
        vision_config=dict(hidden_size=TEXT["hidden_size"], **VISION),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    Qwen2VLImageProcessorPil(
        patch_size=VISION["patch_size"],
        temporal_patch_size=VISION["temporal_patch_size"],
        merge_size=VISION["spatial_merge_size"],
        min_pixels=IMAGE_MIN_PIXELS,
        max_pixels=IMAGE_MAX_PIXELS,
    ).save_pretrained(out_dir)
    return {
        "architecture": "Qwen2VLForConditionalGeneration",
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
    }
