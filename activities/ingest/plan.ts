import { Context } from '@temporalio/activity';
import { db, inTransaction } from '../shared/db';
import { ConfigError } from '../shared/config';
import { runConfig } from '../run/run-record';
import type { PlanResult } from '../../workflows/types';
import { inferFormat, InputListError, readInputList, urlKey } from './input-list';

// Rows per multi-row insert (11 parameters a row stays under PostgreSQL's 65,535).
const BATCH = 5000;

interface PendingRecord {
  seq: number; lang: string; shard: number; source: string; lineNo: number;
  url: string; key: string; text: string | null; pageUrl: string | null; extra: string | null;
}

/**
 * Activity: reads the run's input lists once, stores every usable line as an ingest record (in input
 * order, so the seq of a line is stable across retries), every bad line as an input error with its
 * line number, marks repeated URLs as duplicates and splits each language's records into shards.
 * Idempotent: a run already planned returns its stored plan; a retried partial plan rewrites the same rows.
 */
export async function planRun({ runId }: { runId: string }): Promise<PlanResult> {
  const existing = await db().query<{ plan: PlanResult | null }>('select plan from runs where run_id = $1', [runId]);
  if (existing.rows[0]?.plan) return existing.rows[0].plan;
  const config = await runConfig(runId);
  const shardSize = config.ingest.shardSize;
  const languages = new Set(config.languages);
  const perLang = new Map<string, number>(config.languages.map((l) => [l, 0]));
  let seq = 0;
  let linesRead = 0;
  let inputErrors = 0;
  let skippedOtherLanguage = 0;
  let batch: PendingRecord[] = [];
  const errors: { source: string; lineNo: number; reason: string; detail: string }[] = [];

  const flush = async () => {
    if (batch.length) await insertRecords(runId, batch);
    if (errors.length) await insertErrors(runId, errors);
    batch = [];
    errors.length = 0;
    Context.current().heartbeat({ linesRead });
  };

  for (const input of config.inputs) {
    const source = input.path;
    const format = asConfigError(() => inferFormat(input.path, input.format), input.path);
    const lines = readInputList(input.path, format);
    // Only the list's own problems are config errors; a database error in flush() stays retryable.
    for await (const line of asConfigErrors(lines, input.path)) {
      linesRead++;
      if ('error' in line) {
        inputErrors++;
        errors.push({ source, lineNo: line.lineNo, ...line.error });
      } else {
        const lang = line.record.lang ?? input.lang ?? (config.languages.length === 1 ? config.languages[0]! : null);
        if (!lang) {
          inputErrors++;
          errors.push({ source, lineNo: line.lineNo, reason: 'missing_lang', detail: 'no lang column and no lang on the input' });
        } else if (!languages.has(lang)) {
          skippedOtherLanguage++;
        } else {
          const n = perLang.get(lang)!;
          perLang.set(lang, n + 1);
          const r = line.record;
          batch.push({
            seq: seq++, lang, shard: Math.floor(n / shardSize), source, lineNo: line.lineNo,
            url: r.url, key: urlKey(r.url), text: r.text, pageUrl: r.pageUrl, extra: r.extra ? JSON.stringify(r.extra) : null,
          });
        }
      }
      if (batch.length >= BATCH || errors.length >= BATCH) await flush();
    }
  }
  await flush();

  const plan: PlanResult = { languages: {}, linesRead, inputErrors, skippedOtherLanguage };
  await inTransaction(async (client) => {
    // Repeated URLs (same language): the first line wins, later ones are marked duplicates.
    await client.query(
      `update ingest_records r set duplicate_of = f.first_seq
         from (select lang, url_key, min(seq) as first_seq from ingest_records where run_id = $1 group by lang, url_key having count(*) > 1) f
        where r.run_id = $1 and r.lang = f.lang and r.url_key = f.url_key and r.seq <> f.first_seq`,
      [runId],
    );
    for (const [lang, items] of perLang) {
      const shards = Math.ceil(items / shardSize);
      plan.languages[lang] = { items, shards };
      await client.query(
        `insert into stage_plans (run_id, lang, stage, total_items, shard_count, shard_size) values ($1, $2, 'ingest', $3, $4, $5)
         on conflict do nothing`,
        [runId, lang, items, shards, shardSize],
      );
    }
    await client.query('update runs set plan = $2, updated_at = now() where run_id = $1', [runId, JSON.stringify(plan)]);
  });
  return plan;
}

/** The list's own problems (InputListError) become non-retryable ConfigErrors; anything else is kept. */
function configErrorOf(err: unknown, location: string): unknown {
  return err instanceof InputListError ? new ConfigError(`input ${location}: ${err.message}`) : err;
}

function asConfigError<T>(fn: () => T, location: string): T {
  try {
    return fn();
  } catch (err) {
    throw configErrorOf(err, location);
  }
}

async function* asConfigErrors<T>(items: AsyncGenerator<T>, location: string): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (err) {
    throw configErrorOf(err, location);
  }
}

async function insertRecords(runId: string, rows: PendingRecord[]) {
  const cols = 11;
  const values: unknown[] = [];
  const tuples = rows.map((r, i) => {
    values.push(runId, r.seq, r.lang, r.shard, r.source, r.lineNo, r.url, r.key, r.text, r.pageUrl, r.extra);
    return `(${Array.from({ length: cols }, (_, c) => `$${i * cols + c + 1}`).join(',')})`;
  });
  await db().query(
    `insert into ingest_records (run_id, seq, lang, shard_index, source, line_no, url, url_key, text, page_url, extra)
     values ${tuples.join(',')} on conflict do nothing`,
    values,
  );
}

async function insertErrors(runId: string, rows: { source: string; lineNo: number; reason: string; detail: string }[]) {
  const values: unknown[] = [];
  const tuples = rows.map((r, i) => {
    values.push(runId, r.source, r.lineNo, r.reason, r.detail.slice(0, 500));
    return `($${i * 5 + 1},$${i * 5 + 2},$${i * 5 + 3},$${i * 5 + 4},$${i * 5 + 5})`;
  });
  await db().query(`insert into input_errors (run_id, source, line_no, reason, detail) values ${tuples.join(',')} on conflict do nothing`, values);
}
