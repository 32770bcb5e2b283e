/**
 * Activity (mella-cpu): the item pass of the filter stage over one shard of a language's stored
 * records. For each record it judges the image (once per run and language: an image carried by many
 * records is decoded once) and the alt text, and stores both verdicts with the operator, measured value
 * and threshold of any rejection. A kept image gets its normalized training copy in the blob store.
 *
 * Checkpoint contract, as in ingest: a shard with a done-marker returns its recorded counts; otherwise
 * only records without a verdict are judged (a retried attempt resumes mid-shard); verdicts are written
 * in batches while a heartbeat carries the cursor; the done-marker and the counters are written last,
 * computed from the stored verdicts.
 */
import { CancelledFailure, Context } from '@temporalio/activity';
import pLimit from 'p-limit';
import { blobs } from '../../shared/blobs';
import { db, inTransaction } from '../../shared/db';
import type { ShardResult } from '../../../workflows/types';
import type { SiteAltIndex } from '../operator';
import { filterImage, filterText, type FilterRejection, type ResolvedFilterPipeline, type TextVerdict } from '../pipeline';
import { encodeTrainingCopy, normalizeImage, type NormalizeResult } from '../image/normalize';
import { siteAltKey } from '../text/repeated-site-alt';
import { filterCounters } from './counters';
import { filterPipelineFor } from './pipeline-cache';
import { pageFacts } from './site';

interface RecordRow {
  seq: number;
  text: string | null;
  page_url: string | null;
  extra: Record<string, unknown> | null;
  sha256: string;
  blob_key: string;
}

/** One row of filter_images. */
export interface ImageJudgement {
  sha256: string;
  kept: boolean;
  passed: string[];
  rejection: FilterRejection | null;
  phash: string | null;
  width: number | null;
  height: number | null;
  frames: number | null;
  bytes: number | null;
  fidelity: string | null;
  train: null | { sha256: string; blobKey: string; format: string; width: number; height: number };
}

/** One row of filter_records. */
interface RecordJudgement {
  seq: number;
  sha256: string;
  text: TextVerdict;
  kept: boolean;
  reason: string | null;
}

const FLUSH_EVERY = 50;
const HEARTBEAT_MS = 1000;
/** Images decoded at once per shard (sharp runs on libuv's thread pool). */
const IMAGE_CONCURRENCY = 4;

/**
 * Judges one image's bytes and makes its training copy when it is kept. Never throws for bad bytes.
 * `bytes` are what the ingest stage stored (only after `validateImage` accepted them), so `decodable`
 * skips the validator's full decode: a still image is decoded once, and the training copy is encoded
 * from that decode's pixels.
 */
export async function judgeImage(sha256: string, bytes: Buffer, pipeline: ResolvedFilterPipeline): Promise<ImageJudgement> {
  const verdict = await filterImage(bytes, pipeline, {}, { validatedBy: 'ingest', keepRaster: true });
  const im = verdict.image;
  const base: ImageJudgement = {
    sha256,
    kept: verdict.kept,
    passed: [...verdict.passed],
    rejection: verdict.rejection ?? null,
    phash: im?.phash ?? null,
    width: im?.width ?? null,
    height: im?.height ?? null,
    frames: im?.frames ?? null,
    bytes: im?.bytes ?? bytes.length,
    fidelity: im?.fidelity ?? null,
    train: null,
  };
  if (!verdict.kept) return base;
  // The pixels decodable decoded (absent only when no decoding operator ran): encoded, then dropped.
  // normalize.limitInputPixels still applies to the frame those pixels were decoded from.
  const copy: NormalizeResult =
    im?.raster === undefined
      ? await normalizeImage(bytes, pipeline.normalize)
      : im.storedWidth * im.storedHeight > pipeline.normalize.limitInputPixels
        ? { ok: false, reason: 'normalize_error', detail: `${im.storedWidth}x${im.storedHeight} exceeds the pixel limit of ${pipeline.normalize.limitInputPixels}` }
        : await encodeTrainingCopy(im.raster, pipeline.normalize);
  if (!copy.ok) {
    return {
      ...base,
      kept: false,
      rejection: { kind: 'image', operator: 'normalize-image', reason: copy.reason, measured: pipeline.normalize.format, threshold: 'encodable', detail: copy.detail },
    };
  }
  const stored = await blobs().put(copy.image.bytes);
  return { ...base, train: { sha256: copy.image.sha256, blobKey: stored.key, format: copy.image.format, width: copy.image.width, height: copy.image.height } };
}

