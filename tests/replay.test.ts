import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/paths';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { drawSceneImage } from '../infra/sample-site/images';
import { freePort } from '../infra/stack/ports';
import { startTemporalDevServer, type RunningTemporal } from '../infra/stack/temporal-server';
import { startRun, waitRun } from '../cli/runs';
import { languageWorkflowId } from '../workflows/language-run';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { testConfig, tmpDir, uniqueRunId, withCliClient, writeList } from './support/pipeline';

const { History } = proto.temporal.api.history.v1;
const WORKFLOWS = path.join(PROJECT_ROOT, 'workflows', 'index.ts');
const HISTORIES = path.join(PROJECT_ROOT, 'tests', 'histories');

/**
 * Determinism guard. A dedicated Temporal server whose continue-as-new suggestion fires after a few
 * dozen events makes the language workflow continue-as-new mid-stage; the histories of that run are
 * replayed against the current workflow code, and so are the histories committed in tests/histories
 * (recorded from earlier code: a change that breaks running workflows fails here; use patched()).
 */
let temporal: RunningTemporal;
let server: SampleServer;
let workers: RunningWorkers;
const saved = process.env.TEMPORAL_ADDRESS;

beforeAll(async () => {
  const dir = tmpDir('replay');
  temporal = await startTemporalDevServer({
    dbFile: path.join(dir, 'temporal.sqlite'),
    port: await freePort(),
    uiPort: 0,
    headless: true,
    logFile: path.join(dir, 'temporal.log'),
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 },
  });
  process.env.TEMPORAL_ADDRESS = temporal.address;
  server = await startSampleServer();
  workers = await startWorkers(['mella-cpu']);
});
afterAll(async () => {
  await workers?.stop();
  await server?.close();
  await temporal?.stop();
  process.env.TEMPORAL_ADDRESS = saved;
});

describe('workflow determinism', () => {
  it('continues-as-new in a long stage without losing shards, and its histories replay', async () => {
    const rows = [];
    for (let i = 0; i < 30; i++) {
      server.set(`/r/${i}.jpg`, { kind: 'bytes', body: await drawSceneImage('replay', i, 64, 48), contentType: 'image/jpeg' });
      rows.push({ url: server.url(`/r/${i}.jpg`), text: `t${i}` });
    }
    const list = writeList(tmpDir('replay-list'), 'l.jsonl', rows);
    // 30 shards of one record: about 7 events a shard, far past the suggestion threshold of 40.
    const config = testConfig({ stages: ['ingest', 'filter'], inputs: [{ path: list }], ingest: { shardSize: 1, window: 3 } });
    const runId = uniqueRunId('replay');
    await withCliClient(async (c) => {
      await startRun(c, config, { runId, kind: 'manual' });
      const summary = await waitRun(c, runId);
      expect(summary.status).toBe('completed');
      expect(summary.stages.ingest).toEqual({ in: 30, kept: 30, rejected: {} });

      const child = c.client.workflow.getHandle(languageWorkflowId(runId, 'th'));
      const desc = await child.describe();
      expect(desc.runId).not.toBe(desc.raw.workflowExecutionInfo?.firstRunId ?? desc.runId);
      const result = (await child.result()) as { stages: { doneShards: number; in: number }[] };
      expect(result.stages[0]).toMatchObject({ doneShards: 30, in: 30 });
      expect(result.stages[1]).toMatchObject({ doneShards: 30, in: 30 });

      const histories = [
        { workflowId: `mella-run-${runId}`, history: await c.client.workflow.getHandle(`mella-run-${runId}`).fetchHistory() },
        { workflowId: languageWorkflowId(runId, 'th'), history: await child.fetchHistory() },
      ];
      for await (const r of Worker.runReplayHistories({ workflowsPath: WORKFLOWS, replayName: 'fresh' }, histories)) {
        expect(r.error, r.workflowId).toBeUndefined();
      }
      // MELLA_RECORD_HISTORIES=<label> adds `<workflow>.<label>.history.bin`; older files stay, so the
      // code keeps replaying what every earlier version recorded.
      const label = process.env.MELLA_RECORD_HISTORIES;
      if (label) {
        fs.mkdirSync(HISTORIES, { recursive: true });
        // Binary protobuf: exactly what the server sent, independent of JSON conversion rules.
        fs.writeFileSync(path.join(HISTORIES, `mella-run.${label}.history.bin`), History.encode(histories[0]!.history).finish());
        fs.writeFileSync(path.join(HISTORIES, `language-run.${label}.history.bin`), History.encode(histories[1]!.history).finish());
      }
    });
  });

  it('replays the histories recorded from earlier workflow code', async () => {
    const files = fs.existsSync(HISTORIES) ? fs.readdirSync(HISTORIES).filter((f) => f.endsWith('.history.bin')) : [];
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const history = History.decode(fs.readFileSync(path.join(HISTORIES, f)));
      await expect(Worker.runReplayHistory({ workflowsPath: WORKFLOWS, replayName: f }, history), f).resolves.toBeUndefined();
    }
  });
});
