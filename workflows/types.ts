// Types shared by workflows, activities and the CLI. Type-only: nothing here does I/O.
import type { LanguageStageName, RunConfig } from '../activities/shared/config';
import type { FilterCounters } from '../activities/filter/pipeline';

export type RunKind = 'manual' | 'schedule' | 'refresh';

export interface MellaRunInput {
  /** Run id; omitted by schedules, whose runs take their id from the workflow id Temporal gives them. */
  runId?: string;
  kind: RunKind;
  /** Validated config snapshot (small, no secrets: those stay in the workers' environment). */
  config: RunConfig;
}

/** Counts of one unit of work: items in, kept, rejected by reason. */
export interface StageCounts {
  in: number;
  kept: number;
  rejected: Record<string, number>;
}

export interface ShardResult extends StageCounts {
  shardIndex: number;
  /** The shard was already done (checkpoint found) and was not processed again. */
  skipped: boolean;
  /** Per-operator counters (filter stage). */
  operators?: FilterCounters;
}

export interface StageProgress extends StageCounts {
  stage: LanguageStageName;
  status: 'pending' | 'running' | 'done';
  totalItems: number;
  totalShards: number;
  doneShards: number;
  /** Per-operator counters so far (filter stage), summed over done shards and the set pass. */
  operators?: FilterCounters;
}

export interface LanguageRunInput {
  runId: string;
  lang: string;
  kind: RunKind;
  stages: LanguageStageName[];
  window: number;
  heartbeatTimeoutSeconds: number;
  /** Carried over by continueAsNew. */
  carry?: { stageIndex: number; nextShard: number; progress: StageProgress[] };
}

export interface LanguageRunResult {
  lang: string;
  stages: StageProgress[];
}

export interface PlanResult {
  languages: Record<string, { items: number; shards: number }>;
  linesRead: number;
  inputErrors: number;
  skippedOtherLanguage: number;
}

export interface RunSummary {
  runId: string;
  status: 'completed' | 'failed' | 'cancelled' | 'running';
  /** Per stage, all languages together; ingest's `in` counts malformed input lines too. */
  stages: Record<string, StageCounts>;
  languages: Record<string, Record<string, StageCounts>>;
  uniqueImages: number;
  inputErrors: { source: string; line: number; reason: string; detail: string }[];
  skippedOtherLanguage: number;
  /** Filter stage, per language: images judged and kept (the caption stage's input) and per-operator counters. */
  filter?: Record<string, { images: StageCounts; operators: FilterCounters }>;
  /** LLM stages, per stage and language: requests made, served from the cache, tokens and USD paid, stand-in outputs. */
  llm?: Record<string, Record<string, LlmUsage>>;
  /** Crawl, per language: images found on harvested pages, handed to ingest, skipped as known (refresh), WARC records skipped; refresh page counts. */
  crawl?: Record<string, CrawlLanguageSummary>;
  /** The dataset version the merge stage exported. */
  dataset?: DatasetVersionSummary;
  error?: string;
}

export interface CrawlLanguageSummary {
  images: number;
  handedOff: number;
  skippedKnown: number;
  warcSkipped: Record<string, number>;
  refresh?: { previousRun: string; new: number; changed: number; unchanged: number; gone: number };
}

export interface DatasetVersionSummary {
  versionId: string;
  name: string;
  dir: string;
  contentId: string;
  parentId: string | null;
  /** Samples per split, per source, per language x split x source. */
  counts: { total: number; bySplit: Record<string, number>; bySource: Record<string, number>; byLang: Record<string, Record<string, Record<string, number>>> };
  rejected: Record<string, number>;
  diff: unknown;
  standinSamples: number;
}

export interface LlmUsage {
  calls: number;
  cachedCalls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** Outputs produced by the project's offline stand-in server, not a real model. */
  standinOutputs: number;
}

export interface RunProgress {
  runId: string;
  phase: 'registering' | 'planning' | 'languages' | 'merging' | 'summarizing' | 'done';
  languages: Record<string, { workflowId: string; status: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled'; stages?: StageProgress[] }>;
}
