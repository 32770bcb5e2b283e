import { Context, CancelledFailure } from '@temporalio/activity';
import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import { blobs } from '../shared/blobs';
import { db, inTransaction } from '../shared/db';
import type { IngestConfig } from '../shared/config';
import { runConfig } from '../run/run-record';
import type { ShardResult } from '../../workflows/types';
import { DEFAULT_FETCH_POLICY, ImageFetcher, type FetchPolicy } from './fetch-image';
import { validateImage } from './validate-image';

interface RecordRow {
  seq: number;
  url: string;
  duplicate_of: number | null;
  dup_source: string | null;
  dup_line: number | null;
}

/** What one record became; written with an upsert keyed by (run, seq). */
export interface IngestOutcome {
  seq: number;
  status: 'stored' | 'rejected';
  reason: string | null;
  detail: string | null;
  finalUrl: string | null;
  httpStatus: number | null;
  attempts: number;
  image: null | {
    sha256: string; mime: string; format: string; width: number; height: number; frames: number; bytes: number; blobKey: string; url: string;
  };
}

export function fetchPolicyFor(config: IngestConfig): FetchPolicy {
  return { ...DEFAULT_FETCH_POLICY, ...config.fetch, allowPrivateNetworks: config.allowPrivateNetworks };
}

// One fetcher per distinct policy per process (per-host politeness is process-wide anyway).
const fetchers = new Map<string, ImageFetcher>();
function fetcherFor(policy: FetchPolicy): ImageFetcher {
  const key = JSON.stringify(policy);
  let f = fetchers.get(key);
  if (!f) fetchers.set(key, (f = new ImageFetcher(policy)));
  return f;
}

// One download pool per worker process (per configured size), shared by every shard activity the
// process runs: when a stage's last shard runs alone it gets the whole pool instead of a fixed share.
const pools = new Map<number, ReturnType<typeof pLimit>>();
function downloadPool(size: number) {
  let p = pools.get(size);
  if (!p) pools.set(size, (p = pLimit(size)));
  return p;
}

/**
 * Downloads, validates and stores one record: the pure work of the ingest stage, shared by the
 * shard activity and the benchmark's plain loop. Never throws for bad input.
 */
export async function ingestOne(
  seq: number,
  url: string,
  fetcher: ImageFetcher,
  limitInputPixels: number,
  signal?: AbortSignal,
): Promise<IngestOutcome> {
  const base = { seq, finalUrl: null, httpStatus: null, image: null };
  const fetched = await fetcher.fetch(url, signal);
  if (!fetched.ok) {
    return { ...base, status: 'rejected', reason: fetched.reason, detail: fetched.detail, finalUrl: fetched.finalUrl ?? null, attempts: fetched.attempts };
  }
  const common = { seq, finalUrl: fetched.finalUrl, httpStatus: fetched.status, attempts: fetched.attempts };
  const checked = await validateImage(fetched.bytes, { limitInputPixels });
  if (!checked.ok) return { ...common, status: 'rejected', reason: checked.reason, detail: checked.detail, image: null };
  const blob = await blobs().put(fetched.bytes);
  return {
    ...common,
    status: 'stored',
    reason: null,
    detail: null,
    image: {
      sha256: checked.sha256, mime: checked.mime, format: checked.format, width: checked.width, height: checked.height,
      frames: checked.frames, bytes: checked.bytes, blobKey: blob.key, url: fetched.finalUrl,
    },
  };
}

// Outcomes are written in batches: at most every FLUSH_EVERY outcomes or FLUSH_INTERVAL_MS.
const FLUSH_EVERY = 100;
const FLUSH_INTERVAL_MS = 1000;

/**
 * Activity (mella-cpu): ingests one shard of a language's records. Checkpoint contract: a shard with a
 * done-marker returns its recorded counts; otherwise only records without an outcome are processed
 * (so a retried attempt resumes mid-shard), outcomes are upserted in batches and the batch cursor is
 * heartbeated; the done-marker and the counts are written last, computed from the stored outcomes.
 */
