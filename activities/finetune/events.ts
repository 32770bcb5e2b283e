/**
 * What a trainer tells the activity, whichever backend: the project trainer's MELLA_* stdout lines
 * (docs/trainer.md, "Output protocol") and LLaMA-Factory's trainer_log.jsonl lines both become these.
 */
export type TrainerEvent =
  | { kind: 'start'; totalSteps: number; startStep: number; resumedFrom: string | null; device?: string; numSamples?: number }
  | { kind: 'resume'; checkpoint: string; step: number }
  | { kind: 'progress'; step: number; totalSteps: number; loss: number | null; lr: number | null; epoch: number | null }
  | { kind: 'checkpoint'; path: string; step: number }
  | { kind: 'stopped'; signal: string; lastCheckpoint: string | null }
  | { kind: 'done'; outputDir: string; finalDir: string; totalSteps: number; finalLoss: number | null; trainLoss: number | null; trainRuntime: number | null; alreadyComplete: boolean }
  | { kind: 'error'; error: string; exitCode: number | null; message: string; problem?: string };

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * One progress object in LLaMA-Factory's trainer_log.jsonl shape (`current_steps`, `total_steps`,
 * `loss`, `lr`, `epoch`, ...): the mella trainer's MELLA_PROGRESS and LLaMA-Factory's LogCallback both
 * write it. Eval-only lines (no `loss`) still carry the step. Anything else: undefined.
 */
export function progressFromLogObject(o: unknown): Extract<TrainerEvent, { kind: 'progress' }> | undefined {
  if (!o || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  const step = num(r.current_steps);
  const total = num(r.total_steps);
  if (step === null || total === null) return undefined;
  return { kind: 'progress', step, totalSteps: total, loss: num(r.loss), lr: num(r.lr), epoch: num(r.epoch) };
}

const CHECKPOINT_LINE = /^(.+) step=(\d+)$/;

/** Parses one stdout line of trainer/mella_train.py; lines that are not protocol lines give undefined. */
export function parseMellaLine(line: string): TrainerEvent | undefined {
  const sp = line.indexOf(' ');
  if (sp < 0 || !line.startsWith('MELLA_')) return undefined;
  const tag = line.slice(0, sp);
  const rest = line.slice(sp + 1);
  const json = () => {
    try {
      return JSON.parse(rest) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  switch (tag) {
    case 'MELLA_START': {
      const o = json();
      if (!o) return undefined;
      return {
        kind: 'start',
        totalSteps: num(o.total_steps) ?? 0,
        startStep: num(o.start_step) ?? 0,
        resumedFrom: typeof o.resumed_from === 'string' ? o.resumed_from : null,
        device: typeof o.device === 'string' ? o.device : undefined,
        numSamples: num(o.num_samples) ?? undefined,
      };
    }
    case 'MELLA_RESUME':
    case 'MELLA_CHECKPOINT': {
      const m = CHECKPOINT_LINE.exec(rest);
      if (!m) return undefined;
      return tag === 'MELLA_RESUME' ? { kind: 'resume', checkpoint: m[1]!, step: Number(m[2]) } : { kind: 'checkpoint', path: m[1]!, step: Number(m[2]) };
    }
    case 'MELLA_PROGRESS':
      return progressFromLogObject(json());
    case 'MELLA_STOPPED': {
      const o = json();
      return o && { kind: 'stopped', signal: String(o.signal ?? ''), lastCheckpoint: typeof o.last_checkpoint === 'string' ? o.last_checkpoint : null };
    }
    case 'MELLA_DONE': {
      const o = json();
      if (!o) return undefined;
      return {
        kind: 'done',
        outputDir: String(o.output_dir ?? ''),
        finalDir: String(o.final_dir ?? ''),
        totalSteps: num(o.total_steps) ?? 0,
        finalLoss: num(o.final_loss),
        trainLoss: num(o.train_loss),
        trainRuntime: num(o.train_runtime),
        alreadyComplete: o.already_complete === true,
      };
    }
    case 'MELLA_ERROR': {
      const o = json();
      if (!o) return undefined;
      return {
        kind: 'error',
        error: String(o.error ?? 'runtime_error'),
        exitCode: num(o.exit_code),
        message: String(o.message ?? ''),
        problem: typeof o.problem === 'string' ? o.problem : undefined,
      };
    }
    default:
      return undefined;
  }
}
