import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { drawSceneImage } from '../infra/sample-site/images';
import { freePort } from '../infra/stack/ports';
import { startTemporalDevServer } from '../infra/stack/temporal-server';
import { cancelRun, resumeRun, runStatus, startRun, waitRun } from '../cli/runs';
import {
  dbClient, spawnWorker, stopProcess, testConfig, tmpDir, uniqueRunId, waitFor, withCliClient, workerReady, writeList,
} from './support/pipeline';

const N = 48;
let server: SampleServer;
let list: string;
const pool = dbClient();
const urls: string[] = [];

beforeAll(async () => {
  server = await startSampleServer();
  const rows = [];
  for (let i = 0; i < N; i++) {
    const p = `/slow/${i}.jpg`;
    // Each image takes 250 ms to arrive, so a run lasts long enough to be interrupted.
    server.set(p, { kind: 'bytes', body: await drawSceneImage('durable', i, 200, 150), contentType: 'image/jpeg', delayMs: 250 });
    urls.push(server.url(p));
    rows.push({ url: server.url(p), text: `ภาพที่ ${i}` });
    if (i === 20) rows.push({ url: server.url('/slow/404.jpg'), text: 'gone' });
  }
  list = writeList(tmpDir('durable'), 'list.jsonl', rows);
});
afterAll(async () => {
  await server?.close();
  await pool.end();
});

const config = () => testConfig({ inputs: [{ path: list }], ingest: { shardSize: 8, window: 2, concurrency: 2 } });

async function outcomeRows(runId: string) {
  const { rows } = await pool.query(
    `select r.seq, r.url, x.status, x.reason, x.sha256 from ingest_records r
       left join ingest_results x on x.run_id = r.run_id and x.seq = r.seq where r.run_id = $1 order by r.seq`,
    [runId],
  );
  return rows;
}
const resultCount = async (runId: string) =>
  Number((await pool.query('select count(*) from ingest_results where run_id = $1', [runId])).rows[0].count);

describe('durable execution', () => {
  it('survives a SIGKILLed worker: the same rows as an uninterrupted run, no duplicates, nothing missing', async () => {
    let worker = spawnWorker(['cpu']);
    try {
      await workerReady(worker);
      const baseline = uniqueRunId('baseline');
      await withCliClient(async (c) => {
        await startRun(c, config(), { runId: baseline, kind: 'manual' });
        expect((await waitRun(c, baseline)).status).toBe('completed');
      });

      const killed = uniqueRunId('killed');
      const summary = await withCliClient(async (c) => {
        await startRun(c, config(), { runId: killed, kind: 'manual' });
        await waitFor(async () => (await resultCount(killed)) >= 10, 60_000, 'the first results');
        expect(await resultCount(killed)).toBeLessThan(N);
        await stopProcess(worker, 'SIGKILL');
        worker = spawnWorker(['cpu']);
        await workerReady(worker);
        return waitRun(c, killed);
      });
      expect(summary.status).toBe('completed');

      const [a, b] = [await outcomeRows(baseline), await outcomeRows(killed)];
      expect(b).toHaveLength(N + 1);
      expect(b.map(({ seq, url, status, reason, sha256 }) => ({ seq, url, status, reason, sha256 }))).toEqual(
        a.map(({ seq, url, status, reason, sha256 }) => ({ seq, url, status, reason, sha256 })),
      );
      expect(b.filter((r) => r.status === 'stored')).toHaveLength(N);
      const { rows: shards } = await pool.query('select shard_index, attempt from shards where run_id = $1 order by shard_index', [killed]);
      expect(shards.map((s) => s.shard_index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      // At least one shard was finished by a retried attempt on the new worker.
      expect(shards.some((s) => s.attempt > 1)).toBe(true);
      expect(summary.stages.ingest).toEqual({ in: N + 1, kept: N, rejected: { http_404: 1 } });
    } finally {
      await stopProcess(worker);
    }
  });

  it('completes a run across a restart of the Temporal server', async () => {
    const port = await freePort();
    const dir = tmpDir('temporal-restart');
    const start = () =>
      startTemporalDevServer({ dbFile: path.join(dir, 'temporal.sqlite'), port, uiPort: 0, headless: true, logFile: path.join(dir, 'temporal.log') });
    let temporal = await start();
    const saved = process.env.TEMPORAL_ADDRESS;
    process.env.TEMPORAL_ADDRESS = temporal.address;
    const worker = spawnWorker(['cpu']);
    try {
      await workerReady(worker);
      const runId = uniqueRunId('restart');
      await withCliClient((c) => startRun(c, config(), { runId, kind: 'manual' }));
      await waitFor(async () => (await resultCount(runId)) >= 8, 60_000, 'the first results');
      // The restart must fall inside the run, not after it.
      expect(await resultCount(runId)).toBeLessThan(N + 1);
      await temporal.stop();
      await new Promise((r) => setTimeout(r, 1500));
      temporal = await start();
      const summary = await withCliClient((c) => waitRun(c, runId));
      expect(summary.status).toBe('completed');
      expect(summary.stages.ingest).toEqual({ in: N + 1, kept: N, rejected: { http_404: 1 } });
      expect(worker.exitCode).toBeNull();
    } finally {
      await stopProcess(worker);
      await temporal.stop();
      process.env.TEMPORAL_ADDRESS = saved;
    }
  });

  it('cancels cleanly and resumes, skipping the shards already done', async () => {
    const worker = spawnWorker(['cpu']);
    try {
      await workerReady(worker);
      const runId = uniqueRunId('cancel');
      const before = new Map(urls.map((u) => [u, server.hits.get(new URL(u).pathname) ?? 0]));
      const cancelled = await withCliClient(async (c) => {
        await startRun(c, config(), { runId, kind: 'manual' });
        await waitFor(
          async () => Number((await pool.query('select count(*) from shards where run_id = $1', [runId])).rows[0].count) >= 2,
          60_000,
          'two done shards',
        );
        // While it runs, `mella status` reads the parent's and the child's progress queries.
        const live = await runStatus(c, runId);
        expect(live.status).toBe('running');
        expect(live.progress?.phase).toBe('languages');
        expect(live.languages.th?.[0]).toMatchObject({ stage: 'ingest', status: 'running', totalItems: N + 1, totalShards: 7 });
        expect(live.languages.th![0]!.doneShards).toBeGreaterThanOrEqual(2);
        await cancelRun(c, runId);
        return waitRun(c, runId);
      });
      expect(cancelled.status).toBe('cancelled');
      expect((await pool.query('select status from runs where run_id = $1', [runId])).rows[0].status).toBe('cancelled');
      const doneShards = (await pool.query('select shard_index from shards where run_id = $1', [runId])).rows.map((r) => r.shard_index);
      expect(doneShards.length).toBeLessThan(7);

      const resumed = await withCliClient(async (c) => {
        await resumeRun(c, runId);
        return waitRun(c, runId);
      });
      expect(resumed.status).toBe('completed');
      expect(resumed.stages.ingest).toEqual({ in: N + 1, kept: N, rejected: { http_404: 1 } });
      // Records of shards done before the cancel were fetched exactly once in all.
      const { rows } = await pool.query(
        'select url from ingest_records where run_id = $1 and shard_index = any($2::int[]) and url like $3',
        [runId, doneShards, `${server.baseUrl}/slow/%.jpg`],
      );
      for (const { url } of rows) {
        if (url.endsWith('404.jpg')) continue;
        expect(server.hits.get(new URL(url).pathname)! - before.get(url)!, url).toBe(1);
      }
    } finally {
      await stopProcess(worker);
    }
  });
});
