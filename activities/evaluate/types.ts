/** What crosses the workflow boundary of the evaluate stage: ids, counts and paths, never predictions. */
import type { EvaluateConfig } from './config';

export interface EvaluateInput {
  evalId: string;
  config: EvaluateConfig;
  /** Set by the workflow itself when it continues as new. */
  carry?: { modelIndex: number; nextShard: number; progress: EvaluateProgress };
}

export interface ModelProgress {
  name: string;
  role: string;
  totalShards: number;
  doneShards: number;
  predictions: number;
  /** Served from the request cache (nothing paid now). */
  cached: number;
  /** Samples without an answer (request refused), scored as empty. */
  failed: number;
  standin: number;
}

export interface EvaluateProgress {
  evalId: string;
  phase: 'registering' | 'planning' | 'predicting' | 'scoring' | 'reporting' | 'done' | 'failed' | 'cancelled';
  items: number;
  perLanguage: Record<string, number>;
  models: ModelProgress[];
  report?: ReportPaths;
  error?: string;
}

export interface ReportPaths {
  dir: string;
  json: string;
  markdown: string;
  html: string;
}

export interface EvaluateResult {
  evalId: string;
  status: 'completed';
  items: number;
  models: ModelProgress[];
  report: ReportPaths;
  standin: boolean;
}

export interface PredictShardResult {
  shardIndex: number;
  predictions: number;
  cached: number;
  failed: number;
  standin: number;
  skipped: boolean;
}
