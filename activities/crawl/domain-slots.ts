/**
 * Per-domain politeness shared by every worker process, in PostgreSQL (`crawl_domain_slots`, migration
 * 009). A visit reserves its start time in one statement: the later of the domain's next free time, now
 * and the page's own `not_before`; the domain's next free time becomes that start plus the delay
 * (`perDomainDelayMs`, or robots.txt's crawl-delay when longer). Concurrent reservations from any number
 * of batches, languages, runs and processes therefore start at least `delayMs` apart; the caller waits
 * until its start. Times are the database's clock, so workers on hosts with skewed clocks agree.
 * (Before, each process kept its own last-visit map, and two visits that checked it at the same moment
 * both went at once.)
 */
import { db } from '../shared/db';

/**
 * Reserves the next visit to `domain`, at least `delayMs` after the previous reservation's start and
 * not before `notBefore`. Returns how long to wait (ms) before the visit may start, and the start by the
 * database's clock (epoch ms).
 */
export async function reserveVisit(domain: string, delayMs: number, notBefore: Date | null = null): Promise<{ waitMs: number; startAt: number }> {
  const { rows } = await db().query<{ wait_ms: number; start_at: number }>(
    `with t as (select clock_timestamp() as now, make_interval(secs => $2::double precision / 1000) as gap)
     insert into crawl_domain_slots as s (domain, next_at)
     select $1, greatest(t.now, coalesce($3::timestamptz, t.now)) + t.gap from t
     on conflict (domain) do update
       set next_at = greatest(s.next_at, (select now from t), coalesce($3::timestamptz, (select now from t))) + (select gap from t)
     returning greatest(0, extract(epoch from (s.next_at - (select gap from t) - (select now from t))) * 1000)::double precision as wait_ms,
               (extract(epoch from (s.next_at - (select gap from t))) * 1000)::double precision as start_at`,
    [domain, delayMs, notBefore],
  );
  return { waitMs: rows[0]!.wait_ms, startAt: rows[0]!.start_at };
}

/** After a 429/503: no visit to `domain` starts, in any process, before `waitMs` from now. */
export async function holdDomain(domain: string, waitMs: number): Promise<void> {
  await db().query(
    `insert into crawl_domain_slots as s (domain, next_at) values ($1, clock_timestamp() + make_interval(secs => $2::double precision / 1000))
     on conflict (domain) do update set next_at = greatest(s.next_at, excluded.next_at)`,
    [domain, waitMs],
  );
}

/** Reserves the next visit to `domain` and waits for it (an abort ends the wait early). */
export async function politeWait(domain: string, delayMs: number, signal: AbortSignal, notBefore: Date | null = null): Promise<void> {
  const { waitMs: wait } = await reserveVisit(domain, delayMs, notBefore);
  if (wait <= 0 || signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, wait);
    signal.addEventListener('abort', done, { once: true });
  });
}
