import { db } from '../shared/db';
import { STAGES, type StageName } from '../shared/config';
import { filterCounters } from '../filter/stage/counters';
import { previousRun } from '../crawl/previous-run';
import type { DatasetVersionSummary, RunSummary, StageCounts } from '../../workflows/types';

const empty = (): StageCounts => ({ in: 0, kept: 0, rejected: {} });

function add(c: StageCounts, status: string, reason: string | null, n: number) {
  c.in += n;
  if (status === 'stored') c.kept += n;
  else c.rejected[reason ?? 'unknown'] = (c.rejected[reason ?? 'unknown'] ?? 0) + n;
}

/**
 * The run's counts, computed from PostgreSQL (the source of truth, free of double counting whatever
 * retries happened): per stage and language, in / kept / rejected by reason; input errors with line numbers.
 */
export async function computeSummary(runId: string, status: RunSummary['status']): Promise<RunSummary> {
  const summary: RunSummary = { runId, status, stages: {}, languages: {}, uniqueImages: 0, inputErrors: [], skippedOtherLanguage: 0 };
  const run = await db().query<{ languages: string[]; stages: string[]; plan: { skippedOtherLanguage?: number } | null }>(
    'select languages, stages, plan from runs where run_id = $1',
    [runId],
  );
  for (const lang of run.rows[0]?.languages ?? []) summary.languages[lang] = { ingest: empty() };
  summary.skippedOtherLanguage = run.rows[0]?.plan?.skippedOtherLanguage ?? 0;

  const ingest = (summary.stages.ingest = empty());
  const outcomes = await db().query<{ lang: string; status: string; reason: string | null; n: string }>(
    `select r.lang, coalesce(x.status, 'pending') as status, x.reason, count(*) as n
       from ingest_records r left join ingest_results x on x.run_id = r.run_id and x.seq = r.seq
      where r.run_id = $1 group by 1, 2, 3`,
    [runId],
  );
  for (const row of outcomes.rows) {
    const n = Number(row.n);
    const perLang = (summary.languages[row.lang] ??= { ingest: empty() }).ingest!;
    if (row.status === 'pending') {
      // Not processed yet (a failed or cancelled run): counted in, neither kept nor rejected.
      perLang.in += n;
      ingest.in += n;
      continue;
    }
    add(perLang, row.status, row.reason, n);
    add(ingest, row.status, row.reason, n);
  }
  const errors = await db().query<{ source: string; line_no: number; reason: string; detail: string }>(
    'select source, line_no, reason, detail from input_errors where run_id = $1 order by source, line_no',
    [runId],
  );
  for (const e of errors.rows) add(ingest, 'rejected', e.reason, 1);
  summary.inputErrors = errors.rows.slice(0, 100).map((e) => ({ source: e.source, line: e.line_no, reason: e.reason, detail: e.detail }));
  const unique = await db().query<{ n: string }>(
    `select count(distinct x.sha256) as n from ingest_results x where x.run_id = $1 and x.status = 'stored'`,
    [runId],
  );
  summary.uniqueImages = Number(unique.rows[0]!.n);
  const stages = run.rows[0]?.stages ?? [];
  if (stages.includes('crawl')) await addCrawl(summary);
  if (stages.includes('filter')) await addFilter(summary);
  for (const stage of ['caption', 'translate', 'fuse'] as const) if (stages.includes(stage)) await addLlmStage(summary, stage);
  if (stages.includes('merge')) await addDataset(summary);
  // Stages in lifecycle order (they were filled in the order they could be computed).
  const order = (o: Record<string, StageCounts>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => STAGES.indexOf(a as StageName) - STAGES.indexOf(b as StageName)));
  summary.stages = order(summary.stages);
  for (const lang of Object.keys(summary.languages)) summary.languages[lang] = order(summary.languages[lang]!);
  return summary;
}

/**
 * The crawl: pages visited (in), harvested (kept), rejected by reason (`unchanged` for a refresh's
 * unchanged pages); per language the images found and handed to ingest, WARC records skipped by
 * reason, and for a refresh the pages new, changed, unchanged and gone against the previous crawl.
 */
