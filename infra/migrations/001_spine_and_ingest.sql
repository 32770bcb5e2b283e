-- Runs, stage plans and shard checkpoints (the spine), and the ingest stage's records and images.

create table runs (
  run_id        text primary key,
  name          text not null,
  kind          text not null default 'manual',        -- manual | schedule | refresh
  workflow_id   text not null,
  languages     text[] not null,
  stages        text[] not null,
  config        jsonb not null,                        -- validated config snapshot; never holds secrets
  status        text not null default 'running',       -- running | completed | failed | cancelled
  plan          jsonb,                                 -- input-list statistics from planning (lines read, skipped, errors)
  summary       jsonb,
  error         text,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  finished_at   timestamptz
);

-- One row per (run, language, stage) once the stage's work has been split into shards.
create table stage_plans (
  run_id       text not null references runs(run_id) on delete cascade,
  lang         text not null,
  stage        text not null,
  total_items  integer not null,
  shard_count  integer not null,
  shard_size   integer not null,
  planned_at   timestamptz not null default now(),
  primary key (run_id, lang, stage)
);

-- Shard done-markers: a shard with a row here is never processed again for this run.
create table shards (
  run_id       text not null references runs(run_id) on delete cascade,
  lang         text not null,
  stage        text not null,
  shard_index  integer not null,
  items_in     integer not null,
  kept         integer not null,
  rejected     jsonb not null,                         -- {reason: count}
  attempt      integer not null,
  duration_ms  integer not null,
  finished_at  timestamptz not null default now(),
  primary key (run_id, lang, stage, shard_index)
);

-- Input list lines that could not be read as a record (malformed, missing columns...).
create table input_errors (
  run_id     text not null references runs(run_id) on delete cascade,
  source     text not null,
  line_no    integer not null,
  reason     text not null,
  detail     text not null,
  primary key (run_id, source, line_no)
);

-- Image records of a run's input lists (url + native text), one per usable line, in input order.
create table ingest_records (
  run_id          text not null references runs(run_id) on delete cascade,
  seq             integer not null,                    -- position in the run's inputs (stable)
  lang            text not null,
  shard_index     integer not null,
  source          text not null,
  line_no         integer not null,
  url             text not null,
  url_key         text not null,                       -- normalized URL, the dedup key
  text            text,
  page_url        text,
  extra           jsonb,
  duplicate_of    integer,                             -- seq of the first record with the same url_key and lang
  primary key (run_id, seq)
);
create index ingest_records_shard on ingest_records (run_id, lang, shard_index);

-- Images by content: the same bytes at two URLs are one image.
create table images (
  sha256        text primary key,
  mime          text not null,
  format        text not null,
  width         integer not null,
  height        integer not null,
  frames        integer not null,
  bytes         integer not null,
  blob_key      text not null,
  first_url     text not null,
  first_seen_at timestamptz not null default now()
);

-- The outcome of every ingest record: stored (with its image) or rejected with a reason.
create table ingest_results (
  run_id       text not null,
  seq          integer not null,
  status       text not null check (status in ('stored', 'rejected')),
  reason       text,
  detail       text,
  sha256       text references images(sha256),
  final_url    text,
  http_status  integer,
  attempts     integer not null default 1,
  fetched_at   timestamptz not null default now(),
  primary key (run_id, seq),
  foreign key (run_id, seq) references ingest_records(run_id, seq) on delete cascade
);
create index ingest_results_sha on ingest_results (sha256);
