import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { drawSceneImage } from '../infra/sample-site/images';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { runStatus, startRun, waitRun } from '../cli/runs';
import { languageProgressQuery } from '../workflows/language-run';
import { runProgressQuery } from '../workflows/mella-run';
import { fixtureFiles, HAVE_REAL_FIXTURES } from './support/fixtures';
import { dbClient, testConfig, tmpDir, uniqueRunId, withCliClient, writeList } from './support/pipeline';
import { pngBomb } from './support/png-bomb';

let server: SampleServer;
let workers: RunningWorkers;
const pool = dbClient();

beforeAll(async () => {
  server = await startSampleServer();
  workers = await startWorkers(['mella-cpu']);
});
afterAll(async () => {
  await workers?.stop();
  await server?.close();
  await pool.end();
});

async function outcomes(runId: string) {
  const { rows } = await pool.query<{ seq: number; url: string; line_no: number; status: string; reason: string | null; sha256: string | null }>(
    `select r.seq, r.url, r.line_no, x.status, x.reason, x.sha256
       from ingest_records r left join ingest_results x on x.run_id = r.run_id and x.seq = r.seq
      where r.run_id = $1 order by r.seq`,
    [runId],
  );
  return rows;
}

describe('mellaRun through Temporal and PostgreSQL', () => {
  it('ingests good images in every language and summarises per stage and language', async () => {
    const dir = tmpDir('happy');
    const rows = [];
    for (const lang of ['th', 'vi', 'sr']) {
      for (let i = 0; i < 7; i++) {
        const p = `/happy/${lang}/${i}.jpg`;
        server.set(p, { kind: 'bytes', body: await drawSceneImage(`happy-${lang}`, i, 320, 240), contentType: 'image/jpeg' });
        rows.push({ url: server.url(p), text: `alt ${lang} ${i}`, lang, page_url: server.url(`/${lang}.html`) });
      }
    }
    const list = writeList(dir, 'list.jsonl', rows);
    // shardSize 3 → 3 shards per language, window 2: the bounded window is exercised.
    const config = testConfig({ languages: ['th', 'vi', 'sr'], inputs: [{ path: list }], ingest: { shardSize: 3, window: 2 } });
    const runId = uniqueRunId('happy');
    await withCliClient(async (c) => {
      const { handle } = await startRun(c, config, { runId, kind: 'manual' });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('completed');
      expect(summary.stages.ingest).toEqual({ in: 21, kept: 21, rejected: {} });
      for (const lang of ['th', 'vi', 'sr']) expect(summary.languages[lang]!.ingest).toEqual({ in: 7, kept: 7, rejected: {} });
      expect(summary.uniqueImages).toBe(21);

      const progress = await handle.query(runProgressQuery);
      expect(progress.phase).toBe('done');
      expect(progress.languages.th!.status).toBe('completed');
      const th = await c.client.workflow.getHandle(progress.languages.th!.workflowId).query(languageProgressQuery);
      expect(th[0]).toMatchObject({ stage: 'ingest', status: 'done', totalItems: 7, totalShards: 3, doneShards: 3, in: 7, kept: 7 });
      expect(progress.languages.th!.workflowId).toBe(`mella-run-${runId}-lang-th`);

      const status = await runStatus(c, runId);
      expect(status.status).toBe('completed');
      expect(status.summary?.stages.ingest?.kept).toBe(21);
    });
    const { rows: shards } = await pool.query('select lang, count(*)::int as n from shards where run_id = $1 group by lang order by lang', [runId]);
    expect(shards).toEqual([{ lang: 'sr', n: 3 }, { lang: 'th', n: 3 }, { lang: 'vi', n: 3 }]);
    const { rows: img } = await pool.query(
      `select i.width, i.height, i.format, i.blob_key from ingest_results x join images i using (sha256) where x.run_id = $1 limit 1`,
      [runId],
    );
    expect(img[0]).toMatchObject({ width: 320, height: 240, format: 'jpeg' });
    const blobFile = path.join(process.env.MELLA_BLOB_DIR!, 'sha256', img[0].blob_key.slice(7, 9), img[0].blob_key.slice(9, 11), img[0].blob_key.slice(7));
    expect(fs.existsSync(blobFile)).toBe(true);
  });

  it('gives every bad input a reason and loses nothing', async () => {
    const dir = tmpDir('bad');
    const good = await drawSceneImage('bad-good', 1, 400, 300);
    const same = await drawSceneImage('bad-same', 2, 400, 300);
    const routes: [string, Parameters<SampleServer['set']>[1]][] = [
      ['/good.jpg', { kind: 'bytes', body: good, contentType: 'image/jpeg' }],
      ['/always-500.jpg', { kind: 'status', status: 500 }],
      ['/flaky.jpg', { kind: 'flaky', times: 1, status: 503, retryAfter: '0', then: { kind: 'bytes', body: await drawSceneImage('flaky', 3, 300, 200), contentType: 'image/jpeg' } }],
      ['/hang.jpg', { kind: 'hang' }],
      ['/trickle.jpg', { kind: 'trickle', body: good.subarray(0, 400), contentType: 'image/jpeg', intervalMs: 100 }],
      ['/loop-a', { kind: 'redirect', location: '/loop-b' }],
      ['/loop-b', { kind: 'redirect', location: '/loop-a' }],
      ['/to-private', { kind: 'redirect', location: 'http://10.0.0.1/x.jpg' }],
      ['/to-metadata', { kind: 'redirect', location: 'http://169.254.169.254/latest/meta-data' }],
      ['/html.jpg', { kind: 'bytes', body: Buffer.from('<!DOCTYPE html><html><body>hello</body></html>'), contentType: 'image/jpeg' }],
      ['/huge.jpg', { kind: 'bytes', body: Buffer.concat([good, Buffer.alloc(3 * 1024 * 1024)]), contentType: 'image/jpeg' }],
      ['/bomb.png', { kind: 'bytes', body: pngBomb(30_000, 30_000), contentType: 'image/png' }],
      ['/same-a.jpg', { kind: 'bytes', body: same, contentType: 'image/jpeg' }],
      ['/same-b.jpg', { kind: 'bytes', body: same, contentType: 'image/jpeg' }],
    ];
    for (const [p, r] of routes) server.set(p, r);

    const lines: (Record<string, unknown> | string)[] = [
      { url: server.url('/good.jpg'), text: 'ภาพดี' },
      { url: server.url('/missing.jpg'), text: 'ไม่มี' },
      { url: server.url('/always-500.jpg'), text: '500' },
      { url: server.url('/flaky.jpg'), text: 'flaky' },
      { url: server.url('/hang.jpg'), text: 'hang' },
      { url: server.url('/trickle.jpg'), text: 'trickle' },
      { url: server.url('/loop-a'), text: 'loop' },
      { url: server.url('/to-private'), text: 'private' },
      { url: server.url('/to-metadata'), text: 'metadata' },
      { url: server.url('/html.jpg'), text: 'html' },
      { url: server.url('/huge.jpg'), text: 'huge' },
      { url: server.url('/bomb.png'), text: 'bomb' },
      { url: server.url('/good.jpg#again'), text: 'the same URL again' },
      { url: server.url('/same-a.jpg'), text: 'same bytes A' },
      { url: server.url('/same-b.jpg'), text: 'same bytes B' },
      { url: 'ftp://example.org/x.jpg', text: 'ftp' },
      '{"url": "http://broken-json',
      { url: server.url('/good.jpg'), text: 'other language', lang: 'de' },
    ];
    const list = writeList(dir, 'bad.jsonl', lines);
    const config = testConfig({ inputs: [{ path: list, lang: 'th' }], ingest: { shardSize: 5, fetch: { maxBytes: 2 * 1024 * 1024 } } });
    const runId = uniqueRunId('bad');
    const summary = await withCliClient(async (c) => {
      await startRun(c, config, { runId, kind: 'manual' });
      return waitRun(c, runId);
    });
    expect(summary.status).toBe('completed');

    const rows = await outcomes(runId);
    // Nothing lost: every record has exactly one outcome.
    expect(rows.every((r) => r.status === 'stored' || r.status === 'rejected')).toBe(true);
    const byUrl = (u: string) => rows.filter((r) => r.url === u);
    const reasonOf = (p: string) => byUrl(server.url(p))[0]?.reason;
    expect(byUrl(server.url('/good.jpg'))[0]).toMatchObject({ status: 'stored' });
    expect(reasonOf('/missing.jpg')).toBe('http_404');
    expect(reasonOf('/always-500.jpg')).toBe('http_500');
    expect(byUrl(server.url('/flaky.jpg'))[0]).toMatchObject({ status: 'stored' });
    expect(reasonOf('/hang.jpg')).toBe('timeout');
    expect(reasonOf('/trickle.jpg')).toBe('timeout');
    expect(reasonOf('/loop-a')).toBe('redirect_loop');
    expect(reasonOf('/to-private')).toBe('blocked_address');
    expect(reasonOf('/to-metadata')).toBe('blocked_address');
    expect(reasonOf('/html.jpg')).toBe('not_an_image');
    expect(reasonOf('/huge.jpg')).toBe('too_large');
    expect(reasonOf('/bomb.png')).toBe('too_many_pixels');
    expect(byUrl(server.url('/good.jpg#again'))[0]).toMatchObject({ status: 'rejected', reason: 'duplicate' });
    expect(byUrl('ftp://example.org/x.jpg')[0]?.reason).toBe('unsupported_scheme');
    const [a, b] = [byUrl(server.url('/same-a.jpg'))[0]!, byUrl(server.url('/same-b.jpg'))[0]!];
    expect(a.status).toBe('stored');
    expect(b.status).toBe('stored');
    expect(a.sha256).toBe(b.sha256);
    const images = await pool.query('select count(*)::int as n from images where sha256 = $1', [a.sha256]);
    expect(images.rows[0].n).toBe(1);

    // The malformed line is reported with its line number; the other language is skipped, not lost.
    expect(summary.inputErrors).toEqual([expect.objectContaining({ line: 17, reason: 'malformed_line' })]);
    expect(summary.skippedOtherLanguage).toBe(1);
    const recordCount = rows.length;
    expect(summary.stages.ingest!.in).toBe(recordCount + 1);
    const rejected = Object.values(summary.stages.ingest!.rejected).reduce((x, y) => x + y, 0);
    expect(summary.stages.ingest!.kept + rejected).toBe(summary.stages.ingest!.in);
    expect(summary.stages.ingest!.rejected.malformed_line).toBe(1);
  });

  it.skipIf(!HAVE_REAL_FIXTURES)('rejects the real broken images with a reason and stores the tiny ones with their size', async () => {
    const fixtures = [...fixtureFiles('images/broken'), ...fixtureFiles('images/tiny')];
    // Served as image/jpeg whatever they are: the type is sniffed from the bytes.
    for (const f of fixtures) server.set(`/fx/${path.basename(f)}`, { kind: 'bytes', body: fs.readFileSync(f), contentType: 'image/jpeg' });
    const list = writeList(tmpDir('fixtures'), 'fx.jsonl', fixtures.map((f) => ({ url: server.url(`/fx/${path.basename(f)}`), text: path.basename(f) })));
    const runId = uniqueRunId('fixtures');
    const summary = await withCliClient(async (c) => {
      await startRun(c, testConfig({ inputs: [{ path: list, lang: 'th' }] }), { runId, kind: 'manual' });
      return waitRun(c, runId);
    });
    expect(summary.status).toBe('completed');
    const rows = await outcomes(runId);
    expect(rows).toHaveLength(fixtures.length);
    for (const f of fixtures) {
      const r = rows.find((x) => x.url === server.url(`/fx/${path.basename(f)}`))!;
      if (f.includes('/broken/')) {
        expect(r.status, path.basename(f)).toBe('rejected');
        expect(['decode_error', 'not_an_image', 'unsupported_format']).toContain(r.reason);
      } else if (r.status === 'stored') {
        // Tiny images decode: ingest stores them with their real size; the filter stage judges size.
        const meta = await sharp(fs.readFileSync(f)).metadata();
        const { rows: im } = await pool.query('select width, height from images where sha256 = $1', [r.sha256]);
        expect(im[0]).toEqual({ width: meta.width, height: meta.height });
      } else {
        expect(r.reason, path.basename(f)).toBe('unsupported_format');
      }
    }
    expect(rows.filter((r) => r.status === 'stored').length).toBeGreaterThan(0);
  });

  it('fails a run with a bad config fast and clearly, without retrying forever', async () => {
    const config = testConfig({ inputs: [{ path: '/nonexistent/list.jsonl' }] });
    const runId = uniqueRunId('badcfg');
    const summary = await withCliClient(async (c) => {
      await startRun(c, config, { runId, kind: 'manual' });
      return waitRun(c, runId);
    });
    expect(summary.status).toBe('failed');
    expect(summary.error).toMatch(/does not exist/);
    const { rows } = await pool.query('select status, error from runs where run_id = $1', [runId]);
    expect(rows[0].status).toBe('failed');
  });
});