async function addCrawl(summary: RunSummary) {
  const runId = summary.runId;
  const all = (summary.stages.crawl = empty());
  summary.crawl = {};
  for (const [lang, stages] of Object.entries(summary.languages)) {
    stages.crawl = empty();
    summary.crawl[lang] = { images: 0, handedOff: 0, skippedKnown: 0, warcSkipped: {} };
  }
  const pages = await db().query<{ lang: string; outcome: string; reason: string | null; n: string; images: string }>(
    'select lang, outcome, reason, count(*) as n, sum(images) as images from crawl_pages where run_id = $1 group by 1, 2, 3',
    [runId],
  );
  for (const r of pages.rows) {
    const c = summary.languages[r.lang]?.crawl;
    const x = summary.crawl[r.lang];
    if (!c || !x) continue;
    const reason = r.outcome === 'unchanged' ? 'unchanged' : (r.reason ?? 'unknown');
    add(c, r.outcome === 'harvested' ? 'stored' : 'rejected', reason, Number(r.n));
    add(all, r.outcome === 'harvested' ? 'stored' : 'rejected', reason, Number(r.n));
    if (r.outcome === 'harvested') x.images += Number(r.images);
  }
  const handoffs = await db().query<{ lang: string; records: number; skipped_known: number }>('select lang, records, skipped_known from crawl_handoffs where run_id = $1', [runId]);
  for (const h of handoffs.rows) {
    const x = summary.crawl[h.lang];
    if (x) Object.assign(x, { handedOff: h.records, skippedKnown: h.skipped_known });
  }
  const warc = await db().query<{ lang: string; skipped: Record<string, number> }>('select lang, skipped from crawl_warc_sources where run_id = $1', [runId]);
  for (const w of warc.rows) {
    const x = summary.crawl[w.lang];
    if (x) for (const [reason, n] of Object.entries(w.skipped)) x.warcSkipped[reason] = (x.warcSkipped[reason] ?? 0) + n;
  }
  const name = await db().query<{ name: string }>('select name from runs where run_id = $1', [runId]);
  const prev = name.rows[0] ? await previousRun(runId, name.rows[0].name) : undefined;
  if (prev) {
    const diff = await db().query<{ lang: string; new: string; changed: string; unchanged: string; gone: string }>(
      `with now_ as (select lang, url_key, outcome, content_sha256 from crawl_pages where run_id = $1),
            before as (select lang, url_key, content_sha256 from crawl_pages where run_id = $2 and outcome in ('harvested', 'unchanged'))
       select coalesce(n.lang, b.lang) as lang,
              count(*) filter (where n.outcome = 'harvested' and b.url_key is null) as new,
              count(*) filter (where n.outcome = 'harvested' and b.url_key is not null) as changed,
              count(*) filter (where n.outcome = 'unchanged') as unchanged,
              count(*) filter (where b.url_key is not null and (n.url_key is null or n.outcome = 'rejected')) as gone
         from now_ n full join before b on b.lang = n.lang and b.url_key = n.url_key group by 1`,
      [runId, prev],
    );
    for (const d of diff.rows) {
      const x = summary.crawl[d.lang];
      if (x) x.refresh = { previousRun: prev, new: Number(d.new), changed: Number(d.changed), unchanged: Number(d.unchanged), gone: Number(d.gone) };
    }
  }
}

/** The dataset version the merge stage recorded (absent until it has). */
async function addDataset(summary: RunSummary) {
  const { rows } = await db().query<{
    version_id: string; name: string; dir: string; content_id: string; parent_id: string | null; counts: DatasetVersionSummary['counts'];
    rejected: Record<string, number>; diff: unknown; standin_samples: number;
  }>('select version_id, name, dir, content_id, parent_id, counts, rejected, diff, standin_samples from dataset_versions where run_id = $1', [summary.runId]);
  const r = rows[0];
  if (!r) return;
  summary.stages.merge = { in: r.counts.total + Object.values(r.rejected).reduce((a, b) => a + b, 0), kept: r.counts.total, rejected: r.rejected };
  summary.dataset = {
    versionId: r.version_id, name: r.name, dir: r.dir, contentId: r.content_id, parentId: r.parent_id, counts: r.counts,
    rejected: r.rejected, diff: r.diff, standinSamples: r.standin_samples,
  };
}

