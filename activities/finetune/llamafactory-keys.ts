/**
 * The LLaMA-Factory training keys the generated YAML may contain: a checked allow-list, so a typo or a
 * key LLaMA-Factory does not know is caught here (LLaMA-Factory's HfArgumentParser would reject it on
 * the GPU machine, after the job was queued) and `extraArgs` cannot smuggle in anything else.
 *
 * Where the names come from (hiyouga/LLaMA-Factory, read for this file; LLaMA-Factory itself is not
 * installed here):
 *   - src/llamafactory/hparams/model_args.py: BaseModelArguments, ProcessorArguments, QuantizationArguments
 *   - src/llamafactory/hparams/data_args.py: DataArguments
 *   - src/llamafactory/hparams/finetuning_args.py: FinetuningArguments (+ LoraArguments, FreezeArguments)
 *   - src/llamafactory/hparams/training_args.py: TrainingArguments = transformers' Seq2SeqTrainingArguments
 *     (+ LLaMA-Factory's overwrite_output_dir); only the Trainer keys its examples use are listed
 *   - examples/train_lora/qwen2vl_lora_sft.yaml (every key of that example is here)
 * Only keys that make sense for supervised multimodal fine-tuning are listed; RLHF, GaLore/APOLLO/BAdam,
 * export, inference engines and hub tokens are left out on purpose.
 */

const MODEL_KEYS = [
  // BaseModelArguments
  'model_name_or_path', 'adapter_name_or_path', 'cache_dir', 'use_fast_tokenizer', 'resize_vocab', 'split_special_tokens',
  'add_tokens', 'add_special_tokens', 'model_revision', 'low_cpu_mem_usage', 'rope_scaling', 'flash_attn', 'shift_attn',
  'use_unsloth', 'use_unsloth_gc', 'enable_liger_kernel', 'disable_gradient_checkpointing', 'use_reentrant_gc',
  'upcast_layernorm', 'upcast_lmhead_output', 'train_from_scratch', 'trust_remote_code', 'print_param_status',
  // ProcessorArguments
  'image_max_pixels', 'image_min_pixels', 'video_max_pixels', 'video_min_pixels', 'video_fps', 'video_maxlen',
  // QuantizationArguments (QLoRA)
  'quantization_method', 'quantization_bit', 'quantization_type', 'double_quantization',
] as const;

const DATA_KEYS = [
  'template', 'dataset', 'eval_dataset', 'dataset_dir', 'media_dir', 'cutoff_len', 'train_on_prompt', 'mask_history',
  'streaming', 'buffer_size', 'mix_strategy', 'interleave_probs', 'overwrite_cache', 'preprocessing_batch_size',
  'preprocessing_num_workers', 'max_samples', 'val_size', 'packing', 'neat_packing', 'tokenized_path',
] as const;

const FINETUNING_KEYS = [
  'stage', 'finetuning_type', 'pure_bf16', 'plot_loss', 'compute_accuracy', 'disable_shuffling',
  'freeze_vision_tower', 'freeze_multi_modal_projector', 'freeze_language_model',
  // LoraArguments
  'additional_target', 'lora_alpha', 'lora_dropout', 'lora_rank', 'lora_target', 'loraplus_lr_ratio', 'use_rslora', 'use_dora',
  'pissa_init', 'create_new_adapter',
  // FreezeArguments
  'freeze_trainable_layers', 'freeze_trainable_modules', 'freeze_extra_modules',
] as const;

const TRAINING_KEYS = [
  'output_dir', 'overwrite_output_dir', 'do_train', 'do_eval', 'resume_from_checkpoint',
  'per_device_train_batch_size', 'per_device_eval_batch_size', 'gradient_accumulation_steps', 'learning_rate',
  'num_train_epochs', 'max_steps', 'lr_scheduler_type', 'warmup_ratio', 'warmup_steps', 'weight_decay', 'max_grad_norm',
  'optim', 'seed', 'data_seed', 'bf16', 'fp16', 'tf32', 'gradient_checkpointing', 'logging_steps', 'save_strategy',
  'save_steps', 'save_total_limit', 'save_only_model', 'eval_strategy', 'eval_steps', 'report_to', 'run_name',
  'ddp_timeout', 'dataloader_num_workers', 'deepspeed',
] as const;

export const LLAMAFACTORY_KEYS: ReadonlySet<string> = new Set<string>([...MODEL_KEYS, ...DATA_KEYS, ...FINETUNING_KEYS, ...TRAINING_KEYS]);

/**
 * Keys the activity writes itself (paths, resume, the method) or maps from `hyperparameters`: never
 * through `extraArgs`. `overwrite_output_dir` is refused because it would throw away the checkpoints
 * that a retried attempt resumes from.
 */
export const LLAMAFACTORY_OWNED_KEYS: ReadonlySet<string> = new Set<string>([
  'model_name_or_path', 'template', 'dataset', 'dataset_dir', 'media_dir', 'output_dir', 'overwrite_output_dir',
  'resume_from_checkpoint', 'stage', 'do_train', 'finetuning_type',
  'lora_rank', 'lora_alpha', 'lora_dropout', 'lora_target', 'additional_target', 'freeze_vision_tower',
  'cutoff_len', 'image_max_pixels', 'per_device_train_batch_size', 'gradient_accumulation_steps', 'learning_rate',
  'num_train_epochs', 'max_steps', 'lr_scheduler_type', 'warmup_ratio', 'warmup_steps', 'weight_decay', 'max_grad_norm',
  'seed', 'bf16', 'fp16', 'logging_steps', 'save_steps', 'save_total_limit', 'save_only_model', 'disable_gradient_checkpointing',
  'report_to', 'plot_loss',
]);
