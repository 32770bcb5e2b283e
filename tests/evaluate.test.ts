/**
 * The evaluate stage (issue 8, "Predictions" and "Report"): a small dataset version exported from
 * synthetic samples (the merge library, no pipeline run) and recorded in `dataset_versions`; two stand-in
 * servers as the baseline's and the fine-tuned model's endpoints; the `mellaEvaluate` workflow with real
 * mella-cpu and mella-llm workers. Checks: predictions stored, scores equal to the metrics library
 * computed directly on the stored predictions and the manifest's references, report files (the HTML
 * page in headless Chromium), a re-run that pays nothing, a wrong key that fails fast, and the CLI.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEvaluateConfig, type EvaluateConfig } from '../activities/evaluate/config';
import {
  corpusBleu, corpusChrf, corpusMeteor, corpusRougeL, defaultSegmentation, keywordAccuracy,
} from '../activities/evaluate/metrics/index';
import type { EvaluationReport } from '../activities/evaluate/report-data';
import { exportDataset } from '../activities/merge/export';
import { readManifest } from '../activities/merge/manifest';
import { makeSyntheticImages, syntheticSamples } from '../activities/merge/synthetic';
import { evaluationStatus, formatEvaluationStatus, startEvaluation, waitEvaluation } from '../cli/evaluate';
import { startLlmStandin, type LlmStandin } from '../infra/llm-standin/index';
import { PROJECT_ROOT } from '../infra/paths';
import { freePort } from '../infra/stack/ports';
import { startTemporalDevServer } from '../infra/stack/temporal-server';
import { evaluateWorkflowId } from '../workflows/evaluate';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { dbClient, tmpDir, uniqueRunId, withCliClient } from './support/pipeline';

const CHROMIUM = process.env.MELLA_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`evaluate: ${CHROMIUM} is missing (apt-get install chromium); the browser check is skipped`);

const pool = dbClient();
let root: string;
let exportDir: string;
let versionId: string;
let workers: RunningWorkers;
let base: LlmStandin;
let tuned: LlmStandin;
const standins: LlmStandin[] = [];
let testItems = 0;
const testLines: { imageSha256: string; instruction: string; lang: string }[] = [];
const distinctRequests = (key: (x: (typeof testLines)[number]) => string) => new Set(testLines.map(key)).size;

beforeAll(async () => {
  root = tmpDir('evaluate');
  const images = await makeSyntheticImages(path.join(root, 'blobs'), 10, { side: 64, groupSize: 1 });
  const samples = [...syntheticSamples(60, images, { langs: ['th', 'vi', 'cs'], sources: ['know', 'ling'] })];
  exportDir = path.join(root, 'exports', 'v1');
  await exportDataset(samples, { dir: exportDir, formats: ['llamafactory'], card: false, split: { fractions: { train: 0.5, validation: 0, test: 0.5 } } });
  for await (const l of readManifest(exportDir)) {
    if (l.split !== 'test') continue;
    testItems++;
    testLines.push(l);
  }

  // A dataset version as the merge stage records it (its run row first).
  const runId = uniqueRunId('evalset');
  versionId = `v-${runId}`;
  await pool.query(
    `insert into runs (run_id, name, workflow_id, languages, stages, config) values ($1, 'evalset', $2, $3, $4, '{}')`,
    [runId, `mella-run-${runId}`, ['th', 'vi', 'cs'], ['merge']],
  );
  await pool.query(
    `insert into dataset_versions (version_id, name, run_id, dir, content_id, counts, rejected, standin_samples) values ($1, 'evalset', $2, $3, 'x', '{}', '{}', 0)`,
    [versionId, runId, exportDir],
  );
  base = await startLlmStandin({ port: 0 });
  tuned = await startLlmStandin({ port: 0 });
  standins.push(base, tuned);
  workers = await startWorkers(['mella-cpu', 'mella-llm']);
});

afterAll(async () => {
  await workers?.stop();
  for (const s of standins) await s.close();
  await pool.end();
});

function evalConfig(over: Record<string, unknown> = {}): EvaluateConfig {
  return parseEvaluateConfig({
    version: versionId,
    split: 'test',
    llm: {
      endpoints: {
        // limiter's token buckets start empty: a generous budget keeps the test from waiting on them.
        base: { baseUrl: base.baseUrl, backoffBaseMs: 50, backoffMaxMs: 500, maxAttempts: 3, concurrency: 4, tokensPerMinute: 10_000_000, requestsPerMinute: 100_000 },
        tuned: { baseUrl: tuned.baseUrl, backoffBaseMs: 50, backoffMaxMs: 500, maxAttempts: 3, concurrency: 4, tokensPerMinute: 10_000_000, requestsPerMinute: 100_000 },
      },
    },
    models: [
      { name: 'qwen2-vl-base', role: 'baseline', endpoint: 'base', model: 'Qwen/Qwen2-VL-7B-Instruct' },
      // The stand-in describes the image in the target language only when asked with the hint line.
      { name: 'mella-ft', role: 'finetuned', endpoint: 'tuned', model: 'mella-lora', targetLanguageHint: true },
    ],
    shardSize: 4,
    window: 2,
    ...over,
  });
}

const chat = (s: LlmStandin) => s.stats().byRoute.chat ?? 0;

async function run(evalId: string, config: EvaluateConfig) {
  return withCliClient(async (c) => {
    await startEvaluation(c, evalId, config);
    return waitEvaluation(c, evalId);
  });
}

describe('mellaEvaluate against two stand-in endpoints', () => {
  const evalId = uniqueRunId('eval');
  let report: EvaluationReport;

  it('asks each model once per test sample, stores predictions, scores and the report', async () => {
    expect(testItems).toBeGreaterThan(8);
    const outcome = await run(evalId, evalConfig());
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe('completed');
    const r = outcome.result!;
    expect(r.items).toBe(testItems);
    expect(r.standin).toBe(true);
    for (const m of r.models) expect(m).toMatchObject({ predictions: testItems, failed: 0, standin: testItems, doneShards: Math.ceil(testItems / 4) });
    // Two test samples with the same image and instruction are one request (the second may be a cache hit).
    const [b, t] = r.models;
    expect(chat(base) + b!.cached).toBe(testItems);
    expect(chat(tuned) + t!.cached).toBe(testItems);
    expect(chat(base)).toBeGreaterThanOrEqual(distinctRequests((x) => `${x.imageSha256} ${x.instruction}`));
    expect(chat(tuned)).toBeGreaterThanOrEqual(distinctRequests((x) => `${x.imageSha256} ${x.instruction} ${x.lang}`));

    const preds = await pool.query<{ model_name: string; prediction: string; kept: boolean; standin: boolean; lang: string; cache_key: string }>(
      'select model_name, prediction, kept, standin, lang, cache_key from eval_predictions where eval_id = $1',
      [evalId],
    );
    expect(preds.rows.length).toBe(2 * testItems);
    for (const p of preds.rows) {
      expect(p).toMatchObject({ kept: true, standin: true });
      expect(p.prediction).not.toContain('[stand-in]');
      expect(p.cache_key).toMatch(/^[0-9a-f]{64}$/);
    }
    // The baseline (no hint) describes in English; the fine-tuned one (hint) in the sample's language.
    for (const p of preds.rows.filter((x) => x.model_name === 'qwen2-vl-base')) expect(p.prediction).toMatch(/^An? [a-z-]+ image, \d+ by \d+ pixels/);
    for (const p of preds.rows.filter((x) => x.model_name === 'mella-ft' && x.lang === 'th')) expect(p.prediction).toMatch(/\p{Script=Thai}/u);

    const row = (await pool.query('select status, items, report_md, report_html, report_json, models from evaluations where eval_id = $1', [evalId])).rows[0];
    expect(row).toMatchObject({ status: 'completed', items: testItems });
    expect(row.models[1]).toEqual({ name: 'mella-ft', role: 'finetuned', endpoint: { name: 'tuned', baseUrl: tuned.baseUrl }, model: 'mella-lora' });
    expect(r.report.dir).toBe(path.join(root, 'exports', 'evaluations', evalId));
    for (const f of [r.report.json, r.report.markdown, r.report.html]) expect(fs.existsSync(f)).toBe(true);
    expect(row.report_md).toBe(r.report.markdown);
    report = JSON.parse(fs.readFileSync(r.report.json, 'utf8')) as EvaluationReport;
  });

  it('stores exactly the scores the metrics library gives on the stored predictions and the references', async () => {
    const manifest = new Map<string, string>();
    for await (const l of readManifest(exportDir)) if (l.split === 'test') manifest.set(l.id, l.answer);
    const preds = (await pool.query<{ model_name: string; sample_id: string; lang: string; source: string; prediction: string }>(
      'select model_name, sample_id, lang, source, prediction from eval_predictions where eval_id = $1 order by sample_id',
      [evalId],
    )).rows;
    const scores = (await pool.query<{ model_name: string; lang: string; source: string; metric: string; value: number; signature: string; n: number }>(
      'select * from eval_scores where eval_id = $1',
      [evalId],
    )).rows;
    const got = (m: string, lang: string, source: string, metric: string) => scores.find((s) => s.model_name === m && s.lang === lang && s.source === source && s.metric === metric);
    let checked = 0;
    for (const model of ['qwen2-vl-base', 'mella-ft']) {
      for (const lang of ['th', 'vi', 'cs']) {
        for (const source of ['know', 'ling']) {
          const group = preds.filter((p) => p.model_name === model && p.lang === lang && p.source === source);
          if (!group.length) continue;
          const hyps = group.map((p) => p.prediction);
          const refs = group.map((p) => manifest.get(p.sample_id)!);
          if (source === 'know') {
            const k = keywordAccuracy(hyps.map((prediction, i) => ({ prediction, reference: refs[i]!, lang })));
            expect(got(model, lang, source, 'keyword_accuracy')!.value).toBeCloseTo(k.accuracy, 12);
            expect(got(model, lang, source, 'keyword_micro')!.value).toBeCloseTo(k.micro, 12);
            expect(got(model, lang, source, 'keyword_accuracy')!.n).toBe(k.evaluated);
            expect(got(model, lang, source, 'bleu')).toBeUndefined();
          } else {
            const bleu = corpusBleu(hyps, [refs], { tokenize: '13a', segment: defaultSegmentation(lang) });
            expect(got(model, lang, source, 'bleu')!.value).toBeCloseTo(bleu.score, 10);
            expect(got(model, lang, source, 'bleu')!.signature).toBe(bleu.signature);
            if (lang === 'th') expect(bleu.signature).toMatch(/seg:icu[\d.]+\/th/);
            else expect(bleu.signature).toContain('seg:none');
            expect(got(model, lang, source, 'chrf')!.value).toBeCloseTo(corpusChrf(hyps, [refs]).score, 10);
            expect(got(model, lang, source, 'rouge_l')!.value).toBeCloseTo(corpusRougeL(hyps, refs.map((x) => [x])).fmeasure, 12);
            const meteor = corpusMeteor(hyps, refs.map((x) => [x]), { lang });
            expect(got(model, lang, source, 'meteor')!.value).toBeCloseTo(meteor.score, 12);
            expect(got(model, lang, source, 'meteor')!.signature).toContain('modules:exact');
            expect(got(model, lang, source, 'meteor')!.n).toBe(group.length);
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    // The report carries the same values and the deltas against the baseline.
    for (const row of report.rows) {
      const b = got('qwen2-vl-base', row.lang, row.source, row.metric)!.value;
      const f = got('mella-ft', row.lang, row.source, row.metric)!.value;
      expect(row.values).toEqual({ 'qwen2-vl-base': b, 'mella-ft': f });
      expect(row.delta['mella-ft']).toBeCloseTo(f - b, 12);
    }
    expect(report.baseline).toBe('qwen2-vl-base');
    expect(report.standinPredictions).toBe(2 * testItems);
  });

  it('writes a Markdown report with per-metric tables and a banner', () => {
    const md = fs.readFileSync(path.join(root, 'exports', 'evaluations', evalId, 'report.md'), 'utf8');
    expect(md).toMatch(/^> \*\*STAND-IN OUTPUT: \d+ of \d+ predictions/m);
    for (const h of ['## Models', '## BLEU (0–100)', '## ROUGE-L (0–1)', '## METEOR (0–1)', '## chrF (0–100)', '## keyword accuracy (0–1)', '## Signatures']) expect(md).toContain(h);
    expect(md).toContain('| Δ mella-ft |');
    expect(md).toMatch(/\| th \| ling \| \d+ \| [\d.]+ \| [\d.]+ \| [+-]?[\d.]+ \|/);
  });

  it.skipIf(!HAVE_CHROMIUM)('renders report.html in headless Chromium without console errors', async () => {
    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`request failed: ${r.url().slice(0, 80)}`));
      const html = path.join(root, 'exports', 'evaluations', evalId, 'report.html');
      await page.goto(`file://${html}`, { waitUntil: 'load' });
      const facts = (await page.evaluate(`(() => ({
        scripts: document.querySelectorAll('script').length,
        svgs: document.querySelectorAll('svg').length,
        rects: document.querySelectorAll('svg rect').length,
        tables: document.querySelectorAll('table').length,
        banner: document.querySelector('.banner')?.textContent ?? '',
        text: document.body.innerText,
      }))()`)) as { scripts: number; svgs: number; rects: number; tables: number; banner: string; text: string };
      expect(problems).toEqual([]);
      expect(facts.scripts).toBe(0);
      expect(facts.svgs).toBe(6); // one chart per metric
      expect(facts.rects).toBeGreaterThan(20);
      expect(facts.tables).toBe(1 + 3); // models, then one per language
      expect(facts.banner).toMatch(/STAND-IN OUTPUT/);
      expect(facts.text).toContain('Δ mella-ft');
      const shot = path.join(root, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      console.log(`evaluate: screenshot of report.html at ${shot}`);
    } finally {
      await browser.close();
    }
    const source = fs.readFileSync(path.join(root, 'exports', 'evaluations', evalId, 'report.html'), 'utf8');
    expect(source).toContain(`content="default-src 'none'; img-src data:; style-src 'unsafe-inline'"`);
    expect(source).not.toMatch(/src="(?!data:)/);
  });

  it('a re-run pays nothing: every request is served from the cache, the scores are the same', async () => {
    const before = [chat(base), chat(tuned)];
    const again = uniqueRunId('eval-again');
    const outcome = await run(again, evalConfig());
    expect(outcome.status).toBe('completed');
    for (const m of outcome.result!.models) expect(m).toMatchObject({ predictions: testItems, cached: testItems });
    expect([chat(base), chat(tuned)]).toEqual(before);
    const scores = async (id: string) =>
      (await pool.query('select model_name, lang, source, metric, value, signature, n from eval_scores where eval_id = $1 order by 1, 2, 3, 4', [id])).rows;
    expect(await scores(again)).toEqual(await scores(evalId));
    const rep = JSON.parse(fs.readFileSync(outcome.result!.report.json, 'utf8')) as EvaluationReport;
    expect(rep.models.map((m) => [m.cached, m.promptTokens])).toEqual([[testItems, 0], [testItems, 0]]);
  });

  it('evaluates a subset: some languages, a few samples each (all from the cache)', async () => {
    const before = [chat(base), chat(tuned)];
    const outcome = await run(uniqueRunId('eval-subset'), evalConfig({ languages: ['th', 'vi'], limitPerLanguage: 2 }));
    expect(outcome.status).toBe('completed');
    expect(outcome.result!.items).toBe(4);
    expect([chat(base), chat(tuned)]).toEqual(before);
    const rep = JSON.parse(fs.readFileSync(outcome.result!.report.json, 'utf8')) as EvaluationReport;
    expect(Object.keys(rep.perLanguage)).toEqual(['th', 'vi']);
  });

  it('status and report from the command line', async () => {
    const s = await withCliClient((c) => evaluationStatus(c, evalId));
    expect(s.status).toBe('completed');
    expect(formatEvaluationStatus(s)).toMatch(/mella-ft\s+\d+ predictions, 0 without answer/);
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'mella.js'), 'eval', 'report', evalId], { env: process.env, cwd: PROJECT_ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout.split('\n')[0]).toBe(path.join(root, 'exports', 'evaluations', evalId, 'report.md'));
    expect(out.stdout).toContain('## BLEU (0–100)');
  });

  it('a wrong key fails the evaluation at once (non-retryable), without asking every sample', async () => {
    const guarded = await startLlmStandin({ port: 0, requireKey: 'the-right-key' });
    standins.push(guarded);
    process.env.MELLA_EVAL_TEST_KEY = 'a-wrong-key';
    const config = evalConfig({
      llm: { endpoints: { base: { baseUrl: guarded.baseUrl, apiKeyEnv: 'MELLA_EVAL_TEST_KEY', concurrency: 2, backoffBaseMs: 50 } } },
      models: [{ name: 'guarded', role: 'baseline', endpoint: 'base', model: 'm' }],
    });
    const evalIdBad = uniqueRunId('eval-badkey');
    const t0 = Date.now();
    const outcome = await run(evalIdBad, config);
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(/refused the API key: HTTP 401/);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(guarded.stats().byOutcome.unauthorized ?? 0).toBeLessThanOrEqual(6); // a few in flight when the first 401 comes back; no retries
    expect(guarded.stats().byOutcome.unauthorized ?? 0).toBeGreaterThan(0);
    const row = (await pool.query('select status, error from evaluations where eval_id = $1', [evalIdBad])).rows[0];
    expect(row.status).toBe('failed');
    expect(row.error).toMatch(/refused the API key/);
    expect(JSON.stringify(row)).not.toContain('a-wrong-key');
  });
});

describe('continue-as-new between prediction shards', () => {
  it('continues as new when Temporal suggests it, loses and repeats nothing, and its history replays', async () => {
    // A dedicated server that suggests continue-as-new after a few dozen events.
    const dir = tmpDir('eval-can');
    const temporal = await startTemporalDevServer({
      dbFile: path.join(dir, 'temporal.sqlite'),
      port: await freePort(),
      uiPort: 0,
      headless: true,
      logFile: path.join(dir, 'temporal.log'),
      dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 },
    });
    const saved = process.env.TEMPORAL_ADDRESS;
    process.env.TEMPORAL_ADDRESS = temporal.address;
    let w: RunningWorkers | undefined;
    try {
      w = await startWorkers(['mella-cpu', 'mella-llm']);
      const evalId = uniqueRunId('eval-can');
      const before = [chat(base), chat(tuned)];
      // One sample a shard: about 6 events a shard, far past the threshold.
      const outcome = await run(evalId, evalConfig({ shardSize: 1, window: 2 }));
      expect(outcome.error).toBeUndefined();
      expect(outcome.status).toBe('completed');
      for (const m of outcome.result!.models) expect(m).toMatchObject({ predictions: testItems, doneShards: testItems, cached: testItems });
      expect([chat(base), chat(tuned)]).toEqual(before);
      const n = (await pool.query('select count(*)::int as n from eval_predictions where eval_id = $1', [evalId])).rows[0].n;
      expect(n).toBe(2 * testItems);
      await withCliClient(async (c) => {
        const handle = c.client.workflow.getHandle(evaluateWorkflowId(evalId));
        const desc = await handle.describe();
        expect(desc.runId).not.toBe(desc.raw.workflowExecutionInfo?.firstRunId ?? desc.runId);
        const history = await handle.fetchHistory();
        for await (const r of Worker.runReplayHistories({ workflowsPath: path.join(PROJECT_ROOT, 'workflows', 'index.ts'), replayName: 'evaluate' }, [{ workflowId: evaluateWorkflowId(evalId), history }])) {
          expect(r.error).toBeUndefined();
        }
      });
    } finally {
      await w?.stop();
      process.env.TEMPORAL_ADDRESS = saved;
      await temporal.stop();
    }
  });
});
