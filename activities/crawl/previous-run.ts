import { db } from '../shared/db';

/** The latest earlier run of the same crawl (same config name) that crawled: what a refresh compares with. */
export async function previousRun(runId: string, name: string): Promise<string | undefined> {
  const { rows } = await db().query<{ run_id: string }>(
    `select r.run_id from runs r where r.name = $1 and r.run_id <> $2 and r.created_at < (select created_at from runs where run_id = $2)
        and exists (select 1 from crawl_pages p where p.run_id = r.run_id)
      order by r.created_at desc limit 1`,
    [name, runId],
  );
  return rows[0]?.run_id;
}
