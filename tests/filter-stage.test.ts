import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dedupFilter } from '../activities/filter/stage/dedup';
import { filterShard } from '../activities/filter/stage/shard';
import { blobs } from '../activities/shared/blobs';
import { parseConfig } from '../activities/shared/config';
import { runStatus, startRun, waitRun } from '../cli/runs';
import { ALT_TEXTS, SCENES } from '../infra/sample-site/alt-texts';
import { buildDemoSet, type DemoSet } from '../infra/sample-site/demo-set';
import { drawSceneImage } from '../infra/sample-site/images';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { languageProgressQuery } from '../workflows/language-run';
import type { ShardResult } from '../workflows/types';
import { runProgressQuery } from '../workflows/mella-run';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import {
  dbClient, spawnWorker, stopProcess, testConfig, tmpDir, uniqueRunId, waitFor, withCliClient, workerReady, writeList,
} from './support/pipeline';

const LANGS = Object.keys(ALT_TEXTS);
let server: SampleServer;
const pool = dbClient();

beforeAll(async () => {
  server = await startSampleServer();
});
afterAll(async () => {
  await server?.close();
  await pool.end();
});

describe('config', () => {
  it('runs stages in lifecycle order and only with what they read', () => {
    expect(() => parseConfig({ stages: ['filter'] })).toThrow(/"filter" reads what "ingest" produces/);
    expect(() => parseConfig({ stages: ['filter', 'ingest'] })).toThrow(/lifecycle order/);
    expect(() => parseConfig({ stages: ['ingest', 'ingest'] })).toThrow(/listed twice/);
    expect(parseConfig({}).stages).toEqual(['crawl', 'ingest', 'filter', 'caption', 'translate', 'merge']);
    expect(() => parseConfig({ filter: { image: { options: { 'min-side': { minSide: -1 } } } } })).toThrow(/filter\.image\.options\.min-side/);
  });
});

