import OpenAI, { APIConnectionTimeoutError, RateLimitError } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryAfterMs } from '../activities/llm/call';
import { httpFetch } from '../activities/llm/http-fetch';
import { jpegForRequest, jpegInfo } from '../activities/llm/image';
import { startRun, waitRun } from '../cli/runs';
import { startLlmStandin, type FaultPlan, type LlmStandin } from '../infra/llm-standin/index';
import { buildDemoSet, type DemoSet } from '../infra/sample-site/demo-set';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { dbClient, spawnWorker, stopProcess, testConfig, tmpDir, uniqueRunId, withCliClient, workerReady } from './support/pipeline';

const STAGES = ['ingest', 'filter', 'caption', 'translate'];
let server: SampleServer;
let workers: RunningWorkers;
let set: DemoSet;
const pool = dbClient();
const standins: LlmStandin[] = [];
const savedEnv = { url: process.env.OPENAI_BASE_URL, key: process.env.OPENAI_API_KEY };

beforeAll(async () => {
  server = await startSampleServer();
  // th and cs have phrase tables in the stand-in; de has none: its "translations" are marked copies.
  set = await buildDemoSet(server, tmpDir('llm'), ['th', 'cs', 'de']);
  workers = await startWorkers(['mella-cpu', 'mella-llm']);
});
afterAll(async () => {
  await workers?.stop();
  await server?.close();
  for (const s of standins) await s.close();
  await pool.end();
  process.env.OPENAI_BASE_URL = savedEnv.url;
  process.env.OPENAI_API_KEY = savedEnv.key;
});

/** A fresh stand-in the in-process llm worker will call (a new base URL is a new endpoint and cache identity). */
async function useStandin(opts: { faults?: FaultPlan; requireKey?: string; key?: string } = {}) {
  const s = await startLlmStandin({ port: 0, ...(opts.faults ? { faults: opts.faults } : {}), ...(opts.requireKey ? { requireKey: opts.requireKey } : {}) });
  standins.push(s);
  process.env.OPENAI_BASE_URL = s.baseUrl;
  process.env.OPENAI_API_KEY = opts.key ?? 'test-key';
  return s;
}

const config = (languages: string[], extra: Record<string, unknown> = {}) =>
  testConfig({
    languages,
    stages: STAGES,
    inputs: [{ path: set.listFile }],
    ingest: { shardSize: 4, window: 2 },
    llm: { endpoints: { default: { backoffBaseMs: 50, backoffMaxMs: 2000, maxAttempts: 4, concurrency: 4 } } },
    caption: { shardSize: 3, window: 2 },
    translate: { shardSize: 3, window: 2 },
    ...extra,
  });

async function outputs(runId: string, stage: string) {
  const { rows } = await pool.query<{ lang: string; kept: boolean; reason: string | null; text: string; calls: number; cached_calls: number; standin: boolean }>(
    'select lang, kept, reason, text, calls, cached_calls, standin from llm_outputs where run_id = $1 and stage = $2 order by lang, item_key',
    [runId, stage],
  );
  return rows;
}

