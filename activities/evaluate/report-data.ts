/**
 * The report as data (report.json): per language, source and metric the value of every model, and
 * each model's delta against the baseline; the models with what their predictions cost and whether the
 * stand-in wrote them. Built from PostgreSQL; deterministic (no timestamps), so the same scores give the
 * same files.
 */
import { db } from '../shared/db';
import { evaluationRow } from './record';
import { METRIC_LABEL, METRIC_SCALE, METRICS, type MetricName } from './scoring';

export interface ReportModel {
  name: string;
  role: string;
  model: string;
  endpoints: string[];
  predictions: number;
  /** Samples without an answer (request refused), scored as empty. */
  failed: number;
  /** Answers with a note (empty, refusal, truncated): scored as given. */
  noted: Record<string, number>;
  cached: number;
  standin: number;
  promptTokens: number;
  completionTokens: number;
}

export interface ReportRow {
  lang: string;
  source: string;
  metric: MetricName;
  label: string;
  /** 100 for BLEU and chrF, 1 for the others. */
  scale: number;
  signature: string;
  n: number;
  values: Record<string, number | null>;
  /** model − baseline, for every model but the baseline (none without a baseline). */
  delta: Record<string, number | null>;
}

export interface EvaluationReport {
  evalId: string;
  versionId: string | null;
  exportDir: string;
  split: string;
  items: number;
  perLanguage: Record<string, Record<string, number>>;
  baseline: string | null;
  models: ReportModel[];
  /** Predictions written by the project's stand-in server (not a model). */
  standinPredictions: number;
  totalPredictions: number;
  rows: ReportRow[];
}

export async function loadReport(evalId: string): Promise<EvaluationReport> {
  const row = await evaluationRow(evalId);
  const config = row.config;
  const baseline = config.models.find((m) => m.role === 'baseline')?.name ?? null;
  const counts = await db().query<{ lang: string; source: string; n: string }>(
    'select lang, source, count(*) as n from eval_items where eval_id = $1 group by 1, 2 order by 1, 2',
    [evalId],
  );
  const perLanguage: Record<string, Record<string, number>> = {};
  for (const c of counts.rows) (perLanguage[c.lang] ??= {})[c.source] = Number(c.n);
  const stats = await db().query<{ model_name: string; n: string; failed: string; cached: string; standin: string; pt: string; ct: string; endpoints: string[] }>(
    `select model_name, count(*) as n, count(*) filter (where not kept) as failed, count(*) filter (where cached) as cached,
            count(*) filter (where standin) as standin, coalesce(sum(prompt_tokens), 0) as pt, coalesce(sum(completion_tokens), 0) as ct,
            array_agg(distinct endpoint) as endpoints
       from eval_predictions where eval_id = $1 group by model_name`,
    [evalId],
  );
  const notes = await db().query<{ model_name: string; reason: string; n: string }>(
    'select model_name, reason, count(*) as n from eval_predictions where eval_id = $1 and kept and reason is not null group by 1, 2',
    [evalId],
  );
  const models: ReportModel[] = config.models.map((m) => {
    const s = stats.rows.find((r) => r.model_name === m.name);
    return {
      name: m.name,
      role: m.role,
      model: m.model,
      endpoints: [...(s?.endpoints ?? [])].sort(),
      predictions: Number(s?.n ?? 0),
      failed: Number(s?.failed ?? 0),
      noted: Object.fromEntries(notes.rows.filter((r) => r.model_name === m.name).map((r) => [r.reason, Number(r.n)])),
      cached: Number(s?.cached ?? 0),
      standin: Number(s?.standin ?? 0),
      promptTokens: Number(s?.pt ?? 0),
      completionTokens: Number(s?.ct ?? 0),
    };
  });
  const scores = await db().query<{ model_name: string; lang: string; source: string; metric: MetricName; value: number; signature: string; n: number }>(
    'select model_name, lang, source, metric, value, signature, n from eval_scores where eval_id = $1',
    [evalId],
  );
  const byKey = new Map<string, ReportRow>();
  for (const s of scores.rows) {
    const key = `${s.lang}\u0000${s.source}\u0000${s.metric}`;
    let r = byKey.get(key);
    if (!r) {
      r = { lang: s.lang, source: s.source, metric: s.metric, label: METRIC_LABEL[s.metric] ?? s.metric, scale: METRIC_SCALE[s.metric] ?? 1, signature: s.signature, n: s.n, values: {}, delta: {} };
      for (const m of config.models) r.values[m.name] = null;
      byKey.set(key, r);
    }
    r.values[s.model_name] = s.value;
    r.n = Math.max(r.n, s.n);
  }
  const rows = [...byKey.values()].sort(
    (a, b) => cmp(a.lang, b.lang) || cmp(a.source, b.source) || METRICS.indexOf(a.metric) - METRICS.indexOf(b.metric),
  );
  for (const r of rows) {
    if (!baseline) continue;
    const base = r.values[baseline];
    for (const m of config.models) {
      if (m.name === baseline) continue;
      const v = r.values[m.name];
      r.delta[m.name] = v === null || v === undefined || base === null || base === undefined ? null : v - base;
    }
  }
  return {
    evalId,
    versionId: row.version_id,
    exportDir: row.export_dir,
    split: row.split,
    items: row.items ?? 0,
    perLanguage,
    baseline,
    models,
    standinPredictions: models.reduce((a, m) => a + m.standin, 0),
    totalPredictions: models.reduce((a, m) => a + m.predictions, 0),
    rows,
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A value as the tables show it: BLEU and chrF with 2 decimals (0-100), the others with 4 (0-1). */
export function formatValue(v: number | null | undefined, scale: number, signed = false): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const s = v.toFixed(scale === 100 ? 2 : 4);
  return signed && v > 0 ? `+${s}` : s;
}
