-- Fine-tune stage (issue 7): training jobs on the mella-gpu queue, their attempts, and the models they produce.

-- One row per fine-tune job (workflow `mella-finetune-<job_id>`). Progress columns are written by the
-- training activity (throttled) while the trainer runs; `mella finetune status` reads them.
create table finetune_jobs (
  job_id                  text primary key,
  workflow_id             text not null,
  dataset_dir             text not null,                  -- the export: dataset_info.json + data files + images
  dataset_name            text not null,                  -- entry (or comma list) in dataset_info.json
  export_id               text,                           -- dataset version id from the merge stage, when known
  base_model              text not null,                  -- 'tiny-random', a local model dir or an HF id
  method                  text not null,                  -- lora | full
  backend                 text not null,                  -- mella | llamafactory
  hyperparameters         jsonb not null,
  config                  jsonb not null,                 -- the validated fine-tune config snapshot (no secrets)
  status                  text not null default 'pending',-- pending | running | completed | failed | cancelled
  output_dir              text,
  current_step            integer,
  total_steps             integer,
  last_loss               double precision,
  last_lr                 double precision,
  latest_checkpoint       text,                           -- the latest complete checkpoint dir
  latest_checkpoint_step  integer,
  attempts                integer not null default 0,     -- training activity attempts started
  trainer_host            text,                           -- where the live trainer runs (its process group id is its pid)
  trainer_pid             integer,
  model_id                text,
  error                   text,
  created_at              timestamptz not null default now(),
  started_at              timestamptz,
  updated_at              timestamptz not null default now(),
  finished_at             timestamptz
);
create index finetune_jobs_export on finetune_jobs (export_id);

-- One row per attempt of the training activity: where it ran, the exact command, where it resumed.
create table finetune_attempts (
  job_id             text not null references finetune_jobs(job_id) on delete cascade,
  attempt            integer not null,
  host               text not null,
  worker_pid         integer not null,
  trainer_pid        integer,
  command            jsonb not null,                      -- argv (no secrets)
  resume_checkpoint  text,                                -- the complete checkpoint the trainer resumed from
  resume_step        integer,
  first_step         integer,                             -- first progress step this attempt reported
  last_step          integer,
  outcome            text,                                -- running | completed | failed | cancelled | stalled | lost
  exit_code          integer,
  signal             text,
  error              text,
  started_at         timestamptz not null default now(),
  ended_at           timestamptz,
  primary key (job_id, attempt)
);

-- A trained model: the final adapter or model dir, its metrics and loss curve, linked to its job and dataset version.
create table models (
  model_id      text primary key,
  job_id        text not null references finetune_jobs(job_id) on delete cascade,
  export_id     text,
  backend       text not null,
  base_model    text not null,
  method        text not null,
  output_dir    text not null,
  final_dir     text not null,
  files         jsonb not null,                           -- [{path, bytes, blobKey?}] (small files content-addressed in the blob store)
  metrics       jsonb not null,                           -- training_metrics.json (mella) / train_results.json (llamafactory)
  loss_curve    jsonb not null,                           -- {step: [], loss: [], lr: []}
  final_loss    double precision,
  total_steps   integer,
  created_at    timestamptz not null default now()
);
create index models_job on models (job_id);
