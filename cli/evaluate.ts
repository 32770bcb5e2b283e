/**
 * `mella eval start | status | report`: the evaluate workflow from the command line. Status combines
 * the workflow's `progress` query with the evaluation's row in PostgreSQL; report prints the Markdown
 * report's path and its tables.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { EVAL_ID_PATTERN, loadEvaluateConfigFile, parseEvaluateConfig, type EvaluateConfig } from '../activities/evaluate/config';
import type { EvaluateProgress, EvaluateResult } from '../activities/evaluate/types';
import { ConfigError } from '../activities/shared/config';
import { resolveConnections, workflowUiLink } from '../infra/connections';
import { evaluateProgressQuery, evaluateWorkflowId, mellaEvaluate } from '../workflows/evaluate';
import { RUN_KIND, RUN_NAME, STAGE } from '../workflows/search-attributes';
import { connectClient, type CliClient } from './client';

export function defaultEvalId(label: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `eval-${label.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 60) || 'dataset'}-${stamp}`.toLowerCase();
}

/** A config file, with --version / --export-dir / --split overriding it (relative paths: against the file or the cwd). */
export function evaluateConfigFrom(file: string | undefined, o: { version?: string; exportDir?: string; split?: string }): EvaluateConfig {
  let raw: Record<string, unknown> = {};
  if (file) {
    const c = loadEvaluateConfigFile(file) as Record<string, unknown>;
    const base = path.dirname(path.resolve(file));
    raw = { ...c };
    if (typeof c.exportDir === 'string') raw.exportDir = path.resolve(base, c.exportDir);
    if (typeof c.outputDir === 'string') raw.outputDir = path.resolve(base, c.outputDir);
  }
  if (o.version) {
    raw.version = o.version;
    delete raw.exportDir;
  }
  if (o.exportDir) {
    raw.exportDir = path.resolve(o.exportDir);
    delete raw.version;
  }
  if (o.split) raw.split = o.split;
  return parseEvaluateConfig(raw);
}

export async function startEvaluation(c: CliClient, evalId: string, configIn: EvaluateConfig) {
  if (!EVAL_ID_PATTERN.test(evalId)) throw new ConfigError(`eval id "${evalId}": letters, digits, '.', '_' and '-' only (at most 100)`);
  const config = parseEvaluateConfig(configIn);
  const workflowId = evaluateWorkflowId(evalId);
  try {
    const handle = await c.client.workflow.start(mellaEvaluate, {
      taskQueue: 'mella-cpu',
      workflowId,
      args: [{ evalId, config }],
      // A failed or cancelled evaluation may be started again under its id (stored predictions are kept).
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      typedSearchAttributes: [
        { key: RUN_NAME, value: evalId },
        { key: RUN_KIND, value: 'evaluate' },
        { key: STAGE, value: 'evaluate' },
      ],
      memo: { version: config.version ?? null, exportDir: config.exportDir ?? null, split: config.split, models: config.models.map((m) => `${m.name}:${m.role}`) },
    });
    return { handle, workflowId, uiUrl: workflowUiLink(c.connections, workflowId) };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new Error(`evaluation ${evalId} is running or has completed; pick another --eval-id`);
    throw err;
  }
}

export interface EvaluateOutcome {
  evalId: string;
  status: 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';
  result?: EvaluateResult;
  error?: string;
}

export async function waitEvaluation(c: CliClient, evalId: string): Promise<EvaluateOutcome> {
  const handle = c.client.workflow.getHandle(evaluateWorkflowId(evalId));
  try {
    return { evalId, status: 'completed', result: (await handle.result()) as EvaluateResult };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const name = (await handle.describe()).status.name.toLowerCase();
    const status: EvaluateOutcome['status'] = (['cancelled', 'terminated', 'timed_out'] as const).find((s) => s === name) ?? 'failed';
    let e = err as { message?: string; cause?: unknown };
    while (e.cause && typeof e.cause === 'object') e = e.cause as typeof e;
    return { evalId, status, error: e.message ?? String(err) };
  }
}

export interface EvaluationRecord {
  eval_id: string;
  version_id: string | null;
  export_dir: string;
  split: string;
  status: string;
  items: number | null;
  report_md: string | null;
  report_html: string | null;
  report_json: string | null;
  error: string | null;
  predictions: { model_name: string; n: number; failed: number; cached: number; standin: number }[];
}

export async function evaluationRecord(evalId: string): Promise<EvaluationRecord | undefined> {
  const client = new pg.Client({ connectionString: resolveConnections().databaseUrl });
  await client.connect();
  try {
    const row = (await client.query('select eval_id, version_id, export_dir, split, status, items, report_md, report_html, report_json, error from evaluations where eval_id = $1', [evalId])).rows[0];
    if (!row) return undefined;
    const preds = await client.query(
      `select model_name, count(*)::int as n, (count(*) filter (where not kept))::int as failed, (count(*) filter (where cached))::int as cached,
              (count(*) filter (where standin))::int as standin from eval_predictions where eval_id = $1 group by 1 order by 1`,
      [evalId],
    );
    return { ...row, predictions: preds.rows } as EvaluationRecord;
  } finally {
    await client.end();
  }
}

