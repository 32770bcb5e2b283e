/**
 * Activity (mella-cpu): plans the filter stage of one language. Its shards are the ingest stage's
 * shards (shard i judges the records ingest shard i stored), so no records are reassigned. Planning
 * also builds the site alt index that `repeated-site-alt` reads: for every (site, alt) pair carried by
 * more than one distinct image, how many. Idempotent: a language already planned returns its plan.
 */
import { db, inTransaction } from '../../shared/db';
import { buildSiteAltIndex, type SiteAltRecord } from '../text/repeated-site-alt';
import { siteKey } from './site';

const INSERT_BATCH = 500;

export async function planFilter(args: { runId: string; lang: string }): Promise<{ totalItems: number; shardCount: number }> {
  const { runId, lang } = args;
  const planned = await db().query<{ total_items: number; shard_count: number }>(
    `select total_items, shard_count from stage_plans where run_id = $1 and lang = $2 and stage = 'filter'`,
    [runId, lang],
  );
  if (planned.rows[0]) return { totalItems: planned.rows[0].total_items, shardCount: planned.rows[0].shard_count };

  const ingest = await db().query<{ shard_count: number; shard_size: number }>(
    `select shard_count, shard_size from stage_plans where run_id = $1 and lang = $2 and stage = 'ingest'`,
    [runId, lang],
  );
  const { rows } = await db().query<{ text: string | null; page_url: string | null; sha256: string }>(
    `select r.text, r.page_url, x.sha256
       from ingest_records r join ingest_results x on x.run_id = r.run_id and x.seq = r.seq
      where r.run_id = $1 and r.lang = $2 and x.status = 'stored'`,
    [runId, lang],
  );
  const records: SiteAltRecord[] = [];
  for (const r of rows) {
    const site = siteKey(r.page_url);
    if (site !== undefined && r.text) records.push({ site, alt: r.text, imageKey: r.sha256 });
  }
  // Only pairs on more than one image are stored: a record whose pair is absent counts 1 (itself).
  const repeated = buildSiteAltIndex(records).entries().filter((e) => e.images > 1);
  const shardCount = rows.length === 0 ? 0 : (ingest.rows[0]?.shard_count ?? 0);

  await inTransaction(async (client) => {
    await client.query('delete from filter_site_alts where run_id = $1 and lang = $2', [runId, lang]);
    for (let i = 0; i < repeated.length; i += INSERT_BATCH) {
      const batch = repeated.slice(i, i + INSERT_BATCH);
      await client.query(
        `insert into filter_site_alts (run_id, lang, site, alt_key, images)
         select $1, $2, * from unnest($3::text[], $4::text[], $5::int[])`,
        [runId, lang, batch.map((e) => e.site), batch.map((e) => e.altKey), batch.map((e) => e.images)],
      );
    }
    await client.query(
      `insert into stage_plans (run_id, lang, stage, total_items, shard_count, shard_size)
       values ($1, $2, 'filter', $3, $4, $5) on conflict do nothing`,
      [runId, lang, rows.length, shardCount, ingest.rows[0]?.shard_size ?? 0],
    );
  });
  return { totalItems: rows.length, shardCount };
}
