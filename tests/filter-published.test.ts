/**
 * Near-duplicate removal against earlier dataset versions (activities/filter/stage/published.ts),
 * through the workflow on the real stack: a first run publishes a version; later runs of the same
 * dataset keep the published picture itself, drop new copies of it (resized, re-encoded) with
 * `near_duplicate_of_published`, and keep new pictures; `dedupAgainstVersions: none` turns it off,
 * and another dataset's versions do not count under the default.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchPublished } from '../activities/filter/stage/published';
import { ALT_TEXTS } from '../infra/sample-site/alt-texts';
import { drawSceneImage } from '../infra/sample-site/images';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import type { RunSummary } from '../workflows/types';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { dbClient, runToCompletion, testConfig, tmpDir, writeList } from './support/pipeline';

const pool = dbClient();
const dir = tmpDir('filter-published');
const DATASET = `published-${process.pid}`;
const cs = ALT_TEXTS.cs!;
let server: SampleServer;
let workers: RunningWorkers;

beforeAll(async () => {
  server = await startSampleServer();
  const church = await drawSceneImage('old-church', 3);
  const jpeg = (body: Buffer) => ({ kind: 'bytes' as const, body, contentType: 'image/jpeg' });
  server.set('/img/church.jpg', jpeg(church));
  server.set('/img/church-again.jpg', jpeg(church)); // the same bytes at another URL
  server.set('/img/church-small.jpg', jpeg(await sharp(church).resize(560, 420).jpeg({ quality: 75 }).toBuffer()));
  server.set('/img/church.webp', { kind: 'bytes', body: await sharp(church).resize(640, 480).webp({ quality: 70 }).toBuffer(), contentType: 'image/webp' });
  server.set('/img/soup.jpg', jpeg(await drawSceneImage('soup', 5)));
  server.set('/img/river.jpg', jpeg(await drawSceneImage('river-sunset', 7)));
  server.set('/img/village.jpg', jpeg(await drawSceneImage('mountain-village', 9)));
  workers = await startWorkers(['mella-cpu']);
});
afterAll(async () => {
  await workers?.stop();
  await server?.close();
  await pool.end();
});

async function run(label: string, rows: { path: string; alt: string }[], extra: Record<string, unknown> = {}, dataset = DATASET): Promise<RunSummary> {
  const list = writeList(dir, `${label}.jsonl`, rows.map((r) => ({ url: server.url(r.path), text: r.alt, page_url: `https://zpravy.example.cz/${label}` })));
  const config = testConfig({ languages: ['cs'], stages: ['ingest', 'filter', 'merge'], inputs: [{ path: list, lang: 'cs' }], merge: { name: dataset }, ...extra });
  return runToCompletion(config, label);
}

async function images(runId: string) {
  const { rows } = await pool.query<{ url: string; kept: boolean; reason: string | null; image_sha256: string; sha256: string; duplicate_of: string | null; measured: unknown; threshold: unknown; detail: string | null; operator: string | null }>(
    `select x.url, f.kept, f.reason, f.image_sha256, f.sha256, fi.duplicate_of, fi.measured, fi.threshold, fi.detail, fi.operator
       from filter_records f join ingest_records x on x.run_id = f.run_id and x.seq = f.seq
       join filter_images fi on fi.run_id = f.run_id and fi.lang = f.lang and fi.sha256 = f.sha256
      where f.run_id = $1 order by x.url`,
    [runId],
  );
  return new Map(rows.map((r) => [r.url.slice(r.url.lastIndexOf('/') + 1), r]));
}

describe('near-duplicates of earlier dataset versions', () => {
  let first: RunSummary;
  let church = '';

  it('a first run publishes its version', async () => {
    first = await run('first', [
      { path: '/img/church.jpg', alt: cs['old-church'] },
      { path: '/img/soup.jpg', alt: cs.soup },
    ]);
    expect(first.languages.cs!.filter).toEqual({ in: 2, kept: 2, rejected: {} });
    church = (await images(first.runId)).get('church.jpg')!.sha256;
    const v = await pool.query('select name from dataset_versions where run_id = $1', [first.runId]);
    expect(v.rows).toEqual([{ name: DATASET }]);
  });

  it('a later run keeps the published picture, points its copy to it, and keeps what is new', async () => {
    const second = await run('second', [
      { path: '/img/church-again.jpg', alt: 'Kostel svatého Jakuba s věžemi nad střechami města' },
      { path: '/img/church-small.jpg', alt: cs['old-church'] },
      { path: '/img/river.jpg', alt: cs['river-sunset'] },
    ]);
    const got = await images(second.runId);
    expect(got.get('church-again.jpg')).toMatchObject({ kept: true, sha256: church, image_sha256: church });
    // The copy is removed as an image; its record now shows the published picture (this run has it),
    // and with the same alt as the first run it is not removed here (near-duplicate alts are compared
    // within a run).
    expect(got.get('church-small.jpg')).toMatchObject({ operator: 'phash-dedup', duplicate_of: church, image_sha256: church });
    expect(got.get('church-small.jpg')!.detail).toMatch(/^near image [0-9a-f]{16} of version v-first-/);
    expect(typeof got.get('church-small.jpg')!.measured).toBe('number');
    expect(got.get('church-small.jpg')!.threshold).toBe(10);
    expect(got.get('river.jpg')).toMatchObject({ kept: true, duplicate_of: null });
    expect(second.filter!.cs!.images.rejected).toEqual({ near_duplicate_of_published: 1 });
    expect(second.filter!.cs!.operators['phash-dedup']!.byReason).toEqual({ near_duplicate_of_published: 1 });
  });

  it('a copy of a published picture that the run does not have is removed with its record; "none" keeps it', async () => {
    const rows = [
      { path: '/img/church.webp', alt: 'Gotický kostel v centru města za slunečného dne' },
      { path: '/img/village.jpg', alt: cs['mountain-village'] },
    ];
    const third = await run('third', rows);
    const got = await images(third.runId);
    expect(got.get('church.webp')).toMatchObject({ kept: false, reason: 'near_duplicate_of_published', duplicate_of: church });
    expect(got.get('village.jpg')).toMatchObject({ kept: true });
    expect(third.languages.cs!.filter).toEqual({ in: 2, kept: 1, rejected: { near_duplicate_of_published: 1 } });
    const groups = await pool.query(`select operator, keeper, member from filter_duplicate_groups where run_id = $1`, [third.runId]);
    expect(groups.rows).toEqual([{ operator: 'phash-dedup', keeper: church, member: got.get('church.webp')!.sha256 }]);

    // "all" compares with every dataset's versions.
    const all = await run('all', rows, { filter: { dedupAgainstVersions: 'all' } }, `all-${process.pid}`);
    expect(all.languages.cs!.filter).toEqual({ in: 2, kept: 1, rejected: { near_duplicate_of_published: 1 } });
    // Another dataset's versions do not count under the default ("dataset").
    const other = await run('other', rows, {}, `other-${process.pid}`);
    expect(other.languages.cs!.filter).toEqual({ in: 2, kept: 2, rejected: {} });
    const off = await run('off', rows, { filter: { dedupAgainstVersions: 'none' } });
    expect(off.languages.cs!.filter).toEqual({ in: 2, kept: 2, rejected: {} });
    // Once a version published the copy itself, it is that image: kept even under "all".
    const again = await run('all-again', rows, { filter: { dedupAgainstVersions: 'all' } }, `all-${process.pid}`);
    expect(again.languages.cs!.filter).toEqual({ in: 2, kept: 2, rejected: {} });
  });

  it('an invalid setting is refused with the field named', async () => {
    await expect(run('bad', [{ path: '/img/soup.jpg', alt: cs.soup }], { filter: { dedupAgainstVersions: 'previous' } })).rejects.toThrow(/filter\.dedupAgainstVersions/);
  });
});

describe('matchPublished', () => {
  const pub = [
    { sha256: 'a'.repeat(64), phash: '0000000000000000', versionId: 'v1' },
    { sha256: 'b'.repeat(64), phash: '00000000000000ff', versionId: 'v2' },
  ];
  it('takes the closest published image within the distance and never matches a published image to itself', () => {
    expect(matchPublished([{ sha256: 'c', phash: '000000000000000f' }], pub, 4)).toEqual([{ sha256: 'c', publishedSha256: 'a'.repeat(64), versionId: 'v1', distance: 4 }]);
    expect(matchPublished([{ sha256: 'd', phash: '00000000000000fe' }], pub, 10)).toEqual([{ sha256: 'd', publishedSha256: 'b'.repeat(64), versionId: 'v2', distance: 1 }]);
    expect(matchPublished([{ sha256: 'e', phash: 'ffffffffffffffff' }], pub, 10)).toEqual([]);
    expect(matchPublished([{ sha256: 'a'.repeat(64), phash: '0000000000000000' }], pub, 10)).toEqual([]);
  });
});
