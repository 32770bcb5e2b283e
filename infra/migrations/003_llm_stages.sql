-- The language source: the request cache of every paid LLM call, captions and translations.

-- One answer per request identity (endpoint URL, model, prompt version, parameters, input): a retry or
-- a re-run reads it here instead of paying again.
create table llm_cache (
  cache_key         text primary key,
  endpoint          text not null,                     -- base URL (no key: keys stay in the workers' environment)
  model             text not null,
  prompt_version    text not null,
  input_hash        text not null,
  variant           text not null,                     -- '' or the validation retry's variant
  content           text not null,
  finish_reason     text,
  prompt_tokens     integer not null,
  completion_tokens integer not null,
  standin           boolean not null,                  -- answered by the project's stand-in server
  created_at        timestamptz not null default now()
);

-- The items of an LLM stage, split into shards when the stage is planned (per run, stage, language).
create table llm_items (
  run_id       text not null references runs(run_id) on delete cascade,
  stage        text not null,                          -- caption | translate
  lang         text not null,
  item_key     text not null,                          -- image sha256
  shard_index  integer not null,
  primary key (run_id, stage, lang, item_key)
);
create index llm_items_shard on llm_items (run_id, stage, lang, shard_index);

-- What an LLM stage produced per item: a kept text or a rejection with its reason, and what it cost.
create table llm_outputs (
  run_id            text not null references runs(run_id) on delete cascade,
  stage             text not null,
  lang              text not null,
  item_key          text not null,
  kept              boolean not null,
  reason            text,
  detail            text,
  text              text,                              -- the answer (kept or not), stand-in marker removed
  source_text       text,                              -- translate: the caption it translated
  model             text not null,
  prompt_version    text not null,
  endpoint          text not null,
  calls             integer not null,                  -- requests made for it (validation retry included)
  cached_calls      integer not null,                  -- of which served from the cache
  prompt_tokens     integer not null,                  -- paid now (cached calls count 0)
  completion_tokens integer not null,
  cost_usd          double precision not null,
  standin           boolean not null,
  shard_index       integer not null,
  created_at        timestamptz not null default now(),
  primary key (run_id, stage, lang, item_key)
);
