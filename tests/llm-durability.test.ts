/**
 * The LLM stages under a killed worker and under their endpoint's limits, measured at the stand-in:
 *  - SIGKILL of the llm worker in the middle of a caption shard: the run completes on a new worker, at
 *    most the requests in flight are paid again, every item has exactly one output;
 *  - concurrency, requests per minute and tokens per minute are what the stand-in sees.
 * The limits are asserted as behaviour: no more requests in flight than configured, and no more
 * requests in any interval than a token bucket of that size and rate allows (which implies a minimum
 * elapsed time), never as a speed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedChat } from '../activities/llm/call';
import { llmConfigSchema } from '../activities/llm/config';
import { resolveEndpoint } from '../activities/llm/endpoint';
import { closeDb } from '../activities/shared/db';
import { startRun, waitRun } from '../cli/runs';
import { startLlmStandin, type LlmStandin } from '../infra/llm-standin/index';
import { drawSceneImage } from '../infra/sample-site/images';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { dbClient, spawnWorker, stopProcess, testConfig, tmpDir, uniqueRunId, waitFor, withCliClient, workerReady, writeList } from './support/pipeline';

const pool = dbClient();
const standins: LlmStandin[] = [];
let server: SampleServer;

beforeAll(async () => {
  server = await startSampleServer();
});
afterAll(async () => {
  for (const s of standins) await s.close();
  await server?.close();
  await closeDb();
  await pool.end();
});

describe('a SIGKILLed llm worker', () => {
  const N = 24; // images, so captions
  const CONCURRENCY = 4; // requests in flight per llm worker
  const KILL_AFTER = 9; // answers served before the kill: inside the first two shards of 6

  let cpu: RunningWorkers | undefined;
  let llm: ReturnType<typeof spawnWorker> | undefined;
  afterAll(async () => {
    if (llm) await stopProcess(llm);
    await cpu?.stop();
  });

  it('pays again at most the requests in flight, and leaves exactly one output per item', async () => {
    // Images unique to this test run: no answer of an earlier run can come from the request cache.
    const tag = uniqueRunId('llm-kill');
    const rows = [];
    for (let i = 0; i < N; i++) {
      const p = `/llm-kill/${i}.jpg`;
      server.set(p, { kind: 'bytes', body: await drawSceneImage(tag, i, 240, 180), contentType: 'image/jpeg' });
      rows.push({ url: server.url(p), text: `ภาพทิวทัศน์หมายเลข ${i}` });
    }
    const list = writeList(tmpDir('llm-kill'), 'list.jsonl', rows);

    let answered = 0;
    let atKill: { inFlight: number; requests: number } | undefined;
    // 150 ms an answer, so a shard of 6 items at 4 in flight takes a few hundred ms: the kill, on the
    // stand-in's own event of the KILL_AFTER-th answer, lands inside the first shards.
    const standin: LlmStandin = await startLlmStandin({
      latencyMs: 150,
      log: (line) => {
        if (!line.startsWith('POST /v1/chat/completions 200') || ++answered !== KILL_AFTER) return;
        llm!.kill('SIGKILL');
        const s = standin.stats();
        atKill = { inFlight: s.inFlight, requests: s.requests };
      },
    });
    standins.push(standin);

    const env = { OPENAI_BASE_URL: standin.baseUrl, OPENAI_API_KEY: 'test-key' };
    llm = spawnWorker(['llm'], env);
    [cpu] = await Promise.all([startWorkers(['mella-cpu']), workerReady(llm)]);

    const runId = uniqueRunId('llm-kill');
    const config = testConfig({
      languages: ['th'],
      stages: ['ingest', 'filter', 'caption'],
      inputs: [{ path: list }],
      ingest: { shardSize: 12, window: 2 },
      // Only the caption stage is under test: the filter keeps every decodable image.
      filter: { image: { operators: ['decodable'] }, text: { operators: ['normalize'] } },
      llm: { endpoints: { default: { concurrency: CONCURRENCY, backoffBaseMs: 50, backoffMaxMs: 1000, maxAttempts: 4 } } },
      caption: { shardSize: 6, window: 2 },
    });
    const summary = await withCliClient(async (c) => {
      await startRun(c, config, { runId, kind: 'manual' });
      await waitFor(async () => atKill !== undefined, 90_000, 'the kill of the llm worker');
      await stopProcess(llm!, 'SIGKILL'); // already killed: waits for its exit
      llm = spawnWorker(['llm'], env);
      await workerReady(llm);
      // The killed attempts time out on their heartbeat (60 s for the llm queue) and are retried here.
      return waitRun(c, runId);
    });

    expect(summary.status).toBe('completed');
    expect(summary.languages.th!.caption).toEqual({ in: N, kept: N, rejected: {} });

    // Exactly one output per planned item (the primary key forbids two; none is missing either).
    const { rows: perItem } = await pool.query<{ item_key: string; n: number }>(
      `select i.item_key, count(o.item_key)::int as n from llm_items i
         left join llm_outputs o using (run_id, stage, lang, item_key)
        where i.run_id = $1 and i.stage = 'caption' group by i.item_key`,
      [runId],
    );
    expect(perItem).toHaveLength(N);
    expect(perItem.every((r) => r.n === 1)).toBe(true);
    // Every paid answer is in the cache once.
    const cached = await pool.query<{ n: number }>('select count(*)::int as n from llm_cache where endpoint = $1', [standin.baseUrl]);
    expect(cached.rows[0]!.n).toBe(N);
    // The killed shards were finished by a later attempt.
    const { rows: shards } = await pool.query<{ attempt: number }>(`select attempt from shards where run_id = $1 and stage = 'caption'`, [runId]);
    expect(shards).toHaveLength(N / 6);
    expect(shards.some((s) => s.attempt > 1)).toBe(true);

    // Paid twice: only requests that were in flight when the worker died. An answer is cached before
    // its concurrency slot is released, so those are at most CONCURRENCY (on the wire, or answered and
    // not yet stored, such as the very answer whose arrival triggered the kill).
    const stats = standin.stats();
    const requests = stats.byRoute.chat ?? 0;
    const repeated = requests - N;
    console.log(`llm-durability: ${requests} requests for ${N} items (${repeated} paid again); at the kill ${atKill!.requests} had arrived, ${atKill!.inFlight} in flight at the stand-in; max in flight ${stats.maxInFlight} (limit ${CONCURRENCY})`);
    expect(atKill!.requests).toBeLessThan(N);
    expect(repeated).toBeGreaterThanOrEqual(0);
    expect(repeated).toBeLessThanOrEqual(CONCURRENCY);
    // The endpoint's concurrency, as the stand-in saw it, before and after the kill.
    expect(stats.maxInFlight).toBeLessThanOrEqual(CONCURRENCY);
    expect(stats.maxInFlight).toBeGreaterThan(1);
  }, 170_000);
});

describe('rate limits, measured at the stand-in', () => {
  /**
   * Sends `total` requests at once through one endpoint (cachedChat: the stage's own call path) and
   * checks the arrivals at the stand-in against a token bucket of `burst` requests refilled at
   * `perSecond`: in any interval [t_i, t_j], j - i + 1 <= burst + perSecond * (t_j - t_i), up to
   * `SLACK` requests for the scheduling jitter between the limiter and the server.
   */
  const SLACK = 2;
  const TEXT = 'rate limit probe'; // 16 characters: 4 estimated tokens
  const MAX_TOKENS = 16; // so 20 estimated tokens a request (call.ts: 4 characters a token, plus max_tokens)

  async function burst(limits: { requestsPerMinute: number; tokensPerMinute: number }, total: number) {
    const standin = await startLlmStandin({ logLimit: total + 10 });
    standins.push(standin);
    const llm = llmConfigSchema.parse({ endpoints: { default: { baseUrl: standin.baseUrl, concurrency: 64, ...limits } } });
    const endpoint = resolveEndpoint(llm, 'default');
    const tag = uniqueRunId('rate');
    const outcomes = await Promise.all(
      Array.from({ length: total }, (_, i) =>
        cachedChat({ endpoint, model: 'rate-probe', promptVersion: 'probe-v1', messages: [{ role: 'user', content: TEXT }], temperature: 0, maxTokens: MAX_TOKENS, inputHash: `${tag}:${i}` }),
      ),
    );
    expect(outcomes.every((o) => o.ok && !o.cached)).toBe(true);
    const stats = standin.stats();
    expect(stats.byRoute.chat).toBe(total);
    return stats.log.filter((r) => r.route === 'chat').map((r) => r.startedAt).sort((a, b) => a - b);
  }

  function expectBucket(arrivals: number[], burstSize: number, perSecond: number) {
    let worst = -Infinity;
    for (let i = 0; i < arrivals.length; i++) {
      for (let j = i; j < arrivals.length; j++) {
        worst = Math.max(worst, j - i + 1 - (burstSize + (perSecond * (arrivals[j]! - arrivals[i]!)) / 1000));
      }
    }
    expect(worst).toBeLessThanOrEqual(SLACK);
    // The whole burst: what exceeds the bucket took at least its refill time.
    const elapsed = (arrivals.at(-1)! - arrivals[0]!) / 1000;
    expect(elapsed).toBeGreaterThanOrEqual((arrivals.length - burstSize - SLACK) / perSecond);
  }

  it('requestsPerMinute: the bucket (full at start) and then its refill rate', async () => {
    // 240 a minute: 240 at once, then 4 a second, so the 16 past the bucket take at least ~4 s.
    const arrivals = await burst({ requestsPerMinute: 240, tokensPerMinute: 1_000_000 }, 256);
    expectBucket(arrivals, 240, 4);
  }, 60_000);

  it('tokensPerMinute: estimated tokens, taken before the request', async () => {
    // 4,800 tokens a minute at 20 a request: 240 requests at once, then 4 a second.
    const arrivals = await burst({ requestsPerMinute: 100_000, tokensPerMinute: 4_800 }, 256);
    expectBucket(arrivals, 240, 4);
  }, 60_000);
});