export async function evaluationStatus(c: CliClient, evalId: string) {
  const workflowId = evaluateWorkflowId(evalId);
  const handle = c.client.workflow.getHandle(workflowId);
  let status: string;
  try {
    status = (await handle.describe()).status.name.toLowerCase();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Error(`no evaluation ${evalId} (workflow ${workflowId} not found)`);
    throw err;
  }
  const progress = status === 'running' ? ((await handle.query(evaluateProgressQuery).catch(() => undefined)) as EvaluateProgress | undefined) : undefined;
  return { evalId, workflowId, status, uiUrl: workflowUiLink(c.connections, workflowId), progress, record: await evaluationRecord(evalId) };
}

export function formatEvaluationStatus(s: Awaited<ReturnType<typeof evaluationStatus>>): string {
  const r = s.record;
  const lines = [`evaluation ${s.evalId}: ${s.status}${s.progress ? ` (${s.progress.phase})` : ''}${r ? `, ${r.status}` : ''}`];
  if (s.uiUrl) lines.push(s.uiUrl);
  if (r) {
    lines.push(`  data     ${r.version_id ? `version ${r.version_id} ` : ''}${r.export_dir} [${r.split}], ${r.items ?? '?'} samples`);
    for (const p of r.predictions) lines.push(`  ${p.model_name.padEnd(20)} ${p.n} predictions, ${p.failed} without answer, ${p.cached} cached, ${p.standin} stand-in`);
    if (r.report_md) lines.push(`  report   ${r.report_md}`, `           ${r.report_html}`);
    if (r.error) lines.push(`  error    ${r.error}`);
  }
  for (const m of s.progress?.models ?? []) lines.push(`  ${m.name.padEnd(20)} shards ${m.doneShards}/${m.totalShards}`);
  return lines.join('\n');
}

async function withClient<T>(fn: (c: CliClient) => Promise<T>): Promise<T> {
  const c = await connectClient();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

const print = (json: boolean | undefined, data: unknown, text: string) => console.log(json ? JSON.stringify(data, null, 2) : text);

function formatOutcome(o: EvaluateOutcome): string {
  if (!o.result) return `evaluation ${o.evalId}: ${o.status}${o.error ? ` (${o.error})` : ''}`;
  const r = o.result;
  return [
    `evaluation ${o.evalId}: completed, ${r.items} samples`,
    ...r.models.map((m) => `  ${m.name} (${m.role}): ${m.predictions} predictions, ${m.cached} cached, ${m.failed} without answer`),
    ...(r.standin ? ['  NOTE: predictions came from the stand-in server, not from a model'] : []),
    `  report ${r.report.markdown}`,
    `         ${r.report.html}`,
  ].join('\n');
}

/** The `mella eval` command group. */
export function addEvaluateCommands(program: Command): void {
  const ev = program.command('eval').description("evaluate models against a dataset version's split (baseline vs fine-tuned; the paper's metrics per language)");
  ev.command('start')
    .description('start an evaluation (workflow mella-eval-<eval id>)')
    .option('--config <file>', 'evaluate config (YAML or JSON): models, endpoints, split; see docs/evaluate.md')
    .option('--version <versionId>', 'the dataset version (overrides the config)')
    .option('--export-dir <dir>', 'an export directory instead of a version')
    .option('--split <split>', 'train | validation | test (default test)')
    .option('--eval-id <id>', 'evaluation id (default eval-<version>-<UTC timestamp>)')
    .option('--wait', 'wait for it to finish and print where the report is')
    .option('--json', 'JSON output')
    .action(async (o) => withClient(async (c) => {
      const config = evaluateConfigFrom(o.config, o);
      const evalId = o.evalId ?? defaultEvalId(config.version ?? path.basename(config.exportDir ?? 'export'));
      const { workflowId, uiUrl } = await startEvaluation(c, evalId, config);
      if (!o.wait) return print(o.json, { evalId, workflowId, uiUrl }, `evaluation ${evalId} started (workflow ${workflowId})${uiUrl ? `\n${uiUrl}` : ''}`);
      if (!o.json) console.log(`evaluation ${evalId} started${uiUrl ? `: ${uiUrl}` : ''}; waiting ...`);
      const outcome = await waitEvaluation(c, evalId);
      print(o.json, { ...outcome, workflowId, uiUrl }, formatOutcome(outcome));
      if (outcome.status !== 'completed') process.exitCode = 1;
    }));
  ev.command('status <evalId>')
    .description('workflow status and progress, predictions per model, report paths')
    .option('--json', 'JSON output')
    .action(async (evalId: string, o) => withClient(async (c) => {
      const s = await evaluationStatus(c, evalId);
      print(o.json, s, formatEvaluationStatus(s));
    }));
  ev.command('report <evalId>')
    .description('print the Markdown report (its path first); --json prints report.json')
    .option('--json', 'print report.json')
    .option('--path', 'print the paths only')
    .action(async (evalId: string, o) => {
      const r = await evaluationRecord(evalId);
      if (!r) throw new ConfigError(`no evaluation ${evalId}`);
      if (!r.report_md || !r.report_json) throw new ConfigError(`evaluation ${evalId} has no report yet (status ${r.status}${r.error ? `: ${r.error}` : ''})`);
      if (o.path) return console.log(`${r.report_md}\n${r.report_html}\n${r.report_json}`);
      if (o.json) return console.log(fs.readFileSync(r.report_json, 'utf8'));
      console.log(`${r.report_md}\n${r.report_html}\n`);
      console.log(fs.readFileSync(r.report_md, 'utf8'));
    });
}