describe('caption and translate through an OpenAI-compatible endpoint (the stand-in)', () => {
  let firstRun: string;
  let standin: LlmStandin;

  it('captions every kept image, translates every caption into its language, validated and labelled as stand-in output', async () => {
    standin = await useStandin();
    firstRun = uniqueRunId('llm');
    await withCliClient(async (c) => {
      await startRun(c, config(['th', 'cs']), { runId: firstRun, kind: 'manual' });
      const summary = await waitRun(c, firstRun);
      expect(summary.status).toBe('completed');
      for (const lang of ['th', 'cs']) {
        const images = summary.filter![lang]!.images.kept;
        expect(summary.languages[lang]!.caption).toEqual({ in: images, kept: images, rejected: {} });
        expect(summary.languages[lang]!.translate).toEqual({ in: images, kept: images, rejected: {} });
        expect(summary.llm!.caption![lang]).toMatchObject({ calls: images, standinOutputs: images });
        expect(summary.llm!.translate![lang]!.promptTokens).toBeGreaterThan(0);
      }
    });
    const captions = await outputs(firstRun, 'caption');
    const translations = await outputs(firstRun, 'translate');
    expect(captions.length).toBeGreaterThan(0);
    for (const c of captions) {
      expect(c.standin).toBe(true);
      expect(c.text).toMatch(/^An? [a-z-]+ image, \d+ by \d+ pixels/);
      expect(c.text).not.toContain('[stand-in]'); // the marker is removed; the flag keeps the label
    }
    for (const t of translations.filter((x) => x.lang === 'th')) expect(t.text).toMatch(/\p{Script=Thai}/u);
    for (const t of translations.filter((x) => x.lang === 'cs')) expect(t.text).toMatch(/[áčďéěíňóřšťúůýž]/);
    // Planning a stage refreshed the planner's statistics of what its shards join (llm/stage.ts): the
    // item query of a shard then probes by key instead of reading the whole run for every item.
    const { rows } = await pool.query<{ relname: string; analyzed: boolean; tuples: number }>(
      `select s.relname, s.last_analyze is not null as analyzed, c.reltuples::float as tuples
         from pg_stat_user_tables s join pg_class c on c.oid = s.relid
        where s.relname in ('llm_items', 'llm_outputs', 'filter_images')`,
    );
    expect(rows.map((r) => r.relname).sort()).toEqual(['filter_images', 'llm_items', 'llm_outputs']);
    for (const r of rows) {
      expect(r.analyzed).toBe(true);
      expect(r.tuples).toBeGreaterThan(0);
    }
  });

  it('never pays twice: the same work in a new run is served from the cache', async () => {
    const before = standin.stats().byRoute.chat ?? 0;
    const runId = uniqueRunId('llm-again');
    await withCliClient(async (c) => {
      await startRun(c, config(['th', 'cs']), { runId, kind: 'manual' });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('completed');
      for (const stage of ['caption', 'translate']) {
        for (const lang of ['th', 'cs']) {
          const u = summary.llm![stage]![lang]!;
          expect(u.calls).toBeGreaterThan(0);
          expect(u).toMatchObject({ cachedCalls: u.calls, promptTokens: 0, completionTokens: 0, costUsd: 0 });
        }
      }
    });
    expect(standin.stats().byRoute.chat ?? 0).toBe(before);
    expect((await outputs(runId, 'translate')).map((o) => o.text)).toEqual((await outputs(firstRun, 'translate')).map((o) => o.text));
  });
});