export async function filterShard(args: { runId: string; lang: string; shardIndex: number }): Promise<ShardResult> {
  const { runId, lang, shardIndex } = args;
  const started = Date.now();
  const done = await shardDone(runId, lang, shardIndex);
  if (done) return done;

  const ctx = Context.current();
  const pipeline = await filterPipelineFor(runId, lang);
  const { rows } = await db().query<RecordRow>(
    `select r.seq, r.text, r.page_url, r.extra, x.sha256, i.blob_key
       from ingest_records r
       join ingest_results x on x.run_id = r.run_id and x.seq = r.seq and x.status = 'stored'
       join images i on i.sha256 = x.sha256
       left join filter_records f on f.run_id = r.run_id and f.seq = r.seq
      where r.run_id = $1 and r.lang = $2 and r.shard_index = $3 and f.seq is null
      order by r.seq`,
    [runId, lang, shardIndex],
  );
  const facts = new Map(rows.map((r) => [r.seq, pageFacts(r.page_url, r.extra)]));
  const siteAltIndex = await loadSiteAltIndex(runId, lang, [...new Set([...facts.values()].map((f) => f.site).filter((s) => s !== undefined))]);

  // Image verdicts: judged earlier (another shard, an earlier attempt), or judged here once.
  const known = await db().query<{ sha256: string; kept: boolean; reason: string | null }>(
    'select sha256, kept, reason from filter_images where run_id = $1 and lang = $2 and sha256 = any($3)',
    [runId, lang, [...new Set(rows.map((r) => r.sha256))]],
  );
  const images = new Map<string, Promise<{ kept: boolean; reason: string | null; judgement?: ImageJudgement }>>(
    known.rows.map((r) => [r.sha256, Promise.resolve({ kept: r.kept, reason: r.reason })]),
  );
  const judge = (row: RecordRow) => {
    let p = images.get(row.sha256);
    if (p === undefined) {
      p = blobs()
        .get(row.blob_key)
        .then((bytes) => judgeImage(row.sha256, bytes, pipeline))
        .then((judgement) => ({ kept: judgement.kept, reason: judgement.rejection?.reason ?? null, judgement }));
      images.set(row.sha256, p);
    }
    return p;
  };

  let pendingImages: ImageJudgement[] = [];
  let pendingRecords: RecordJudgement[] = [];
  let judged = (ctx.info.heartbeatDetails as { judged?: number } | undefined)?.judged ?? 0;
  let flushing = Promise.resolve();
  const flush = () => {
    const imageBatch = pendingImages;
    const recordBatch = pendingRecords;
    pendingImages = [];
    pendingRecords = [];
    flushing = flushing.then(async () => {
      if (imageBatch.length || recordBatch.length) await writeVerdicts(runId, lang, shardIndex, imageBatch, recordBatch);
      judged += recordBatch.length;
      ctx.heartbeat({ judged });
    });
    return flushing;
  };
  const timer = setInterval(() => void flush().catch(() => undefined), HEARTBEAT_MS);
  const limit = pLimit(IMAGE_CONCURRENCY);
  try {
    await Promise.all(
      rows.map((row) =>
        limit(async () => {
          if (ctx.cancellationSignal.aborted) return;
          const image = await judge(row);
          if (image.judgement !== undefined) {
            pendingImages.push(image.judgement);
            image.judgement = undefined; // written once, by the first record that needed it
          }
          const f = facts.get(row.seq)!;
          const text = await filterText({ text: row.text ?? '', pageTitle: f.pageTitle, siteName: f.siteName, site: f.site }, pipeline, { siteAltIndex });
          const kept = image.kept && text.kept;
          const reason = !image.kept ? image.reason : text.kept ? null : text.rejection!.reason;
          pendingRecords.push({ seq: row.seq, sha256: row.sha256, text, kept, reason });
          if (pendingRecords.length >= FLUSH_EVERY) void flush().catch(() => undefined);
        }),
      ),
    );
  } finally {
    clearInterval(timer);
    await flush();
  }
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('filter shard cancelled; its judged records are kept');
  return markShardDone(runId, lang, shardIndex, ctx.info.attempt, Date.now() - started);
}

/** The (site, alt) counts of the shard's sites; a pair that is absent was seen on one image. */
async function loadSiteAltIndex(runId: string, lang: string, sites: string[]): Promise<SiteAltIndex> {
  const counts = new Map<string, number>();
  if (sites.length) {
    const { rows } = await db().query<{ site: string; alt_key: string; images: number }>(
      'select site, alt_key, images from filter_site_alts where run_id = $1 and lang = $2 and site = any($3)',
      [runId, lang, sites],
    );
    for (const r of rows) counts.set(`${r.site}\u0000${r.alt_key}`, r.images);
  }
  return { count: (site, normalizedAlt) => counts.get(`${site}\u0000${siteAltKey(normalizedAlt)}`) ?? 1 };
}

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

