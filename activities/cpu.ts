// Activities of the mella-cpu task queue (images, text, metrics, and the run's bookkeeping).
export { registerRun } from './run/run-record';
export { finishRun } from './run/finish';
export { planRun } from './ingest/plan';
export { stagePlan } from './shared/stage-plan';
export { ingestShard } from './ingest/shard';
export { planFilter } from './filter/stage/plan';
export { filterShard } from './filter/stage/shard';
export { dedupFilter } from './filter/stage/dedup';
export { filterStageCounters } from './filter/stage/counters';
export { planCaption } from './caption/stage';
export { planTranslate } from './translate/stage';
export { mergeRun } from './merge/stage';
export { planCrawl } from './crawl/plan';
export { crawlWarc } from './crawl/warc-source';
export { crawlHandoff } from './crawl/handoff';
export { registerFinetuneJob, finishFinetuneJob } from './finetune/jobs';
export { registerEvaluation, finishEvaluation, planEvaluation, scoreEvaluation, writeEvaluationReport } from './evaluate/cpu-activities';
export { planFuse } from './fuse/stage';
