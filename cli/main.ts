import { Command, Option } from 'commander';
import proto from '@temporalio/proto';

const { temporal } = proto;
import { stateDir } from '../infra/paths';
import { stackDown, stackStatus, stackUp } from '../infra/stack/control';
import { DEFAULT_PORTS } from '../infra/stack/stack';
import { ConfigError } from '../activities/shared/config';
import { StackNotUpError } from '../infra/connections';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { connectClient, type CliClient } from './client';
import { runDoctor } from './doctor';
import { parseQueue, QUEUE_NAMES } from '../workers/queue-names';
import { formatStageProgress, formatSummary } from './progress-format';
import { cancelRun, configFromFile, defaultRunId, resumeRun, runStatus, startRun, waitRun } from './runs';
import { createSchedule, deleteSchedule, listSchedules, triggerSchedule } from './schedules';

const program = new Command('mella')
  .description('MELLA data engine: durable Temporal pipeline that builds multimodal fine-tuning data for low-resource languages')
  .showHelpAfterError();

async function withClient<T>(fn: (c: CliClient) => Promise<T>): Promise<T> {
  const c = await connectClient();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

const print = (json: boolean | undefined, data: unknown, text: string) => console.log(json ? JSON.stringify(data, null, 2) : text);

// ---- embedded stack
const dev = program.command('dev').description('the embedded stack: Temporal dev server (SQLite, Web UI) + PostgreSQL, in the state dir');
dev
  .command('up')
  .description(`start the stack (state dir ${stateDir()}; ports from MELLA_TEMPORAL_PORT=${DEFAULT_PORTS.temporal}, MELLA_TEMPORAL_UI_PORT=${DEFAULT_PORTS.temporalUi}, MELLA_PG_PORT=${DEFAULT_PORTS.postgres}); reuses a running one`)
  .option('--json', 'print the connection details as JSON')
  .action(async (o) => {
    const { reused, record } = await stackUp(stateDir(), DEFAULT_PORTS);
    print(o.json, { reused, ...record }, `${reused ? 'already up' : 'up'}: Temporal ${record.temporalAddress}, Web UI ${record.temporalUiUrl}, PostgreSQL ${record.databaseUrl}`);
  });
dev
  .command('down')
  .description('stop the stack cleanly (data stays in the state dir)')
  .action(async () => console.log((await stackDown(stateDir())) ? 'stopped' : 'not running'));
dev
  .command('status')
  .description('is the stack up; which workers poll each queue')
  .option('--json', 'JSON output')
  .action(async (o) => {
    const s = await stackStatus(stateDir());
    const lines = [s.running ? `up (supervisor pid ${s.record?.pid}, state dir ${stateDir()})` : `down${s.stale ? ` (${s.stale})` : ''}`];
    for (const svc of s.services) lines.push(`  ${svc.name.padEnd(12)} :${svc.port} ${svc.up ? 'listening' : 'not listening'}`);
    let pollers: Record<string, number> = {};
    if (s.running) {
      pollers = await withClient(async (c) => {
        const out: Record<string, number> = {};
        for (const q of QUEUE_NAMES) {
          const d = await c.client.workflowService
            .describeTaskQueue({
              namespace: c.connections.namespace,
              taskQueue: { name: q },
              taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            })
            .catch(() => undefined);
          out[q] = d?.pollers?.length ?? -1;
        }
        return out;
      }).catch(() => ({}));
      for (const [q, n] of Object.entries(pollers)) if (n >= 0) lines.push(`  ${q.padEnd(14)} ${n} poller(s)`);
    }
    print(o.json, { ...s, pollers }, lines.join('\n'));
    if (!s.running) process.exitCode = 3;
  });

program
  .command('doctor')
  .description('ask a worker of every task queue to describe itself (host, Chromium, endpoint, GPUs); names queues nobody serves')
  .option('--wait <seconds>', 'how long each queue may take to answer', '10')
  .option('--json', 'JSON output')
  .action(async (o) => withClient(async (c) => {
    const report = await runDoctor(c, Number(o.wait));
    const lines = Object.entries(report).map(([q, r]) =>
      'error' in r ? `${q.padEnd(14)} MISSING  ${r.error}` : `${q.padEnd(14)} ok       ${r.host} pid ${r.pid} ${JSON.stringify(r.capabilities)}`,
    );
    print(o.json, report, lines.join('\n'));
    if (Object.values(report).some((r) => 'error' in r)) process.exitCode = 1;
  }));

// ---- workers
program
  .command('worker')
  .description('run workers; one process per queue in production, all queues in one process for development')
  .addOption(new Option('--queue <queues>', 'comma-separated: cpu, browser, llm, gpu (default: all)'))
  .action(async (o) => {
    const { runWorkers } = await import('../workers/run-workers');
    await runWorkers(o.queue ? String(o.queue).split(',').map(parseQueue) : QUEUE_NAMES);
  });

// ---- runs
program
  .command('run')
  .description('start a run of the pipeline on a config file')
  .requiredOption('--config <file>', 'run config (YAML or JSON; see README)')
  .option('--langs <list>', 'comma-separated languages, overriding the config (e.g. th,vi)')
  .option('--name <name>', 'run id (default: <config name>-<UTC timestamp>)')
  .option('--wait', 'wait for the run to finish')
  .option('--json', 'machine-readable output (with --wait: the run summary)')
  .action(async (o) => {
    const config = configFromFile(o.config, o.langs);
    const runId = o.name ?? defaultRunId(config.name);
    await withClient(async (c) => {
      const { workflowId, uiUrl } = await startRun(c, config, { runId, kind: 'manual' });
      if (!o.wait) {
        print(o.json, { runId, workflowId, uiUrl }, `run ${runId} started (workflow ${workflowId})${uiUrl ? `\n${uiUrl}` : ''}`);
        return;
      }
      if (!o.json) console.log(`run ${runId} started${uiUrl ? `: ${uiUrl}` : ''}; waiting ...`);
      const summary = await waitRun(c, runId);
      print(o.json, { ...summary, workflowId, uiUrl }, formatSummary(summary));
      if (summary.status !== 'completed') process.exitCode = 1;
    });
  });

program
  .command('status <run>')
  .description('per-stage progress of a run (bars on a terminal)')
  .option('--json', 'JSON output')
  .action(async (runId, o) => {
    await withClient(async (c) => {
      const r = await runStatus(c, runId);
      const lines = [`run ${runId}: ${r.status}${r.progress ? ` (${r.progress.phase})` : ''}`];
      if (r.uiUrl) lines.push(r.uiUrl);
      for (const [lang, stages] of Object.entries(r.languages)) for (const p of stages) lines.push(formatStageProgress(lang, p, Boolean(process.stdout.isTTY)));
      for (const [lang, l] of Object.entries(r.progress?.languages ?? {})) if (!r.languages[lang]) lines.push(`${lang.padEnd(6)} ${l.status}`);
      if (r.summary) lines.push(formatSummary(r.summary));
      print(o.json, r, lines.join('\n'));
    });
  });

program
  .command('cancel <run>')
  .description('cancel a run; finished shards are kept, "mella resume" continues it')
  .action(async (runId) => withClient(async (c) => {
    await cancelRun(c, runId);
    console.log(`cancellation requested for ${runId}`);
  }));

program
  .command('resume <run>')
  .description('continue a cancelled or failed run under the same id; done shards are skipped')
  .option('--wait', 'wait for it to finish')
  .option('--json', 'JSON output')
  .action(async (runId, o) => withClient(async (c) => {
    const { workflowId, uiUrl } = await resumeRun(c, runId);
    if (!o.wait) return print(o.json, { runId, workflowId, uiUrl }, `run ${runId} resumed${uiUrl ? `: ${uiUrl}` : ''}`);
    const summary = await waitRun(c, runId);
    print(o.json, { ...summary, workflowId, uiUrl }, formatSummary(summary));
    if (summary.status !== 'completed') process.exitCode = 1;
  }));

// ---- schedules
const schedule = program.command('schedule').description('Temporal Schedules that start refresh runs on a cron (overlap: skip)');
schedule
  .command('create <name>')
  .requiredOption('--config <file>', 'run config')
  .requiredOption('--cron <expr>', 'cron expression, e.g. "0 3 * * *" (UTC)')
  .option('--langs <list>', 'languages, overriding the config')
  .option('--paused', 'create it paused')
  .action(async (name, o) => withClient(async (c) => {
    await createSchedule(c, name, o.cron, configFromFile(o.config, o.langs), { paused: o.paused });
    console.log(`schedule ${name} created (${o.cron})`);
  }));
schedule
  .command('list')
  .option('--json', 'JSON output')
  .action(async (o) => withClient(async (c) => {
    const list = await listSchedules(c);
    print(o.json, list, list.map((s) => `${s.name}${s.paused ? ' (paused)' : ''} next ${s.nextRun ?? '-'} recent ${s.recentRuns.join(', ') || '-'}`).join('\n') || 'no schedules');
  }));
schedule.command('delete <name>').action(async (name) => withClient(async (c) => {
  await deleteSchedule(c, name);
  console.log(`schedule ${name} deleted`);
}));
schedule.command('trigger <name>').description('start a run now').action(async (name) => withClient(async (c) => {
  await triggerSchedule(c, name);
  console.log(`schedule ${name} triggered`);
}));

// ---- database
program
  .command('db')
  .description('database maintenance')
  .command('migrate')
  .description('apply pending SQL migrations (infra/migrations) to DATABASE_URL or the embedded stack')
  .action(async () => {
    const { migrate } = await import('../infra/migrate');
    const { resolveConnections } = await import('../infra/connections');
    const applied = await migrate(resolveConnections().databaseUrl);
    console.log(applied.length ? `applied ${applied.join(', ')}` : 'up to date');
  });

// ---- external cluster set-up
program
  .command('setup')
  .description(`register the search attributes (${ALL_SEARCH_ATTRIBUTES.map((k) => k.name).join(', ')}) on an external Temporal (TEMPORAL_ADDRESS)`)
  .action(async () => withClient(async (c) => {
    await c.client.connection.operatorService.addSearchAttributes({
      namespace: c.connections.namespace,
      searchAttributes: Object.fromEntries(ALL_SEARCH_ATTRIBUTES.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    }).catch((err: Error) => {
      if (!/already exists/i.test(err.message)) throw err;
    });
    console.log('search attributes registered');
  }));

// ---- demo
program
  .command('demo')
  .description('start the embedded stack and workers, serve the sample site on 127.0.0.1, run crawl -> ingest -> filter -> caption -> translate -> merge, then fine-tune the tiny model on the export and evaluate it against its base; print where everything is')
  .option('--langs <list>', 'languages (default: the eight of the paper)')
  .option('--json', 'print the summary as JSON')
  .option('--data-only', 'stop after the dataset (no fine-tune, no evaluation)')
  .action(async (o) => {
    // Loaded here: the demo pulls in the workers and every activity, which other commands never need.
    const { runDemo } = await import('./demo');
    process.exitCode = await runDemo(o);
  });

// ---- export (dataset versions)
const exportCmd = program.command('export').description('dataset versions exported by the merge stage (LLaMA-Factory, ms-swift, WebDataset, manifest, card)');
async function withDb<T>(fn: () => Promise<T>): Promise<T> {
  const { closeDb } = await import('../activities/shared/db');
  try {
    return await fn();
  } finally {
    await closeDb();
  }
}
exportCmd
  .command('list')
  .description('every version, oldest first, with its sample counts and parent')
  .option('--name <name>', 'only the versions of this dataset name')
  .option('--json', 'print JSON')
  .action(async (o) => withDb(async () => {
    const { listVersions, formatVersionLine } = await import('./export');
    const rows = await listVersions(o.name);
    if (o.json) console.log(JSON.stringify(rows, null, 2));
    else if (!rows.length) console.log('no dataset versions yet (a run with the merge stage records one)');
    else for (const v of rows) console.log(formatVersionLine(v));
  }));
exportCmd
  .command('show <version>')
  .description('one version: directory, card, counts per split and source, rejections, diff against its parent')
  .action(async (version) => withDb(async () => {
    const { showVersion } = await import('./export');
    const v = await showVersion(version);
    console.log(JSON.stringify({ ...v, card: `${v.dir}/card.html` }, null, 2));
  }));
exportCmd
  .command('reexport <version>')
  .description('export a recorded version again from PostgreSQL into --dir and check it is byte-identical (same content id)')
  .requiredOption('--dir <dir>', 'a directory that does not exist yet')
  .action(async (version, o) => withDb(async () => {
    const { reexportVersion } = await import('./export');
    const r = await reexportVersion(version, o.dir);
    console.log(`${r.dir}: content ${r.contentId} ${r.same ? '(identical to the recorded version)' : '(DIFFERENT from the recorded version)'}`);
    if (!r.same) process.exitCode = 1;
  }));

// ---- standin
program
  .command('standin')
  .description('run the OpenAI-compatible stand-in server (deterministic answers, fault injection) for tests and offline demos; `mella standin --help` for its options')
  .allowUnknownOption()
  .helpOption(false)
  .argument('[options...]')
  .action(async (args: string[]) => {
    // The stand-in has its own command line (infra/llm-standin/main.ts): hand it the arguments.
    process.argv = [process.argv[0]!, 'mella standin', ...args];
    await import('../infra/llm-standin/main');
  });

// ---- fine-tune (cli/finetune.ts): finetune start | status | cancel
(await import('./finetune')).addFinetuneCommands(program);

// ---- evaluate (cli/evaluate.ts): eval start | status | report
(await import('./evaluate')).addEvaluateCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as Error;
  const known = e instanceof ConfigError || e instanceof StackNotUpError;
  console.error(`mella: ${known ? e.message : e.message || String(e)}`);
  if (!known && process.env.MELLA_DEBUG) console.error(e.stack);
  process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 2;
}
