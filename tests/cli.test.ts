import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/paths';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { drawSceneImage } from '../infra/sample-site/images';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { waitRun } from '../cli/runs';
import { spawnWorker, stopProcess, tmpDir, waitFor, withCliClient, workerReady, writeList } from './support/pipeline';

function mella(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'mella.js'), ...args], { env, cwd: PROJECT_ROOT, timeout: 150_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let server: SampleServer;
let workers: RunningWorkers;
let configFile: string;
const name = `clitest${process.pid}`;

beforeAll(async () => {
  server = await startSampleServer();
  const rows = [];
  for (const lang of ['th', 'vi', 'ko']) {
    for (let i = 0; i < 3; i++) {
      server.set(`/c/${lang}${i}.jpg`, { kind: 'bytes', body: await drawSceneImage(`cli-${lang}`, i, 120, 90), contentType: 'image/jpeg' });
      rows.push({ url: server.url(`/c/${lang}${i}.jpg`), text: `${lang} ${i}`, lang });
    }
  }
  rows.push({ url: server.url('/c/missing.jpg'), text: 'gone', lang: 'th' });
  const dir = tmpDir('cli');
  writeList(dir, 'list.jsonl', rows);
  configFile = path.join(dir, 'run.yaml');
  fs.writeFileSync(
    configFile,
    [
      `name: ${name}`,
      'languages: [th, vi, ko]',
      'inputs:',
      '  - path: list.jsonl   # relative to this file',
      'ingest:',
      '  shardSize: 2',
      '  allowPrivateNetworks: ["127.0.0.1/32"]',
      '  fetch: { retries: 0 }',
    ].join('\n'),
  );
  workers = await startWorkers(['mella-cpu']);
});
afterAll(async () => {
  await workers?.stop();
  await server?.close();
});

describe('mella CLI', () => {
  it('run --wait --json prints one JSON object with per-stage counts; status shows the run', async () => {
    const runId = `${name}-json`;
    const r = await mella(['run', '--config', configFile, '--langs', 'th,vi', '--name', runId, '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      runId,
      status: 'completed',
      workflowId: `mella-run-${runId}`,
      stages: { ingest: { in: 7, kept: 6, rejected: { http_404: 1 } } },
      languages: { th: { ingest: { in: 4, kept: 3 } }, vi: { ingest: { in: 3, kept: 3 } } },
    });
    expect(out.languages.ko).toBeUndefined();

    const s = await mella(['status', runId, '--json']);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ runId, status: 'completed', summary: { stages: { ingest: { kept: 6 } } } });
    const text = await mella(['status', runId]);
    expect(text.stdout).toMatch(/ingest\s+th\s+in 4\s+kept 3\s+rejected 1 \(http_404=1\)/);

    const again = await mella(['run', '--config', configFile, '--name', runId]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists.*mella resume/);
  });

  it('makes runs findable by search attributes in Temporal visibility', async () => {
    const runId = `${name}-json`;
    await withCliClient(async (c) => {
      let ids: string[] = [];
      await waitFor(async () => {
        ids = [];
        for await (const w of c.client.workflow.list({ query: `MellaRunName = '${name}' AND MellaLanguage = 'vi'` })) ids.push(w.workflowId);
        return ids.length > 0;
      }, 30_000, 'visibility');
      expect(ids).toContain(`mella-run-${runId}-lang-vi`);
    });
  });

  it('explains bad configs and a missing stack instead of crashing', async () => {
    const bad = path.join(tmpDir('badcfg'), 'bad.yaml');
    fs.writeFileSync(bad, 'languages: [Thai]\ningest: { shardSize: 0 }\nbogus: 1\n');
    const r = await mella(['run', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid .*bad\.yaml/);
    expect(r.stderr).toMatch(/languages\.0/);
    expect(r.stderr).toMatch(/ingest\.shardSize/);
    expect(r.stderr).toMatch(/bogus/);

    const env: NodeJS.ProcessEnv = { ...process.env, MELLA_STATE_DIR: tmpDir('nostack') };
    delete env.TEMPORAL_ADDRESS;
    delete env.DATABASE_URL;
    const s = await mella(['status', 'whatever'], env);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/mella dev up/);
    const d = await mella(['dev', 'status'], env);
    expect(d.code).toBe(3);
    expect(d.stdout).toMatch(/^down/);
  });

  it('manages schedules: create, list, trigger (a real run), delete', async () => {
    const sched = `${name}-nightly`;
    const created = await mella(['schedule', 'create', sched, '--config', configFile, '--langs', 'ko', '--cron', '0 3 * * *']);
    expect(created.code, created.stderr).toBe(0);
    const dup = await mella(['schedule', 'create', sched, '--config', configFile, '--cron', '0 3 * * *']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/already exists/);

    expect((await mella(['schedule', 'trigger', sched])).code).toBe(0);
    let runWorkflowId = '';
    await waitFor(async () => {
      const list = JSON.parse((await mella(['schedule', 'list', '--json'])).stdout) as { name: string; recentRuns: string[] }[];
      runWorkflowId = list.find((s) => s.name === sched)?.recentRuns[0] ?? '';
      return runWorkflowId !== '';
    }, 30_000, 'the triggered run');
    expect(runWorkflowId.startsWith(`mella-run-${sched}-`)).toBe(true);
    const summary = await withCliClient((c) => waitRun(c, runWorkflowId.slice('mella-run-'.length)));
    expect(summary).toMatchObject({ status: 'completed', stages: { ingest: { in: 3, kept: 3 } } });

    expect((await mella(['schedule', 'delete', sched])).code).toBe(0);
    const gone = await mella(['schedule', 'delete', sched]);
    expect(gone.stderr).toMatch(/no schedule named/);
  });

  it('doctor names the queues that have a worker and those that have none', async () => {
    // This file's in-process worker serves mella-cpu only.
    const r = await mella(['doctor', '--wait', '2', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report['mella-cpu']).toMatchObject({ queue: 'mella-cpu', pid: process.pid, capabilities: { cpus: expect.any(String) } });
    for (const q of ['mella-browser', 'mella-llm', 'mella-gpu']) expect(report[q].error).toMatch(new RegExp(`no worker polls ${q}`));
  });

  it('a worker process shuts down gracefully on SIGTERM', async () => {
    const w = spawnWorker(['cpu', 'browser', 'llm', 'gpu']);
    await workerReady(w);
    const exited = new Promise<number | null>((r) => w.once('exit', (code) => r(code)));
    await stopProcess(w, 'SIGTERM');
    expect(await exited).toBe(0);
    expect(w.output()).toMatch(/shutting down mella-cpu, mella-browser, mella-llm, mella-gpu/);
  });
});