async function writeVerdicts(runId: string, lang: string, shardIndex: number, images: ImageJudgement[], records: RecordJudgement[]) {
  await inTransaction(async (client) => {
    for (const im of images) {
      const r = im.rejection;
      await client.query(
        `insert into filter_images (run_id, lang, sha256, shard_index, kept, operator, reason, measured, threshold, detail, passed,
           phash, width, height, frames, bytes, fidelity, train_sha256, train_blob_key, train_format, train_width, train_height)
         values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22) on conflict do nothing`,
        [
          runId, lang, im.sha256, shardIndex, im.kept, r?.operator ?? null, r?.reason ?? null, json(r?.measured), json(r?.threshold),
          r?.detail?.slice(0, 500) ?? null, im.passed, im.phash, im.width, im.height, im.frames, im.bytes, im.fidelity,
          im.train?.sha256 ?? null, im.train?.blobKey ?? null, im.train?.format ?? null, im.train?.width ?? null, im.train?.height ?? null,
        ],
      );
    }
    for (const rec of records) {
      const t = rec.text;
      const r = t.rejection;
      await client.query(
        `insert into filter_records (run_id, seq, lang, shard_index, sha256, image_sha256, alt, text_kept, text_passed, text_operator,
           text_reason, text_measured, text_threshold, text_detail, text_stats, kept, reason)
         values ($1,$2,$3,$4,$5,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) on conflict do nothing`,
        [
          runId, rec.seq, lang, shardIndex, rec.sha256, t.text, t.kept, t.passed, r?.operator ?? null, r?.reason ?? null,
          json(r?.measured), json(r?.threshold), r?.detail?.slice(0, 500) ?? null, JSON.stringify(t.stats), rec.kept, rec.reason,
        ],
      );
    }
  });
}

async function shardDone(runId: string, lang: string, shardIndex: number): Promise<ShardResult | undefined> {
  const { rows } = await db().query<{ items_in: number; kept: number; rejected: Record<string, number>; counters: ShardResult['operators'] | null }>(
    `select items_in, kept, rejected, counters from shards where run_id = $1 and lang = $2 and stage = 'filter' and shard_index = $3`,
    [runId, lang, shardIndex],
  );
  const r = rows[0];
  return r && { shardIndex, in: r.items_in, kept: r.kept, rejected: r.rejected, skipped: true, ...(r.counters ? { operators: r.counters } : {}) };
}

async function markShardDone(runId: string, lang: string, shardIndex: number, attempt: number, durationMs: number): Promise<ShardResult> {
  const { rows } = await db().query<{ kept: boolean; reason: string | null; n: string }>(
    'select kept, reason, count(*) as n from filter_records where run_id = $1 and lang = $2 and shard_index = $3 group by 1, 2',
    [runId, lang, shardIndex],
  );
  const result: ShardResult = { shardIndex, in: 0, kept: 0, rejected: {}, skipped: false };
  for (const row of rows) {
    const n = Number(row.n);
    result.in += n;
    if (row.kept) result.kept += n;
    else result.rejected[row.reason ?? 'unknown'] = (result.rejected[row.reason ?? 'unknown'] ?? 0) + n;
  }
  const total = await db().query<{ n: string }>(
    `select count(*) as n from ingest_records r join ingest_results x on x.run_id = r.run_id and x.seq = r.seq and x.status = 'stored'
      where r.run_id = $1 and r.lang = $2 and r.shard_index = $3`,
    [runId, lang, shardIndex],
  );
  if (Number(total.rows[0]!.n) !== result.in) {
    throw new Error(`filter shard ${lang}/${shardIndex}: ${result.in} verdicts for ${total.rows[0]!.n} stored records`);
  }
  result.operators = await filterCounters(db(), { runId, lang, shardIndex });
  await db().query(
    `insert into shards (run_id, lang, stage, shard_index, items_in, kept, rejected, counters, attempt, duration_ms)
     values ($1, $2, 'filter', $3, $4, $5, $6, $7, $8, $9) on conflict do nothing`,
    [runId, lang, shardIndex, result.in, result.kept, JSON.stringify(result.rejected), JSON.stringify(result.operators), attempt, durationMs],
  );
  return result;
}
