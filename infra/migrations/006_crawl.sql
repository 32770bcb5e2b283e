-- The crawl stage: frontier, pages and the images found on them (with their native alt text), WARC
-- sources read, and the handoff of a language's images to the ingest stage.

create table crawl_frontier (
  run_id      text not null references runs(run_id) on delete cascade,
  lang        text not null,
  url_key     text not null,                           -- normalized URL (url-normalize.ts)
  url         text not null,
  depth       integer not null,
  domain      text not null,                           -- host, for politeness and per-domain limits
  via         text not null,                           -- seed | sitemap | link | known (refresh)
  status      text not null default 'pending',         -- pending | claimed | done
  claimed_by  text,                                    -- the batch that holds it (its retry resumes it)
  attempts    integer not null default 0,
  added_at    timestamptz not null default now(),
  primary key (run_id, lang, url_key)
);
create index crawl_frontier_pending on crawl_frontier (run_id, lang, status, depth);

create table crawl_pages (
  run_id         text not null references runs(run_id) on delete cascade,
  lang           text not null,
  url_key        text not null,
  url            text not null,
  final_url      text,
  via            text not null,                        -- browser | warc
  source         text,                                 -- the WARC source it came from
  outcome        text not null,                        -- harvested | rejected | unchanged
  reason         text,
  detail         text,
  http_status    integer,
  declared_lang  text,
  detected_lang  text,
  title          text,
  site_name      text,
  content_sha256 text,                                 -- of the rendered HTML: unchanged pages are skipped on refresh
  etag           text,
  last_modified  text,
  images         integer not null default 0,
  links          integer not null default 0,
  crawled_at     timestamptz not null default now(),
  primary key (run_id, lang, url_key)
);

create table crawl_images (
  run_id          text not null references runs(run_id) on delete cascade,
  lang            text not null,
  page_key        text not null,                       -- crawl_pages.url_key
  image_key       text not null,                       -- normalized image URL
  image_url       text not null,
  position        integer not null,                    -- index among the page's images
  alt             text,                                -- as the author wrote it; null: no alt attribute
  title           text,
  context         text,
  context_source  text,
  declared_width  integer,
  declared_height integer,
  natural_width   integer,
  natural_height  integer,
  primary key (run_id, lang, page_key, image_key)
);

create table crawl_warc_sources (
  run_id    text not null references runs(run_id) on delete cascade,
  lang      text not null,
  source    text not null,
  records   integer not null,
  html      integer not null,
  skipped   jsonb not null,                            -- reason -> records
  finished_at timestamptz not null default now(),
  primary key (run_id, lang, source)
);

-- Done-marker of a language's handoff to ingest: its records got seqs [first_seq, first_seq + records).
create table crawl_handoffs (
  run_id     text not null references runs(run_id) on delete cascade,
  lang       text not null,
  records    integer not null,
  first_seq  integer not null,
  skipped_known integer not null,                      -- refresh: images handed off by an earlier run, not sent again
  primary key (run_id, lang)
);
