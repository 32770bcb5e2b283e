import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../activities/merge/manifest';
import { startRun, waitRun } from '../cli/runs';
import { reexportVersion } from '../cli/export';
import { startLlmStandin, type LlmStandin } from '../infra/llm-standin/index';
import { buildDemoSet, type DemoSet } from '../infra/sample-site/demo-set';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import type { RunSummary } from '../workflows/types';
import { dbClient, testConfig, tmpDir, uniqueRunId, withCliClient, writeList } from './support/pipeline';

let server: SampleServer;
let workers: RunningWorkers;
let standin: LlmStandin;
let set: DemoSet;
const pool = dbClient();
const saved = { url: process.env.OPENAI_BASE_URL, exports: process.env.MELLA_EXPORT_DIR };
const exportsDir = tmpDir('exports');
const datasetName = `merge-test-${process.pid}`;

beforeAll(async () => {
  server = await startSampleServer();
  standin = await startLlmStandin({ port: 0 });
  process.env.OPENAI_BASE_URL = standin.baseUrl;
  process.env.MELLA_EXPORT_DIR = exportsDir;
  set = await buildDemoSet(server, tmpDir('merge'), ['th', 'cs']);
  workers = await startWorkers(['mella-cpu', 'mella-llm']);
});
afterAll(async () => {
  await workers?.stop();
  await server?.close();
  await standin?.close();
  await pool.end();
  process.env.OPENAI_BASE_URL = saved.url;
  process.env.MELLA_EXPORT_DIR = saved.exports;
});

const config = (list: string) =>
  testConfig({
    languages: ['th', 'cs'],
    stages: ['ingest', 'filter', 'caption', 'translate', 'merge'],
    inputs: [{ path: list }],
    merge: { name: datasetName, split: { fractions: { train: 0.6, validation: 0.2, test: 0.2 } } },
  });

async function run(list: string): Promise<RunSummary> {
  const runId = uniqueRunId('merge');
  return withCliClient(async (c) => {
    await startRun(c, config(list), { runId, kind: 'manual' });
    return waitRun(c, runId);
  });
}

describe('merge stage', () => {
  let first: RunSummary;

  it('exports every kept record (D_know) and translation (D_ling) as a dataset version', async () => {
    first = await run(set.listFile);
    expect(first.status).toBe('completed');
    const d = first.dataset!;
    expect(d.versionId).toBe(`v-${first.runId}`);
    expect(d.parentId).toBeNull();
    for (const lang of ['th', 'cs']) {
      const know = Object.values(d.counts.byLang[lang]!).reduce((n, s) => n + (s.know ?? 0), 0);
      const ling = Object.values(d.counts.byLang[lang]!).reduce((n, s) => n + (s.ling ?? 0), 0);
      expect(know).toBe(first.languages[lang]!.filter!.kept);
      expect(ling).toBe(first.languages[lang]!.translate!.kept);
    }
    expect(d.standinSamples).toBe(d.counts.bySource.ling);
    expect(first.stages.merge).toEqual({ in: d.counts.total, kept: d.counts.total, rejected: {} });

    // The formats are where the card and dataset_info say, and the split never divides one picture.
    for (const f of ['dataset_info.json', 'manifest.jsonl', 'card.html', 'card.md', 'SHA256SUMS']) expect(fs.existsSync(path.join(d.dir, f)), f).toBe(true);
    const info = JSON.parse(fs.readFileSync(path.join(d.dir, 'dataset_info.json'), 'utf8'));
    for (const entry of Object.values(info) as { file_name: string }[]) {
      const records = JSON.parse(fs.readFileSync(path.join(d.dir, entry.file_name), 'utf8')) as { messages: { content: string }[]; images: string[] }[];
      for (const r of records) {
        expect((r.messages[0]!.content.match(/<image>/g) ?? []).length).toBe(r.images.length);
        for (const img of r.images) expect(fs.existsSync(path.join(d.dir, img))).toBe(true);
      }
    }
    const splitOf = new Map<string, string>();
    let lines = 0;
    for await (const line of readManifest(d.dir)) {
      lines++;
      const group = String((line as { groupKey?: string }).groupKey ?? '');
      const split = String((line as { split?: string }).split);
      expect(splitOf.get(group) ?? split, group).toBe(split);
      splitOf.set(group, split);
    }
    expect(lines).toBe(d.counts.total);
    expect(fs.readFileSync(path.join(d.dir, 'card.md'), 'utf8')).toMatch(/STAND-IN OUTPUT/);
  });

  it('re-exports a version byte for byte from PostgreSQL', async () => {
    const again = await reexportVersion(first.dataset!.versionId, path.join(tmpDir('reexport'), 'copy'));
    expect(again).toMatchObject({ same: true, contentId: first.dataset!.contentId });
  });

  it('records the next version of the same dataset with its parent and the exact diff', async () => {
    // The same list without the cs records: every cs sample is removed, th is unchanged.
    const lines = fs.readFileSync(set.listFile, 'utf8').split('\n').filter((l) => l && !l.includes('"lang":"cs"'));
    const list = writeList(tmpDir('merge-refresh'), 'list.jsonl', lines);
    const second = await run(list);
    expect(second.status).toBe('completed');
    const d = second.dataset!;
    expect(d.parentId).toBe(first.dataset!.versionId);
    const diff = d.diff as { added: number; removed: number; changed: number; byLang: Record<string, Record<string, { added: number; removed: number }>> };
    const csBefore = first.dataset!.counts.byLang.cs!;
    const csTotal = Object.values(csBefore).reduce((n, s) => n + (s.know ?? 0) + (s.ling ?? 0), 0);
    expect(diff).toMatchObject({ added: 0, removed: csTotal, changed: 0 });
    expect(diff.byLang.th ?? {}).toEqual({});
    const { rows } = await pool.query('select count(*)::int as n from dataset_versions where name = $1', [datasetName]);
    expect(rows[0].n).toBe(2);
  });
});
