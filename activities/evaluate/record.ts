/**
 * The evaluation's row in PostgreSQL: registered when the workflow starts (the export directory resolved
 * from the dataset version), finished with its status or error. Activities read the config snapshot
 * from here, so shard activities carry only ids.
 */
import fs from 'node:fs';
import path from 'node:path';
import { db } from '../shared/db';
import { ConfigError } from '../shared/config';
import { MANIFEST_FILE } from '../merge/manifest';
import { parseEvaluateConfig, type EvaluateConfig } from './config';

export interface EvaluationRow {
  eval_id: string;
  workflow_id: string;
  version_id: string | null;
  export_dir: string;
  split: string;
  models: unknown;
  config: EvaluateConfig;
  status: string;
  items: number | null;
  shard_count: number | null;
  report_dir: string | null;
  report_json: string | null;
  report_md: string | null;
  report_html: string | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

/** The export directory the config names (a version's directory, or the directory itself). */
export async function resolveExportDir(config: EvaluateConfig): Promise<string> {
  let dir = config.exportDir;
  if (config.version) {
    const { rows } = await db().query<{ dir: string }>('select dir from dataset_versions where version_id = $1', [config.version]);
    if (!rows[0]) throw new ConfigError(`no dataset version "${config.version}" (mella export list shows them)`);
    dir = rows[0].dir;
  }
  const resolved = path.resolve(dir!);
  if (!fs.existsSync(path.join(resolved, MANIFEST_FILE))) throw new ConfigError(`${resolved} has no ${MANIFEST_FILE}: not a MELLA export`);
  return resolved;
}

export function defaultReportDir(exportDir: string, evalId: string): string {
  return path.join(path.dirname(exportDir), 'evaluations', evalId);
}

/** Activity (mella-cpu): records the evaluation; a second start of the same id continues it (same config only). */
export async function registerEvaluation(a: { evalId: string; workflowId: string; config: EvaluateConfig }): Promise<{ exportDir: string; reportDir: string }> {
  const config = parseEvaluateConfig(a.config);
  const exportDir = await resolveExportDir(config);
  const reportDir = path.resolve(config.outputDir ?? defaultReportDir(exportDir, a.evalId));
  const models = config.models.map((m) => ({
    name: m.name,
    role: m.role,
    endpoint: { name: m.endpoint, baseUrl: config.llm.endpoints[m.endpoint]?.baseUrl ?? null },
    model: m.model,
  }));
  const existing = await db().query<{ config: unknown }>('select config from evaluations where eval_id = $1', [a.evalId]);
  // jsonb reorders keys: compare canonically.
  if (existing.rows[0] && canonical(existing.rows[0].config) !== canonical(config)) {
    throw new ConfigError(`evaluation ${a.evalId} exists with another config; pick another eval id`);
  }
  await db().query(
    `insert into evaluations (eval_id, workflow_id, version_id, export_dir, split, models, config, report_dir)
     values ($1, $2, $3, $4, $5, $6, $7, $8)
     on conflict (eval_id) do update set status = 'running', error = null, workflow_id = excluded.workflow_id, updated_at = now(), finished_at = null`,
    [a.evalId, a.workflowId, config.version ?? null, exportDir, config.split, JSON.stringify(models), JSON.stringify(config), reportDir],
  );
  return { exportDir, reportDir };
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Activity (mella-cpu): the outcome. */
export async function finishEvaluation(a: { evalId: string; status: 'completed' | 'failed' | 'cancelled'; error?: string }): Promise<void> {
  await db().query(
    `update evaluations set status = $2, error = $3, updated_at = now(), finished_at = now() where eval_id = $1`,
    [a.evalId, a.status, a.error?.slice(0, 2000) ?? null],
  );
}

export async function evaluationRow(evalId: string): Promise<EvaluationRow> {
  const { rows } = await db().query<EvaluationRow>('select * from evaluations where eval_id = $1', [evalId]);
  if (!rows[0]) throw new ConfigError(`no evaluation ${evalId}`);
  return { ...rows[0], config: parseEvaluateConfig(rows[0].config) };
}
