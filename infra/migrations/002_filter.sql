-- The filter stage: per-image and per-record verdicts with the operator, the measured value and the
-- threshold of every rejection; duplicate groups; the site alt index; the set (deduplication) pass.

-- Per-operator counters of a shard (filter stage), so a skipped shard reports what it reported first.
alter table shards add column counters jsonb;

-- The image verdict, once per (run, language, image): the image operators judge pixels, not alts.
-- A kept image is eligible for the language source (caption) and is the picture of its records.
create table filter_images (
  run_id         text not null references runs(run_id) on delete cascade,
  lang           text not null,
  sha256         text not null references images(sha256),
  shard_index    integer not null,                     -- the shard that judged it (counters count it there)
  kept           boolean not null,
  operator       text,                                 -- the rejecting operator (null when kept)
  reason         text,
  measured       jsonb,
  threshold      jsonb,
  detail         text,
  passed         text[] not null,                      -- operators passed, in order
  -- measurements of the decoded image (null when it did not decode)
  phash          text,
  width          integer,                              -- displayed size (EXIF orientation applied)
  height         integer,
  frames         integer,
  bytes          integer,
  fidelity       text,
  duplicate_of   text,                                 -- keeper sha256 when phash-dedup removed it
  -- the normalized training copy of a kept image (blob store)
  train_sha256   text,
  train_blob_key text,
  train_format   text,
  train_width    integer,
  train_height   integer,
  judged_at      timestamptz not null default now(),
  primary key (run_id, lang, sha256)
);

-- The record verdict: the alt text's operators, and the record as a whole (kept = its image and its
-- alt both kept). A record whose image was removed as a near-duplicate keeps its alt and points to
-- the group's keeper (`image_sha256`): the alt describes the same picture.
create table filter_records (
  run_id         text not null,
  seq            integer not null,
  lang           text not null,
  shard_index    integer not null,
  sha256         text not null,                        -- the record's own image
  image_sha256   text not null,                        -- the dataset image (own, or its group's keeper)
  alt            text,                                 -- as normalized by the text operators
  text_kept      boolean not null,
  text_passed    text[] not null,
  text_operator  text,
  text_reason    text,
  text_measured  jsonb,
  text_threshold jsonb,
  text_detail    text,
  text_stats     jsonb,                                -- what kept operators measured (detected language...)
  kept           boolean not null,
  reason         text,                                 -- the record's reason: its image's, else its alt's
  judged_at      timestamptz not null default now(),
  primary key (run_id, seq),
  foreign key (run_id, seq) references ingest_records(run_id, seq) on delete cascade
);
create index filter_records_shard on filter_records (run_id, lang, shard_index);

-- Site alt index (repeated-site-alt): distinct images per (site, alt key), only where more than one.
create table filter_site_alts (
  run_id   text not null references runs(run_id) on delete cascade,
  lang     text not null,
  site     text not null,
  alt_key  text not null,
  images   integer not null,
  primary key (run_id, lang, site, alt_key)
);

-- Near-duplicate groups found by the set operators: one row per removed member.
create table filter_duplicate_groups (
  run_id    text not null references runs(run_id) on delete cascade,
  lang      text not null,
  operator  text not null,                             -- phash-dedup (ids: sha256) | near-duplicate (ids: seq)
  keeper    text not null,
  member    text not null,
  measured  double precision not null,                 -- Hamming bits or Jaccard similarity to the keeper
  primary key (run_id, lang, operator, member)
);

-- Done-marker of a language's set pass (written in the same transaction as its verdicts).
create table filter_dedup_passes (
  run_id          text not null references runs(run_id) on delete cascade,
  lang            text not null,
  images_in       integer not null,
  images_removed  integer not null,
  records_in      integer not null,
  records_removed integer not null,
  finished_at     timestamptz not null default now(),
  primary key (run_id, lang)
);
