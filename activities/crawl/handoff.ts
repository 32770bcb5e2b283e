/**
 * Activity (mella-cpu): hands a language's crawled images to the ingest stage, by reference: each
 * image of a harvested page becomes an ingest record (image URL, native alt text, page URL, and the page
 * facts the filter stage reads: page title, site name, context), appended after the run's input-list
 * records and split into further ingest shards. The same image URL on several pages is one download
 * (later ones are marked duplicates, as in input lists).
 *
 * A refresh run sends only new images downstream: an image an earlier run of the same crawl already
 * handed off (same language and image URL) is not sent again.
 *
 * Idempotent: the handoff's done-marker is written in the same transaction as its records.
 */
import { inTransaction } from '../shared/db';
import { runConfig } from '../run/run-record';
import { urlKey } from '../ingest/input-list';
import { previousRun } from './previous-run';

export interface HandoffResult {
  records: number;
  skippedKnown: number;
}

export async function crawlHandoff(args: { runId: string; lang: string; kind?: string }): Promise<HandoffResult> {
  const { runId, lang } = args;
  const config = await runConfig(runId);
  const prev = args.kind === 'refresh' || args.kind === 'schedule' ? await previousRun(runId, config.name) : undefined;
  return inTransaction(async (client) => {
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`ingest-seq:${runId}`]);
    const done = await client.query<{ records: number; skipped_known: number }>('select records, skipped_known from crawl_handoffs where run_id = $1 and lang = $2', [runId, lang]);
    if (done.rows[0]) return { records: done.rows[0].records, skippedKnown: done.rows[0].skipped_known };

    const { rows } = await client.query<{
      image_url: string; alt: string | null; title: string | null; context: string | null; context_source: string | null; page_url: string;
      page_title: string | null; site_name: string | null; source: string; position: number; declared_width: number | null; declared_height: number | null;
      natural_width: number | null; natural_height: number | null;
    }>(
      `select i.image_url, i.alt, i.title, i.context, i.context_source, coalesce(p.final_url, p.url) as page_url, p.title as page_title, p.site_name,
              case when p.via = 'warc' then 'crawl:warc:' || p.source else 'crawl:browser' end as source, i.position,
              i.declared_width, i.declared_height, i.natural_width, i.natural_height
         from crawl_images i join crawl_pages p on p.run_id = i.run_id and p.lang = i.lang and p.url_key = i.page_key
        where i.run_id = $1 and i.lang = $2 and p.outcome = 'harvested'
        order by p.url_key, i.position`,
      [runId, lang],
    );
    let known = new Set<string>();
    if (prev) {
      // Every image an earlier run of this crawl handed off (not only the last run's: it sent only what was new).
      const before = await client.query<{ url_key: string }>(
        `select distinct r.url_key from ingest_records r join runs x on x.run_id = r.run_id
          where x.name = $1 and x.run_id <> $2 and x.created_at < (select created_at from runs where run_id = $2)
            and r.lang = $3 and r.source like 'crawl:%'`,
        [config.name, runId, lang],
      );
      known = new Set(before.rows.map((r) => r.url_key));
    }
    const fresh = rows.filter((r) => !known.has(urlKey(r.image_url)));
    const plan = await client.query<{ total_items: number; shard_count: number }>(
      `select total_items, shard_count from stage_plans where run_id = $1 and lang = $2 and stage = 'ingest'`,
      [runId, lang],
    );
    const firstSeq = Number((await client.query<{ n: string }>('select coalesce(max(seq), -1) + 1 as n from ingest_records where run_id = $1', [runId])).rows[0]!.n);
    const shardSize = config.ingest.shardSize;
    const firstShard = plan.rows[0]?.shard_count ?? 0;
    for (let i = 0; i < fresh.length; i += 500) {
      const batch = fresh.slice(i, i + 500);
      const values: unknown[] = [];
      const tuples = batch.map((r, j) => {
        const n = i + j;
        const extra = {
          page_title: r.page_title, site_name: r.site_name, context: r.context, context_source: r.context_source, title: r.title,
          alt_missing: r.alt === null, declared_width: r.declared_width, declared_height: r.declared_height,
          natural_width: r.natural_width, natural_height: r.natural_height,
        };
        const row = [runId, firstSeq + n, lang, firstShard + Math.floor(n / shardSize), r.source, r.position, r.image_url, urlKey(r.image_url), r.alt, r.page_url, JSON.stringify(extra)];
        const at = values.length;
        values.push(...row);
        return `(${row.map((_, c) => `$${at + c + 1}`).join(',')})`;
      });
      await client.query(
        `insert into ingest_records (run_id, seq, lang, shard_index, source, line_no, url, url_key, text, page_url, extra) values ${tuples.join(',')}`,
        values,
      );
    }
    // The same image URL again (another page, or an input list) downloads once.
    await client.query(
      `update ingest_records r set duplicate_of = f.first_seq
         from (select url_key, min(seq) as first_seq from ingest_records where run_id = $1 and lang = $2 group by url_key having count(*) > 1) f
        where r.run_id = $1 and r.lang = $2 and r.url_key = f.url_key and r.seq <> f.first_seq and r.seq >= $3`,
      [runId, lang, firstSeq],
    );
    const shards = Math.ceil(fresh.length / shardSize);
    await client.query(
      `insert into stage_plans (run_id, lang, stage, total_items, shard_count, shard_size) values ($1, $2, 'ingest', $3, $4, $5)
       on conflict (run_id, lang, stage) do update set total_items = stage_plans.total_items + $3, shard_count = stage_plans.shard_count + $4`,
      [runId, lang, fresh.length, shards, shardSize],
    );
    await client.query('insert into crawl_handoffs (run_id, lang, records, first_seq, skipped_known) values ($1, $2, $3, $4, $5)', [
      runId, lang, fresh.length, firstSeq, rows.length - fresh.length,
    ]);
    return { records: fresh.length, skippedKnown: rows.length - fresh.length };
  });
}
