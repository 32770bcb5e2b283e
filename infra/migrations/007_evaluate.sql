-- Evaluate stage (issue 8): evaluations of models against a dataset version's split, their predictions and scores.

-- One row per evaluation (workflow `mella-eval-<eval_id>`).
create table evaluations (
  eval_id        text primary key,
  workflow_id    text not null,
  version_id     text,                                   -- dataset_versions.version_id, when evaluated by version
  export_dir     text not null,                          -- the export whose manifest.jsonl was read
  split          text not null,                          -- train | validation | test
  models         jsonb not null,                         -- [{name, role: baseline|finetuned|other, endpoint: {name, baseUrl|null}, model}] (no keys)
  config         jsonb not null,                         -- the validated evaluate config snapshot (no secrets)
  status         text not null default 'running',        -- running | completed | failed | cancelled
  items          integer,                                -- samples planned
  shard_count    integer,
  report_dir     text,
  report_json    text,
  report_md      text,
  report_html    text,
  error          text,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  finished_at    timestamptz
);
create index evaluations_version on evaluations (version_id);

-- The samples an evaluation asks about, in shards (planned once; the same for every model).
create table eval_items (
  eval_id        text not null references evaluations(eval_id) on delete cascade,
  sample_id      text not null,
  lang           text not null,
  source         text not null,                          -- know | ling | fused
  shard_index    integer not null,
  instruction    text not null,
  reference      text not null,                          -- the training answer
  image          text not null,                          -- path relative to the export dir
  image_sha256   text not null,
  primary key (eval_id, sample_id)
);
create index eval_items_shard on eval_items (eval_id, shard_index);

-- One prediction per (evaluation, model, sample).
create table eval_predictions (
  eval_id        text not null references evaluations(eval_id) on delete cascade,
  model_name     text not null,                          -- the name in the evaluate config (not the endpoint's model id)
  sample_id      text not null,
  lang           text not null,
  source         text not null,
  prediction     text not null,                          -- '' when the request was refused
  kept           boolean not null,                       -- false: no answer (the reason says why); scored as an empty prediction
  reason         text,                                   -- request_rejected | empty_answer | refusal | truncated (a kept answer may carry a note)
  detail         text,
  endpoint       text not null,                          -- base URL the request went to (no key)
  model          text not null,                          -- the endpoint's model id
  cache_key      text,                                   -- llm_cache.cache_key
  cached         boolean not null default false,
  standin        boolean not null default false,         -- answered by the project's stand-in server
  prompt_tokens  integer not null default 0,
  completion_tokens integer not null default 0,
  shard_index    integer not null,
  created_at     timestamptz not null default now(),
  primary key (eval_id, model_name, sample_id)
);

-- Scores per model, language, source and metric.
create table eval_scores (
  eval_id        text not null references evaluations(eval_id) on delete cascade,
  model_name     text not null,
  lang           text not null,
  source         text not null,
  metric         text not null,                          -- keyword_accuracy | keyword_micro | bleu | chrf | rouge_l | meteor
  value          double precision not null,
  signature      text not null,
  n              integer not null,                       -- samples scored
  primary key (eval_id, model_name, lang, source, metric)
);