describe('filter stage in the pipeline', () => {
  let workers: RunningWorkers;
  let set: DemoSet;
  let runId: string;

  beforeAll(async () => {
    workers = await startWorkers(['mella-cpu']);
    set = await buildDemoSet(server, tmpDir('filter-demo'), LANGS);
    runId = uniqueRunId('filter');
  });
  afterAll(async () => {
    await workers?.stop();
  });

  it('judges the demo set in all eight languages: kept records, every rejection with its operator, measure and threshold', async () => {
    // shardSize 4: the near-duplicate copy lands in another shard than its original.
    const config = testConfig({ languages: LANGS, stages: ['ingest', 'filter'], inputs: [{ path: set.listFile }], ingest: { shardSize: 4, window: 2 } });
    await withCliClient(async (c) => {
      const { handle } = await startRun(c, config, { runId, kind: 'manual' });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('completed');
      for (const lang of LANGS) {
        expect(summary.languages[lang]!.filter).toEqual({ in: set.goodPerLanguage, kept: set.filterKeptPerLanguage, rejected: set.expectedFilterRejections[lang] });
        const f = summary.filter![lang]!;
        expect(f.images).toEqual({ in: set.goodPerLanguage, kept: set.goodPerLanguage - 3, rejected: { too_small: 1, extreme_aspect_ratio: 1, near_duplicate_image: 1 } });
        // Every operator of the pipeline is listed, and its counts add up.
        expect(Object.keys(f.operators)).toEqual(expect.arrayContaining(['decodable', 'min-side', 'aspect-ratio', 'phash-dedup', 'normalize', 'boilerplate', 'language-id', 'near-duplicate']));
        for (const [name, op] of Object.entries(f.operators)) {
          expect(op.in, name).toBe(op.kept + op.rejected);
          expect(Object.values(op.byReason).reduce((a, b) => a + b, 0), name).toBe(op.rejected);
        }
        expect(f.operators['phash-dedup']!.byReason).toEqual({ near_duplicate_image: 1 });
        expect(f.operators['near-duplicate']).toMatchObject({ in: set.filterKeptPerLanguage + 1, rejected: 1 });
      }
      expect(summary.stages.filter).toMatchObject({ in: LANGS.length * set.goodPerLanguage, kept: LANGS.length * set.filterKeptPerLanguage });

      // The progress query shows the stage with its per-operator counters.
      const progress = await handle.query(runProgressQuery);
      const th = await c.client.workflow.getHandle(progress.languages.th!.workflowId).query(languageProgressQuery);
      expect(th.map((p) => p.stage)).toEqual(['ingest', 'filter']);
      expect(th[1]).toMatchObject({ status: 'done', in: set.goodPerLanguage, kept: set.filterKeptPerLanguage, totalShards: 3, doneShards: 3 });
      expect(th[1]!.rejected).toEqual(set.expectedFilterRejections.th);
      expect(th[1]!.operators?.['language-id']?.byReason).toEqual({ wrong_script: 1 });
      expect((await runStatus(c, runId)).summary?.stages.filter?.kept).toBe(LANGS.length * set.filterKeptPerLanguage);
    });

    // Every rejection is stored with what was measured and the threshold it failed.
    const { rows: rejected } = await pool.query(
      `select f.reason, f.text_operator, f.text_measured, f.text_threshold, i.operator, i.measured, i.threshold, i.kept as image_kept
         from filter_records f join filter_images i on i.run_id = f.run_id and i.lang = f.lang and i.sha256 = f.sha256
        where f.run_id = $1 and not f.kept`,
      [runId],
    );
    expect(rejected).toHaveLength(LANGS.length * 5);
    for (const r of rejected) {
      // The record's reason is its image's when an image operator rejected it, else its alt's.
      const [measured, threshold] = r.image_kept || r.operator === 'phash-dedup' ? [r.text_measured, r.text_threshold] : [r.measured, r.threshold];
      expect(r.reason).toBeTruthy();
      expect(measured, JSON.stringify(r)).not.toBeNull();
      expect(threshold, JSON.stringify(r)).not.toBeNull();
    }
    const { rows: small } = await pool.query(
      `select i.measured, i.threshold from filter_images i join images m on m.sha256 = i.sha256
        where i.run_id = $1 and i.lang = 'cs' and i.reason = 'too_small'`,
      [runId],
    );
    expect(small).toEqual([{ measured: 90, threshold: 200 }]);
  });

  it('keeps the best copy of a near-duplicate group, points the copy\'s records to it and records the groups', async () => {
    const { rows } = await pool.query<{ url: string; sha256: string; image_sha256: string; kept: boolean; reason: string | null; duplicate_of: string | null }>(
      `select r.url, f.sha256, f.image_sha256, f.kept, f.reason, i.duplicate_of
         from filter_records f join ingest_records r on r.run_id = f.run_id and r.seq = f.seq
         join filter_images i on i.run_id = f.run_id and i.lang = f.lang and i.sha256 = f.sha256
        where f.run_id = $1 and f.lang = 'vi' and (r.url like '%/copy-small.jpg' or r.url like '%/${SCENES[0]}.jpg')`,
      [runId],
    );
    const original = rows.find((r) => r.url.endsWith(`/${SCENES[0]}.jpg`))!;
    const copy = rows.find((r) => r.url.endsWith('/copy-small.jpg'))!;
    expect(original).toMatchObject({ kept: true, image_sha256: original.sha256, duplicate_of: null });
    // The 800x600 original beats the 600x450 copy; the copy's record shows the original's picture and,
    // carrying the same alt, is the near-duplicate sample.
    expect(copy).toMatchObject({ kept: false, reason: 'near_duplicate_text', image_sha256: original.sha256, duplicate_of: original.sha256 });
    const { rows: groups } = await pool.query(
      `select operator, keeper, member from filter_duplicate_groups where run_id = $1 and lang = 'vi' order by operator`,
      [runId],
    );
    expect(groups).toHaveLength(2);
    expect(groups[0]).toMatchObject({ operator: 'near-duplicate' });
    expect(groups[1]).toEqual({ operator: 'phash-dedup', keeper: original.sha256, member: copy.sha256 });
  });

  it('stores a normalized training copy of every kept image', async () => {
    const { rows } = await pool.query<{ train_blob_key: string; train_width: number; train_height: number; train_format: string; width: number; height: number }>(
      `select train_blob_key, train_width, train_height, train_format, width, height from filter_images where run_id = $1 and kept`,
      [runId],
    );
    expect(rows).toHaveLength(LANGS.length * (set.goodPerLanguage - 3));
    for (const r of rows.slice(0, 10)) {
      const meta = await sharp(await blobs().get(r.train_blob_key)).metadata();
      expect(meta.format).toBe(r.train_format);
      expect([meta.width, meta.height]).toEqual([r.train_width, r.train_height]);
      expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(1024);
    }
  });

  it('is idempotent: a done shard and a done set pass return what they recorded and write nothing', async () => {
    const before = (await pool.query('select count(*)::int as n from filter_records where run_id = $1', [runId])).rows[0].n;
    const env = new MockActivityEnvironment();
    const again = (await env.run(filterShard, { runId, lang: 'ko', shardIndex: 0 })) as ShardResult;
    expect(again.skipped).toBe(true);
    const first = (await pool.query(`select items_in, kept from shards where run_id = $1 and lang = 'ko' and stage = 'filter' and shard_index = 0`, [runId])).rows[0];
    expect({ in: again.in, kept: again.kept }).toEqual({ in: first.items_in, kept: first.kept });
    const dedup = await dedupFilter({ runId, lang: 'ko' });
    expect(dedup).toMatchObject({ skipped: true, imagesRemoved: 1, recordsRemoved: 1, rejected: { near_duplicate_text: 1 } });
    expect((await pool.query('select count(*)::int as n from filter_records where run_id = $1', [runId])).rows[0].n).toBe(before);
  });
});

