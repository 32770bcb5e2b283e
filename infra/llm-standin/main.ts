/**
 * Runs the LLM stand-in in the foreground until SIGINT/SIGTERM:
 *
 *   npx tsx infra/llm-standin/main.ts --port 18080 [--host 127.0.0.1] [--latency-ms 200]
 *       [--fault 429=2@every=5 ...] [--require-key-env MELLA_STANDIN_KEY] [--embedding-dimensions 256] [--log]
 *
 * Prints the base URL (and the environment to point a client at it). A required key is read from the
 * named environment variable, never from the command line, and never printed.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseFaultSpec, type FaultRule } from './faults';
import { startLlmStandin } from './server';

const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};

const program = new Command('llm-standin')
  .description('The MELLA OpenAI-compatible stand-in server (tests and the offline demo; deterministic, no model)')
  .option('--port <n>', 'port (0: a free one)', int('port', 0), 18080)
  .option('--host <addr>', 'address to listen on', '127.0.0.1')
  .option('--latency-ms <n>', 'delay before every chat/embeddings answer', int('latency', 0), 0)
  .addOption(
    new Option('--fault <spec>', 'a fault rule, repeatable: kind[=value][@first=N|@every=N] (e.g. 429=2@every=5)')
      .argParser((v: string, prev: FaultRule[] = []) => {
        try {
          return [...prev, parseFaultSpec(v)];
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      })
      .default([] as FaultRule[]),
  )
  .option('--require-key-env <name>', 'require the API key held in this environment variable')
  .option('--embedding-dimensions <n>', 'default embedding dimension (64-4096)', int('dimension', 64), 256)
  .option('--log', 'print one line per request (never a key)', false);

program.parse();
const o = program.opts<{ port: number; host: string; latencyMs: number; fault: FaultRule[]; requireKeyEnv?: string; embeddingDimensions: number; log: boolean }>();

let requireKey: string | undefined;
if (o.requireKeyEnv !== undefined) {
  requireKey = process.env[o.requireKeyEnv];
  if (requireKey === undefined || requireKey === '') {
    console.error(`--require-key-env: the environment variable ${o.requireKeyEnv} is not set`);
    process.exit(2);
  }
}

try {
  const standin = await startLlmStandin({
    port: o.port,
    host: o.host,
    latencyMs: o.latencyMs,
    faults: o.fault,
    embeddingDimensions: o.embeddingDimensions,
    ...(requireKey === undefined ? {} : { requireKey }),
    ...(o.log ? { log: (line: string) => console.log(line) } : {}),
  });
  console.log(`MELLA LLM stand-in (deterministic, no model) listening at ${standin.baseUrl}`);
  console.log(`  OPENAI_BASE_URL=${standin.baseUrl}${requireKey === undefined ? '  (any API key is accepted)' : `  (API key: the value of $${o.requireKeyEnv})`}`);
  if (o.fault.length > 0) console.log(`  faults: ${o.fault.map((f) => JSON.stringify(f)).join(' ')}`);
  const stop = async (signal: string) => {
    const s = standin.stats();
    await standin.close();
    console.log(`${signal}: stopped after ${s.requests} requests ${JSON.stringify(s.byOutcome)}`);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  console.error(e.code === 'EADDRINUSE' ? `port ${o.port} on ${o.host} is in use` : `could not start the stand-in: ${e.message}`);
  process.exit(2);
}
