"""MELLA's own fine-tuning trainer: supervised fine-tuning of a vision-language model (Qwen2-VL family)
on a LLaMA-Factory sharegpt export. See docs/trainer.md for the command line and the output protocol."""

__version__ = "1.0.0"