describe('endpoint faults and invalid answers', () => {
  it('waits out 429s (Retry-After) and 500s: every item answered, nothing counted twice', async () => {
    const standin = await useStandin({ faults: [{ fault: '429', first: 3, retryAfterSeconds: 1 }, { fault: '500', every: 5 }] });
    const runId = uniqueRunId('llm-faults');
    await withCliClient(async (c) => {
      await startRun(c, config(['th']), { runId, kind: 'manual' });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('completed');
      const images = summary.filter!.th!.images.kept;
      expect(summary.languages.th!.caption).toEqual({ in: images, kept: images, rejected: {} });
      expect(summary.languages.th!.translate).toEqual({ in: images, kept: images, rejected: {} });
      // Transport retries are not calls: one answer per item.
      expect(summary.llm!.caption!.th!.calls).toBe(images);
      expect(summary.llm!.translate!.th!.calls).toBe(images);
    });
    const stats = standin.stats();
    expect(stats.byFault['429']).toBe(3);
    expect(stats.byFault['500']).toBeGreaterThan(0);
    expect(stats.byRoute.chat).toBe(2 * (await outputs(runId, 'caption')).length + 3 + stats.byFault['500']!);
  });

  it('asks once more, with the reason, after an invalid answer, and prices what it paid', async () => {
    await useStandin({ faults: [{ fault: 'refusal', first: 1, models: ['m-caption'] }, { fault: 'empty', first: 1, models: ['m-translate'] }] });
    const runId = uniqueRunId('llm-retry');
    const prices = { 'm-caption': { inputPerMillion: 1, outputPerMillion: 2 } };
    await withCliClient(async (c) => {
      await startRun(c, config(['th'], { caption: { model: 'm-caption', shardSize: 3 }, translate: { model: 'm-translate' }, llm: { endpoints: { default: { backoffBaseMs: 50 } }, prices } }), {
        runId,
        kind: 'manual',
      });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('completed');
      const images = summary.filter!.th!.images.kept;
      expect(summary.languages.th!.caption).toEqual({ in: images, kept: images, rejected: {} });
      expect(summary.languages.th!.translate).toEqual({ in: images, kept: images, rejected: {} });
      // One refused caption and one empty translation were asked again: one more call each.
      expect(summary.llm!.caption!.th!.calls).toBe(images + 1);
      expect(summary.llm!.translate!.th!.calls).toBe(images + 1);
      const u = summary.llm!.caption!.th!;
      expect(u.costUsd).toBeCloseTo((u.promptTokens * 1 + u.completionTokens * 2) / 1e6, 12);
      expect(summary.llm!.translate!.th!.costUsd).toBe(0); // no price configured for m-translate
    });
    const retried = (await outputs(runId, 'caption')).filter((o) => o.calls === 2);
    expect(retried).toHaveLength(1);
    expect(retried[0]!.kept).toBe(true);
  });

  it('records a rejection with its reason when the answer stays invalid (refusals; a "translation" that is English)', async () => {
    await useStandin({ faults: [{ fault: 'refusal', models: ['refuser'] }] });
    const runId = uniqueRunId('llm-invalid');
    await withCliClient(async (c) => {
      await startRun(c, config(['de']), { runId, kind: 'manual' });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('completed');
      const images = summary.filter!.de!.images.kept;
      expect(summary.languages.de!.caption!.kept).toBe(images);
      // The stand-in has no German: it returns the English caption marked as a pseudo-translation.
      expect(summary.languages.de!.translate).toEqual({ in: images, kept: 0, rejected: { copy_of_source: images } });
      expect(summary.llm!.translate!.de!.calls).toBe(2 * images);
    });
    const refusedRun = uniqueRunId('llm-refused');
    await withCliClient(async (c) => {
      await startRun(c, config(['cs'], { caption: { model: 'refuser' } }), { runId: refusedRun, kind: 'manual' });
      const summary = await waitRun(c, refusedRun);
      expect(summary.status).toBe('completed');
      const images = summary.filter!.cs!.images.kept;
      expect(summary.languages.cs!.caption).toEqual({ in: images, kept: 0, rejected: { refusal: images } });
      expect(summary.languages.cs!.translate).toEqual({ in: 0, kept: 0, rejected: {} });
    });
    const rows = await outputs(refusedRun, 'caption');
    expect(rows.every((r) => r.calls === 2 && r.reason === 'refusal' && /sorry/i.test(r.text))).toBe(true);
  });

  it('fails the run at once, without retrying, when the endpoint refuses the key', async () => {
    await useStandin({ requireKey: 'the-right-key', key: 'a-wrong-key' });
    const runId = uniqueRunId('llm-401');
    await withCliClient(async (c) => {
      await startRun(c, config(['cs']), { runId, kind: 'manual' });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('failed');
      expect(summary.error).toMatch(/refused the API key: HTTP 401/);
    });
    const { rows } = await pool.query(`select count(*)::int as n from llm_outputs where run_id = $1`, [runId]);
    expect(rows[0].n).toBe(0);
  });
});

describe('fused descriptions (optional stage)', () => {
  it('describes each kept record in the target language with its native alt as context, and exports them as their own source', async () => {
    await useStandin();
    const exportsDir = tmpDir('fuse-exports');
    const saved = process.env.MELLA_EXPORT_DIR;
    process.env.MELLA_EXPORT_DIR = exportsDir;
    try {
      const runId = uniqueRunId('llm-fuse');
      await withCliClient(async (c) => {
        await startRun(c, config(['th'], { stages: ['ingest', 'filter', 'fuse', 'merge'], fuse: { shardSize: 3 }, merge: { name: `fuse-${process.pid}` } }), { runId, kind: 'manual' });
        const summary = await waitRun(c, runId);
        expect(summary.status).toBe('completed');
        const records = summary.languages.th!.filter!.kept;
        expect(summary.languages.th!.fuse).toEqual({ in: records, kept: records, rejected: {} });
        expect(summary.dataset!.counts.bySource).toEqual({ know: records, fused: records });
      });
      const rows = (await pool.query<{ text: string; source_text: string; standin: boolean }>(
        `select text, source_text, standin from llm_outputs where run_id = $1 and stage = 'fuse'`,
        [runId],
      )).rows;
      for (const r of rows) {
        expect(r.standin).toBe(true);
        expect(r.text).toMatch(/\p{Script=Thai}/u);
        // The stand-in quotes the native alt it was given: the context reached the model.
        expect(r.text).toContain(r.source_text);
      }
    } finally {
      process.env.MELLA_EXPORT_DIR = saved;
    }
  });
});

