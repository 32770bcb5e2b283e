-- Politeness across worker processes and runs: the earliest time the next visit to a host may start.
-- A visit reserves its start atomically (activities/crawl/domain-slots.ts), so two browser workers, or
-- two languages or runs crawling the same host, keep the per-domain delay and robots.txt crawl-delay
-- between their page loads; a 429/503 with Retry-After holds the host for every worker.
create table if not exists crawl_domain_slots (
  domain text primary key,
  next_at timestamptz not null
);