describe('an answer PostgreSQL cannot store as it came', () => {
  it('stores a completion holding NUL characters (U+FFFD in their place), pays for it once, and answers it from the cache', async () => {
    // A real HTTP server speaking the chat completions protocol, whose model emits NUL, as the demo's
    // tiny random fine-tune did (the stand-in never does).
    let requests = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 0, model: 'nul-model', choices: [{ index: 0, finish_reason: 'length', message: { role: 'assistant', content: 'ก\u0000ข\u0000' } }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const endpoint = resolveEndpoint(llmConfigSchema.parse({ endpoints: { default: { baseUrl, maxAttempts: 3 } } }), 'default');
      const ask = () => cachedChat({ endpoint, model: 'nul-model', promptVersion: 'nul-v1', messages: [{ role: 'user', content: 'x' }], temperature: 0, maxTokens: 4, inputHash: uniqueRunId('nul') });
      const inputHash = uniqueRunId('nul');
      const first = await cachedChat({ endpoint, model: 'nul-model', promptVersion: 'nul-v1', messages: [{ role: 'user', content: 'x' }], temperature: 0, maxTokens: 4, inputHash });
      expect(first).toMatchObject({ ok: true, content: 'ก\uFFFDข\uFFFD', cached: false, attempts: 1 });
      const again = await cachedChat({ endpoint, model: 'nul-model', promptVersion: 'nul-v1', messages: [{ role: 'user', content: 'x' }], temperature: 0, maxTokens: 4, inputHash });
      expect(again).toMatchObject({ ok: true, content: 'ก\uFFFDข\uFFFD', cached: true });
      // answers stored in the same group commit beside it are not lost with it
      const several = await Promise.all(Array.from({ length: 6 }, ask));
      expect(several.every((o) => o.ok && o.content === 'ก\uFFFDข\uFFFD' && o.attempts === 1)).toBe(true);
      expect(requests).toBe(7);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
