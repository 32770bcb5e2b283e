-- The crawl honours 429/503 with Retry-After: a page the server asked us to come back to later goes
-- back to the frontier with the time before which it must not be fetched (any worker, any process).
alter table crawl_frontier add column not_before timestamptz;