export async function ingestShard(args: { runId: string; lang: string; shardIndex: number }): Promise<ShardResult> {
  const { runId, lang, shardIndex } = args;
  const started = Date.now();
  const done = await shardDone(runId, lang, shardIndex);
  if (done) return done;

  const ctx = Context.current();
  const config = (await runConfig(runId)).ingest;
  const fetcher = fetcherFor(fetchPolicyFor(config));
  const resumedFrom = (ctx.info.heartbeatDetails as { stored?: number } | undefined)?.stored;
  if (resumedFrom !== undefined) ctx.log.info('resuming ingest shard', { runId, lang, shardIndex, storedBefore: resumedFrom });

  const { rows } = await db().query<RecordRow>(
    `select r.seq, r.url, r.duplicate_of, d.source as dup_source, d.line_no as dup_line
       from ingest_records r
       left join ingest_results x on x.run_id = r.run_id and x.seq = r.seq
       left join ingest_records d on d.run_id = r.run_id and d.seq = r.duplicate_of
      where r.run_id = $1 and r.lang = $2 and r.shard_index = $3 and x.seq is null
      order by r.seq`,
    [runId, lang, shardIndex],
  );

  let pending: IngestOutcome[] = [];
  let stored = resumedFrom ?? 0;
  let flushing = Promise.resolve();
  const flush = () => {
    const batch = pending;
    pending = [];
    flushing = flushing.then(async () => {
      if (batch.length) await writeOutcomes(runId, batch);
      stored += batch.length;
      ctx.heartbeat({ stored });
    });
    return flushing;
  };
  // Heartbeat (and flush) at least every second: it carries the cursor and delivers cancellation.
  const timer = setInterval(() => void flush().catch(() => undefined), FLUSH_INTERVAL_MS);
  const limit = downloadPool(config.concurrency);
  // Every download in flight listens for this activity's cancellation on the same signal.
  setMaxListeners(config.concurrency + 16, ctx.cancellationSignal);
  try {
    await Promise.all(
      rows.map((row) =>
        limit(async () => {
          if (ctx.cancellationSignal.aborted) return;
          const outcome: IngestOutcome =
            row.duplicate_of !== null
              ? {
                  seq: row.seq, status: 'rejected', reason: 'duplicate', detail: `same URL as ${row.dup_source} line ${row.dup_line}`,
                  finalUrl: null, httpStatus: null, attempts: 0, image: null,
                }
              : await ingestOne(row.seq, row.url, fetcher, config.limitInputPixels, ctx.cancellationSignal);
          // An outcome produced by our own cancellation is not a verdict on the record: drop it.
          if (ctx.cancellationSignal.aborted && outcome.reason === 'aborted') return;
          pending.push(outcome);
          // Not awaited: the download slot moves on while the batch is written (flushes run in order).
          if (pending.length >= FLUSH_EVERY) void flush().catch(() => undefined);
        }),
      ),
    );
  } finally {
    clearInterval(timer);
    await flush();
  }
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('ingest shard cancelled; its finished records are kept');
  return markShardDone(runId, lang, shardIndex, ctx.info.attempt, Date.now() - started);
}

async function writeOutcomes(runId: string, batch: IngestOutcome[]) {
  await inTransaction(async (client) => {
    const images = batch.filter((o) => o.image).map((o) => o.image!);
    if (images.length) {
      const v: unknown[] = [];
      const t = images.map((im, i) => {
        v.push(im.sha256, im.mime, im.format, im.width, im.height, im.frames, im.bytes, im.blobKey, im.url);
        return `(${Array.from({ length: 9 }, (_, c) => `$${i * 9 + c + 1}`).join(',')})`;
      });
      await client.query(
        `insert into images (sha256, mime, format, width, height, frames, bytes, blob_key, first_url) values ${t.join(',')} on conflict do nothing`,
        v,
      );
    }
    const v: unknown[] = [];
    const t = batch.map((o, i) => {
      v.push(runId, o.seq, o.status, o.reason, o.detail?.slice(0, 500) ?? null, o.image?.sha256 ?? null, o.finalUrl, o.httpStatus, o.attempts);
      return `(${Array.from({ length: 9 }, (_, c) => `$${i * 9 + c + 1}`).join(',')})`;
    });
    await client.query(
      `insert into ingest_results (run_id, seq, status, reason, detail, sha256, final_url, http_status, attempts) values ${t.join(',')}
       on conflict (run_id, seq) do nothing`,
      v,
    );
  });
}

async function shardDone(runId: string, lang: string, shardIndex: number): Promise<ShardResult | undefined> {
  const { rows } = await db().query<{ items_in: number; kept: number; rejected: Record<string, number> }>(
    `select items_in, kept, rejected from shards where run_id = $1 and lang = $2 and stage = 'ingest' and shard_index = $3`,
    [runId, lang, shardIndex],
  );
  const r = rows[0];
  return r && { shardIndex, in: r.items_in, kept: r.kept, rejected: r.rejected, skipped: true };
}

async function markShardDone(runId: string, lang: string, shardIndex: number, attempt: number, durationMs: number): Promise<ShardResult> {
  const { rows } = await db().query<{ status: string; reason: string | null; n: string }>(
    `select x.status, x.reason, count(*) as n
       from ingest_records r join ingest_results x on x.run_id = r.run_id and x.seq = r.seq
      where r.run_id = $1 and r.lang = $2 and r.shard_index = $3 group by 1, 2`,
    [runId, lang, shardIndex],
  );
  const result: ShardResult = { shardIndex, in: 0, kept: 0, rejected: {}, skipped: false };
  for (const row of rows) {
    const n = Number(row.n);
    result.in += n;
    if (row.status === 'stored') result.kept += n;
    else result.rejected[row.reason ?? 'unknown'] = (result.rejected[row.reason ?? 'unknown'] ?? 0) + n;
  }
  const total = await db().query<{ n: string }>(
    'select count(*) as n from ingest_records where run_id = $1 and lang = $2 and shard_index = $3',
    [runId, lang, shardIndex],
  );
  if (Number(total.rows[0]!.n) !== result.in) {
    // Never mark a shard done with records missing an outcome; the retry processes them.
    throw new Error(`ingest shard ${lang}/${shardIndex}: ${result.in} outcomes for ${total.rows[0]!.n} records`);
  }
  await db().query(
    `insert into shards (run_id, lang, stage, shard_index, items_in, kept, rejected, attempt, duration_ms)
     values ($1, $2, 'ingest', $3, $4, $5, $6, $7, $8) on conflict do nothing`,
    [runId, lang, shardIndex, result.in, result.kept, JSON.stringify(result.rejected), attempt, durationMs],
  );
  return result;
}