describe('secrets', () => {
  it('keeps the API key out of Temporal history, PostgreSQL and the worker log', async () => {
    const secret = `sk-mella-test-${Date.now().toString(36)}-do-not-log`;
    const standin = await startLlmStandin({ port: 0, requireKey: secret });
    standins.push(standin);
    const runId = uniqueRunId('llm-secret');
    // A worker process of its own whose environment alone holds the key, as in a deployment.
    await workers.stop();
    const worker = spawnWorker(['cpu', 'llm'], { MELLA_TEST_LLM_KEY: secret });
    try {
      await workerReady(worker);
      await withCliClient(async (c) => {
        await startRun(c, config(['cs'], { llm: { endpoints: { default: { baseUrl: standin.baseUrl, apiKeyEnv: 'MELLA_TEST_LLM_KEY' } } } }), { runId, kind: 'manual' });
        const summary = await waitRun(c, runId);
        expect(summary.status).toBe('completed');
        expect(summary.languages.cs!.translate!.kept).toBeGreaterThan(0);
        // Every history of the run: the root, the language child.
        for (const id of [`mella-run-${runId}`, `mella-run-${runId}-lang-cs`]) {
          const history = await c.client.workflow.getHandle(id).fetchHistory();
          expect(JSON.stringify(history)).not.toContain(secret);
        }
      });
      const tables = (await pool.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = 'public'`)).rows;
      for (const { table_name } of tables) {
        const { rows } = await pool.query(`select count(*)::int as n from "${table_name}" t where t::text like $1`, [`%${secret}%`]);
        expect(rows[0].n, table_name).toBe(0);
      }
      expect(worker.output()).not.toContain(secret);
      expect(standin.stats().byOutcome.ok).toBeGreaterThan(0);
    } finally {
      await stopProcess(worker);
      workers = await startWorkers(['mella-cpu', 'mella-llm']);
    }
  });
});

describe('request building and transport', () => {
  const photo = (width: number, height: number) =>
    sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 200 }, noise: { type: 'gaussian', mean: 128, sigma: 20 } } });

  it('sends a training copy that already is a small JPEG byte for byte, and re-encodes anything else', async () => {
    const small = await photo(160, 120).jpeg({ quality: 85 }).toBuffer();
    expect(jpegInfo(small)).toEqual({ width: 160, height: 120, components: 3, exif: false });
    expect((await jpegForRequest(small, 768)).equals(small)).toBe(true);
    const progressive = await photo(300, 200).jpeg({ progressive: true }).toBuffer();
    expect((await jpegForRequest(progressive, 768)).equals(progressive)).toBe(true);
    // Larger than the size sent: shrunk.
    const large = await photo(1000, 800).jpeg().toBuffer();
    const shrunk = await jpegForRequest(large, 768);
    expect(await sharp(shrunk).metadata()).toMatchObject({ format: 'jpeg', width: 768, height: 614 });
    // Not a JPEG: re-encoded as one.
    const png = await photo(100, 80).png().toBuffer();
    expect(jpegInfo(png)).toBeUndefined();
    expect(await sharp(await jpegForRequest(png, 768)).metadata()).toMatchObject({ format: 'jpeg', width: 100, height: 80 });
    // An EXIF orientation (a re-encode drops it, as before): re-encoded.
    const rotated = await photo(160, 120).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(jpegInfo(rotated)?.exif).toBe(true);
    expect((await jpegForRequest(rotated, 768)).equals(rotated)).toBe(false);
  });

  it('the openai client over http-fetch: answers with headers, typed errors with Retry-After, timeouts', async () => {
    const standin = await startLlmStandin({ latencyMs: 0 });
    standins.push(standin);
    const client = new OpenAI({ baseURL: standin.baseUrl, apiKey: 'k', maxRetries: 0, timeout: 300, fetch: httpFetch });
    const body = { model: 'm', messages: [{ role: 'user' as const, content: 'hello' }] };
    const { data, response } = await client.chat.completions.create(body).withResponse();
    expect(data.choices[0]!.message.content).toContain('[stand-in]');
    expect(response.headers.get('x-mella-standin')).toBe('1');
    const limited = await client.chat.completions.create(body, { headers: { 'x-standin-fault': '429=3' } }).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitError);
    expect(retryAfterMs((limited as RateLimitError).headers as Headers)).toBe(3000);
    const hung = await client.chat.completions.create(body, { headers: { 'x-standin-fault': 'hang' } }).catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(APIConnectionTimeoutError);
    const malformed = await client.chat.completions.create(body, { headers: { 'x-standin-fault': 'malformed-json' } }).catch((e: unknown) => e);
    expect(malformed).toBeInstanceOf(SyntaxError);
  });
});