/**
 * An LLM stage: items in (what its plan took: kept images, kept captions), kept, rejected by reason;
 * and what it cost per language: requests, those served from the cache, tokens and USD paid now.
 */
async function addLlmStage(summary: RunSummary, stage: 'caption' | 'translate' | 'fuse') {
  const runId = summary.runId;
  const all = (summary.stages[stage] = empty());
  const usage = ((summary.llm ??= {})[stage] = {} as NonNullable<RunSummary['llm']>[string]);
  for (const [lang, stages] of Object.entries(summary.languages)) {
    stages[stage] = empty();
    usage[lang] = { calls: 0, cachedCalls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0, standinOutputs: 0 };
  }
  const items = await db().query<{ lang: string; n: string }>(
    'select lang, count(*) as n from llm_items where run_id = $1 and stage = $2 group by 1',
    [runId, stage],
  );
  for (const r of items.rows) {
    const c = summary.languages[r.lang]?.[stage];
    if (!c) continue;
    c.in += Number(r.n);
    all.in += Number(r.n);
  }
  const outputs = await db().query<{
    lang: string; kept: boolean; reason: string | null; n: string; calls: string; cached: string; pt: string; ct: string; cost: number; standin: string;
  }>(
    `select lang, kept, reason, count(*) as n, sum(calls) as calls, sum(cached_calls) as cached, sum(prompt_tokens) as pt,
            sum(completion_tokens) as ct, sum(cost_usd) as cost, count(*) filter (where standin) as standin
       from llm_outputs where run_id = $1 and stage = $2 group by 1, 2, 3`,
    [runId, stage],
  );
  for (const r of outputs.rows) {
    const c = summary.languages[r.lang]?.[stage];
    const u = usage[r.lang];
    if (!c || !u) continue;
    const n = Number(r.n);
    for (const x of [c, all]) {
      if (r.kept) x.kept += n;
      else x.rejected[r.reason ?? 'unknown'] = (x.rejected[r.reason ?? 'unknown'] ?? 0) + n;
    }
    u.calls += Number(r.calls);
    u.cachedCalls += Number(r.cached);
    u.promptTokens += Number(r.pt);
    u.completionTokens += Number(r.ct);
    u.costUsd += Number(r.cost);
    u.standinOutputs += Number(r.standin);
  }
}

/**
 * The filter stage: records in (every record ingest stored), kept, rejected by the record's reason;
 * per language also the images judged and kept and the per-operator counters.
 */
async function addFilter(summary: RunSummary) {
  const runId = summary.runId;
  const filter = (summary.stages.filter = empty());
  summary.filter = {};
  for (const [lang, stages] of Object.entries(summary.languages)) {
    const perLang = (stages.filter = empty());
    perLang.in = stages.ingest?.kept ?? 0;
    filter.in += perLang.in;
    summary.filter[lang] = { images: empty(), operators: await filterCounters(db(), { runId, lang }) };
  }
  const records = await db().query<{ lang: string; kept: boolean; reason: string | null; n: string }>(
    'select lang, kept, reason, count(*) as n from filter_records where run_id = $1 group by 1, 2, 3',
    [runId],
  );
  for (const row of records.rows) {
    const n = Number(row.n);
    const perLang = summary.languages[row.lang]?.filter;
    if (!perLang) continue;
    for (const c of [perLang, filter]) {
      if (row.kept) c.kept += n;
      else c.rejected[row.reason ?? 'unknown'] = (c.rejected[row.reason ?? 'unknown'] ?? 0) + n;
    }
  }
  const images = await db().query<{ lang: string; kept: boolean; reason: string | null; n: string }>(
    'select lang, kept, reason, count(*) as n from filter_images where run_id = $1 group by 1, 2, 3',
    [runId],
  );
  for (const row of images.rows) {
    const c = summary.filter[row.lang]?.images;
    if (!c) continue;
    add(c, row.kept ? 'stored' : 'rejected', row.reason, Number(row.n));
  }
}
