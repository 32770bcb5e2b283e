-- The merge stage: immutable dataset versions (exports) with their parent and the diff against it.
create table dataset_versions (
  version_id   text primary key,                        -- v-<run id>
  name         text not null,                           -- the dataset's name (merge.name): versions of one name form a line
  run_id       text not null references runs(run_id) on delete cascade,
  parent_id    text references dataset_versions(version_id),
  dir          text not null,                           -- the export directory
  content_id   text not null,                           -- sha256 of its SHA256SUMS: equal content, equal id
  counts       jsonb not null,                          -- per split, source, language
  rejected     jsonb not null,                          -- samples the export refused, by reason
  diff         jsonb,                                   -- against the parent: added / removed / changed per language and source
  standin_samples integer not null,
  created_at   timestamptz not null default now(),
  unique (run_id)
);
create index dataset_versions_name on dataset_versions (name, created_at);
