/**
 * Registers a finished training's result in `models`: the final adapter or model dir, its metrics and
 * loss curve, linked to the job and its dataset version. Files up to BLOB_MAX_BYTES (configs, the
 * tokenizer, metrics, a small adapter) are also put in the content-addressed blob store; big weights
 * stay in the output dir and are referenced by path.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { blobs } from '../shared/blobs';
import { db } from '../shared/db';
import { lossCurveFromTrainerLog, TRAINER_LOG } from './llamafactory';

export const BLOB_MAX_BYTES = 16 * 1024 * 1024;

export interface ModelFile {
  path: string;
  bytes: number;
  blobKey?: string;
}

export interface LossCurve {
  step: number[];
  loss: number[];
  lr: number[];
}

async function listFiles(dir: string, skip: (rel: string) => boolean = () => false): Promise<{ rel: string; bytes: number }[]> {
  const out: { rel: string; bytes: number }[] = [];
  const walk = async (sub: string) => {
    for (const e of await fsp.readdir(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (skip(rel)) continue;
      if (e.isDirectory()) await walk(rel);
      else if (e.isFile()) out.push({ rel, bytes: (await fsp.stat(path.join(dir, rel))).size });
    }
  };
  await walk('');
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

async function storeFiles(dir: string, files: { rel: string; bytes: number }[]): Promise<ModelFile[]> {
  const out: ModelFile[] = [];
  for (const f of files) {
    if (f.bytes <= BLOB_MAX_BYTES) {
      const { key } = await blobs().put(await fsp.readFile(path.join(dir, f.rel)));
      out.push({ path: f.rel, bytes: f.bytes, blobKey: key });
    } else {
      out.push({ path: f.rel, bytes: f.bytes });
    }
  }
  return out;
}

const readJson = async <T>(file: string): Promise<T | undefined> => {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
};

export interface ModelArtifacts {
  finalDir: string;
  files: ModelFile[];
  metrics: Record<string, unknown>;
  lossCurve: LossCurve;
}

/** The mella trainer's `final/`: training_metrics.json and loss_curve.json are written by the trainer. */
export async function mellaArtifacts(outputDir: string): Promise<ModelArtifacts> {
  const finalDir = path.join(outputDir, 'final');
  const metrics = (await readJson<Record<string, unknown>>(path.join(finalDir, 'training_metrics.json'))) ?? {};
  const lossCurve = (await readJson<LossCurve>(path.join(finalDir, 'loss_curve.json'))) ?? { step: [], loss: [], lr: [] };
  return { finalDir, files: await storeFiles(finalDir, await listFiles(finalDir)), metrics, lossCurve };
}

/**
 * LLaMA-Factory writes the final adapter/model into output_dir itself, with train_results.json (HF
 * Trainer's metrics) and trainer_log.jsonl; checkpoints and our YAML are not part of the model.
 */
export async function llamaFactoryArtifacts(outputDir: string): Promise<ModelArtifacts> {
  const metrics = (await readJson<Record<string, unknown>>(path.join(outputDir, 'train_results.json'))) ?? {};
  let lossCurve: LossCurve = { step: [], loss: [], lr: [] };
  try {
    lossCurve = lossCurveFromTrainerLog(await fsp.readFile(path.join(outputDir, TRAINER_LOG), 'utf8'));
  } catch {
    // no log: an empty curve
  }
  const files = await listFiles(outputDir, (rel) => /^(checkpoint-\d+|\.incomplete-checkpoint-|runs$)/.test(rel) || rel.startsWith('.'));
  return { finalDir: outputDir, files: await storeFiles(outputDir, files), metrics, lossCurve };
}

/** Upserts the model row (a retry that registers again writes the same row). */
export async function registerModel(a: {
  modelId: string;
  jobId: string;
  exportId: string | null;
  backend: string;
  baseModel: string;
  method: string;
  outputDir: string;
  artifacts: ModelArtifacts;
  finalLoss: number | null;
  totalSteps: number;
}): Promise<void> {
  await db().query(
    `insert into models (model_id, job_id, export_id, backend, base_model, method, output_dir, final_dir, files, metrics, loss_curve, final_loss, total_steps)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     on conflict (model_id) do update set files = excluded.files, metrics = excluded.metrics, loss_curve = excluded.loss_curve,
       final_loss = excluded.final_loss, total_steps = excluded.total_steps, final_dir = excluded.final_dir`,
    [
      a.modelId, a.jobId, a.exportId, a.backend, a.baseModel, a.method, a.outputDir, a.artifacts.finalDir,
      JSON.stringify(a.artifacts.files), JSON.stringify(a.artifacts.metrics), JSON.stringify(a.artifacts.lossCurve), a.finalLoss, a.totalSteps,
    ],
  );
  await db().query('update finetune_jobs set model_id = $2, updated_at = now() where job_id = $1', [a.jobId, a.modelId]);
}
