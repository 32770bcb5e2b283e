import * as cpu from '../activities/cpu';
import * as llm from '../activities/llm-queue';
import * as browser from '../activities/browser-queue';
import * as gpu from '../activities/finetune/gpu';
import { describeWorkerActivity } from '../activities/worker-info';
import { preloadLanguageId } from '../activities/filter/text/language-id';

import type { QueueName } from './queue-names';

interface QueueSpec {
  activities: object;
  /** Whether this queue's worker also runs the workflows. */
  workflows: boolean;
  slotsEnv: string;
  slots: number;
  /** Loaded in the background when the worker starts, so that the first tasks do not wait for it. */
  warmUp?: () => Promise<unknown>;
}

/** The task queues by resource (DESIGN.md) and what each one's worker registers. */
export const QUEUES: Record<QueueName, QueueSpec> = {
  /** Images, text, metrics, run bookkeeping; also hosts the workflows. */
  'mella-cpu': { activities: { ...cpu, describeWorker: describeWorkerActivity('mella-cpu') }, workflows: true, slotsEnv: 'MELLA_CPU_SLOTS', slots: 8 },
  /** Chromium pages (crawl stage, a later issue): one browser per worker. */
  'mella-browser': { activities: { ...browser, describeWorker: describeWorkerActivity('mella-browser') }, workflows: false, slotsEnv: 'MELLA_BROWSER_SLOTS', slots: 2, warmUp: preloadLanguageId },
  /** Endpoint calls (caption/translate/evaluate): concurrency = the endpoint's limit. */
  'mella-llm': { activities: { ...llm, describeWorker: describeWorkerActivity('mella-llm') }, workflows: false, slotsEnv: 'MELLA_LLM_SLOTS', slots: 16, warmUp: preloadLanguageId },
  /** Training: one job per GPU. */
  'mella-gpu': { activities: { ...gpu, describeWorker: describeWorkerActivity('mella-gpu') }, workflows: false, slotsEnv: 'MELLA_GPU_SLOTS', slots: 1 },
};

export { QUEUE_NAMES, parseQueue, type QueueName } from './queue-names';
