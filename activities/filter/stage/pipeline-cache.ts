import { runConfig } from '../../run/run-record';
import { resolveFilterPipeline, type ResolvedFilterPipeline } from '../pipeline';

// Resolved once per (run, language) per worker process: a run's config never changes.
const cache = new Map<string, ResolvedFilterPipeline>();

export async function filterPipelineFor(runId: string, lang: string): Promise<ResolvedFilterPipeline> {
  const key = `${runId}\u0000${lang}`;
  let pipeline = cache.get(key);
  if (pipeline === undefined) {
    pipeline = resolveFilterPipeline((await runConfig(runId)).filter, lang);
    cache.set(key, pipeline);
  }
  return pipeline;
}
