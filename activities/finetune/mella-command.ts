/**
 * The project trainer's command line (trainer/mella_train.py; options in docs/trainer.md) from a
 * fine-tune config. Always `--resume auto`: the first attempt finds nothing to resume, a retried one
 * (the worker died, the machine rebooted) continues from the latest complete checkpoint, and a retry
 * after the model was written finds `final/` and returns at once. `--stop-on-stdin-eof` makes the
 * trainer stop (checkpointing) when the worker that launched it dies (trainer/mella_trainer/parent.py).
 */
import type { FinetuneConfig } from './config';
import { TRAIN_SCRIPT, trainerPython } from './worker-env';

export interface TrainerCommand {
  file: string;
  args: string[];
}

export function mellaTrainerArgs(a: { datasetDir: string; datasetName: string; outputDir: string; config: FinetuneConfig }): string[] {
  const { config: c } = a;
  const h = c.hyperparameters;
  const args = [
    '--dataset-dir', a.datasetDir,
    '--dataset', a.datasetName,
    '--output', a.outputDir,
    '--model', c.model,
    '--method', c.method,
    '--learning-rate', String(h.learningRate),
    '--num-train-epochs', String(h.numTrainEpochs),
    '--max-steps', String(h.maxSteps),
    '--per-device-train-batch-size', String(h.perDeviceTrainBatchSize),
    '--gradient-accumulation-steps', String(h.gradientAccumulationSteps),
    '--lr-scheduler-type', h.lrSchedulerType,
    '--warmup-ratio', String(h.warmupRatio),
    '--warmup-steps', String(h.warmupSteps),
    '--weight-decay', String(h.weightDecay),
    '--max-grad-norm', String(h.maxGradNorm),
    '--seed', String(h.seed),
    '--cutoff-len', String(h.cutoffLen),
    '--image-max-pixels', String(h.imageMaxPixels),
    '--logging-steps', String(h.loggingSteps),
    '--save-steps', String(h.saveSteps),
    '--save-total-limit', String(h.saveTotalLimit),
    '--device', h.device,
    '--dtype', h.dtype,
  ];
  if (c.method === 'lora') {
    args.push(
      '--lora-rank', String(h.loraRank),
      '--lora-alpha', String(h.loraAlpha),
      '--lora-dropout', String(h.loraDropout),
      '--lora-target', h.loraTarget === 'all' ? 'all' : h.loraTarget.join(','),
    );
    if (h.additionalTarget.length) args.push('--additional-target', h.additionalTarget.join(','));
  } else {
    args.push(h.freezeVisionTower ? '--freeze-vision-tower' : '--no-freeze-vision-tower');
  }
  if (h.gradientCheckpointing) args.push('--gradient-checkpointing');
  // extraArgs were checked against MELLA_EXTRA_FLAGS when the config was parsed. A later duplicate of a
  // flag wins in argparse, so they go before the options the activity owns.
  args.push(...c.extraArgs);
  args.push('--resume', 'auto', '--save-on-signal', '--stop-on-stdin-eof');
  return args;
}

export function mellaTrainerCommand(a: Parameters<typeof mellaTrainerArgs>[0]): TrainerCommand {
  return { file: trainerPython(), args: [TRAIN_SCRIPT, ...mellaTrainerArgs(a)] };
}

/** `--validate-only` with the same dataset options: a cheap, torch-free check (exit 2 on a bad dataset). */
export function mellaValidateCommand(a: { datasetDir: string; datasetName: string }): TrainerCommand {
  return { file: trainerPython(), args: [TRAIN_SCRIPT, '--dataset-dir', a.datasetDir, '--dataset', a.datasetName, '--output', '/nonexistent', '--validate-only'] };
}
