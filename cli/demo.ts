import path from 'node:path';
import { parseConfig } from '../activities/shared/config';
import { stateDir } from '../infra/paths';
import { stackUp } from '../infra/stack/control';
import { DEFAULT_PORTS } from '../infra/stack/stack';
import { buildDemoSet } from '../infra/sample-site/demo-set';
import { buildDemoSite } from '../infra/sample-site/demo-site';
import { startSampleServer } from '../infra/sample-site/server';
import { startLlmStandin, type LlmStandin } from '../infra/llm-standin/index';
import { startWorkers } from '../workers/run-workers';
import { QUEUE_NAMES } from '../workers/queue-names';
import { connectClient } from './client';
import { formatSummary } from './progress-format';
import { defaultRunId, startRun, waitRun } from './runs';

/**
 * `mella demo` (npm run demo): starts the embedded stack (or uses TEMPORAL_ADDRESS/DATABASE_URL),
 * workers for every queue, serves the project's sample set on 127.0.0.1, runs the pipeline on it and
 * prints the summary and the Temporal UI link. The stack is left up for inspection.
 *
 * Captions and translations come from the endpoint at OPENAI_BASE_URL (key: OPENAI_API_KEY, model:
 * MELLA_CAPTION_MODEL / MELLA_TRANSLATE_MODEL); without one, from the project's offline stand-in
 * server, which the demo starts and says so, and every stand-in output is labelled as such.
 */
export async function runDemo(opts: { langs?: string; json?: boolean; dataOnly?: boolean }): Promise<number> {
  const log = opts.json ? (m: string) => console.error(m) : (m: string) => console.log(m);
  // The demo's own output is the story; worker chatter (bundling, state changes) only when asked for.
  process.env.MELLA_LOG_LEVEL ??= 'WARN';
  if (!(process.env.TEMPORAL_ADDRESS && process.env.DATABASE_URL)) {
    log(`starting the embedded stack in ${stateDir()} ...`);
    const { reused } = await stackUp(stateDir(), DEFAULT_PORTS, log);
    log(reused ? 'the embedded stack is already up; reusing it' : 'embedded stack up (PostgreSQL + Temporal dev server)');
  }
  let standin: LlmStandin | undefined;
  if (!process.env.OPENAI_BASE_URL) {
    standin = await startLlmStandin({ port: 0 });
    // The in-process llm worker reads it (a real deployment sets it in the llm workers' environment).
    process.env.OPENAI_BASE_URL = standin.baseUrl;
    log(`no OPENAI_BASE_URL set: captions and translations come from the OFFLINE STAND-IN model at ${standin.baseUrl}`);
    log('  (deterministic text derived from each image; not a real model; set OPENAI_BASE_URL and OPENAI_API_KEY for one)');
  } else {
    log(`captions and translations from ${process.env.OPENAI_BASE_URL}`);
  }
  const server = await startSampleServer();
  const languages = opts.langs ? opts.langs.split(',') : undefined;
  const site = await buildDemoSite(server, languages);
  // A few deliberately bad input-list lines next to the crawl: they show the ingest stage's reasons.
  const set = await buildDemoSet(server, path.join(stateDir(), 'demo'), languages, { badLinesOnly: true });
  log(`sample site served on ${server.baseUrl} (pages, images and alt texts made by the project); seeds: ${Object.values(site.seeds)[0]} ...`);
  const config = parseConfig({
    name: 'demo',
    ...(languages ? { languages } : {}),
    inputs: [{ path: set.listFile }],
    crawl: {
      sites: Object.fromEntries(Object.entries(site.seeds).map(([lang, seed]) => [lang, { seeds: [seed] }])),
      allowPrivateNetworks: ['127.0.0.1/32'],
      // One local server for every language: no politeness delay needed.
      perDomainDelayMs: 0,
      maxDepth: 1,
    },
    // Small per-language sets: a larger test split gives the evaluation more than a couple of samples.
    merge: { split: { fractions: { train: 0.6, validation: 0.1, test: 0.3 } } },
    ingest: { allowPrivateNetworks: ['127.0.0.1/32'], fetch: { retries: 1, backoffBaseMs: 200 } },
    ...(process.env.MELLA_CAPTION_MODEL ? { caption: { model: process.env.MELLA_CAPTION_MODEL } } : {}),
    ...(process.env.MELLA_TRANSLATE_MODEL ? { translate: { model: process.env.MELLA_TRANSLATE_MODEL } } : {}),
  });
  const workers = await startWorkers(QUEUE_NAMES);
  const c = await connectClient();
  try {
    const runId = defaultRunId('demo');
    const { uiUrl } = await startRun(c, config, { runId, kind: 'manual' });
    log(`run ${runId} started${uiUrl ? `: ${uiUrl}` : ''}`);
    const summary = await waitRun(c, runId);
    if (opts.json) console.log(JSON.stringify({ ...summary, uiUrl }, null, 2));
    else log(formatSummary(summary));
    let lifecycle = true;
    if (summary.status === 'completed' && summary.dataset && !opts.dataOnly) {
      const { runLifecycle } = await import('./demo-lifecycle');
      lifecycle = await runLifecycle(c, summary.dataset, log);
    }
    log('');
    log(`The stack stays up for inspection${c.connections.uiUrl ? `: Temporal UI ${c.connections.uiUrl}` : ''}.`);
    log('Stop it with: node bin/mella.js dev down   (status: node bin/mella.js dev status)');
    return summary.status === 'completed' && lifecycle ? 0 : 1;
  } finally {
    await workers.stop().catch(() => undefined);
    await c.close();
    await server.close();
    await standin?.close();
  }
}
