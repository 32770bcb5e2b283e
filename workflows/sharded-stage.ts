import { workflowInfo } from '@temporalio/workflow';
import type { ShardResult } from './types';

export interface ShardedStageSpec {
  shardCount: number;
  /** Shard activities in flight at once. */
  window: number;
  /** First shard to start (after a continueAsNew). */
  startAt: number;
  runShard(shardIndex: number): Promise<ShardResult>;
  onShardDone(result: ShardResult): void;
}

/**
 * Runs a stage's shards with a bounded window of activities in flight. When Temporal suggests
 * continue-as-new (history growing), it stops starting shards, drains the ones in flight and returns
 * the next shard to start, so the caller can continueAsNew without abandoning work.
 */
export async function runShardedStage(spec: ShardedStageSpec): Promise<{ finished: boolean; nextShard: number }> {
  let next = spec.startAt;
  const inFlight = new Map<number, Promise<number>>();
  const launch = (index: number) =>
    inFlight.set(
      index,
      spec.runShard(index).then((result) => {
        spec.onShardDone(result);
        return index;
      }),
    );
  let firstError: unknown;
  while (next < spec.shardCount || inFlight.size > 0) {
    while (firstError === undefined && inFlight.size < spec.window && next < spec.shardCount && !workflowInfo().continueAsNewSuggested) {
      launch(next++);
    }
    if (inFlight.size === 0) break;
    try {
      const done = await Promise.race(inFlight.values());
      inFlight.delete(done);
    } catch (err) {
      // A shard failed for good (retries exhausted or non-retryable): drain the others, then fail.
      firstError ??= err;
      await Promise.allSettled(inFlight.values());
      inFlight.clear();
    }
  }
  if (firstError !== undefined) throw firstError;
  return { finished: next >= spec.shardCount, nextShard: next };
}