describe('filter stage durability', () => {
  it('survives a SIGKILLed worker in the middle of the filter stage with the same verdicts as an uninterrupted run', async () => {
    const rows = [];
    const texts = Object.values(ALT_TEXTS.cs!);
    for (let i = 0; i < 40; i++) {
      const p = `/filter-durable/${i}.jpg`;
      server.set(p, { kind: 'bytes', body: await drawSceneImage('filter-durable', i, 400, 300), contentType: 'image/jpeg' });
      rows.push({ url: server.url(p), text: i % 10 === 9 ? 'logo' : `${texts[i % texts.length]} (${i})` });
    }
    const list = writeList(tmpDir('filter-durable'), 'list.jsonl', rows);
    const config = testConfig({ languages: ['cs'], stages: ['ingest', 'filter'], inputs: [{ path: list, lang: 'cs' }], ingest: { shardSize: 4, window: 1 } });
    const verdicts = async (id: string) =>
      (
        await pool.query(
          `select r.line_no, f.kept, f.reason, f.image_sha256 from filter_records f join ingest_records r on r.run_id = f.run_id and r.seq = f.seq
            where f.run_id = $1 order by r.line_no`,
          [id],
        )
      ).rows;

    let worker = spawnWorker(['cpu']);
    try {
      await workerReady(worker);
      const baseline = uniqueRunId('filter-baseline');
      const killed = uniqueRunId('filter-killed');
      await withCliClient(async (c) => {
        await startRun(c, config, { runId: baseline, kind: 'manual' });
        expect((await waitRun(c, baseline)).status).toBe('completed');
        await startRun(c, config, { runId: killed, kind: 'manual' });
      });
      const filterShardsDone = async () =>
        Number((await pool.query(`select count(*) from shards where run_id = $1 and stage = 'filter'`, [killed])).rows[0].count);
      await waitFor(async () => (await filterShardsDone()) >= 2, 120_000, 'two filter shards of the killed run');
      await stopProcess(worker, 'SIGKILL');
      expect(await filterShardsDone()).toBeLessThan(10);
      worker = spawnWorker(['cpu']);
      await workerReady(worker);
      await withCliClient(async (c) => {
        const summary = await waitRun(c, killed);
        expect(summary.status).toBe('completed');
        expect(summary.stages.filter!.in).toBe(40);
        expect(Object.keys(summary.stages.filter!.rejected).some((r) => r.startsWith('boilerplate_'))).toBe(true);
      });
      expect(await verdicts(killed)).toEqual(await verdicts(baseline));
      expect(await filterShardsDone()).toBe(10);
    } finally {
      await stopProcess(worker, 'SIGTERM');
    }
  });
});
