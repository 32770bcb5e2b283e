/**
 * Diff of two dataset versions (two exports): the ids added, removed and changed per language and source
 * must be exactly the ones the second version's input added, dropped and edited, both in memory and
 * through the partitioned path that large manifests take.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffExports, diffManifests, type IdsByLangSource } from '../activities/merge/diff';
import { exportDataset } from '../activities/merge/export';
import type { Sample } from '../activities/merge/sample';
import { makeSyntheticImages, syntheticSamples } from '../activities/merge/synthetic';

let root: string;
let v1: string;
let v2: string;
const expected = { added: [] as Sample[], removed: [] as Sample[], changed: [] as Sample[] };

function group(list: Sample[]): IdsByLangSource {
  const out: IdsByLangSource = {};
  for (const s of list) ((out[s.lang] ??= {})[s.source] ??= []).push(s.id);
  for (const lang of Object.keys(out)) for (const ids of Object.values(out[lang]!)) ids!.sort();
  return out;
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-merge-diff-'));
  const images = await makeSyntheticImages(path.join(root, 'blobs'), 20);
  const base = [...syntheticSamples(1500, images, { langs: ['th', 'vi', 'ko'] })];
  const next: Sample[] = [];
  base.forEach((s, i) => {
    if (i % 37 === 0) expected.removed.push(s); // dropped by a refreshed filter
    else if (i % 53 === 0) {
      const edited = { ...s, answer: `${s.answer} (revised)` }; // a re-translation
      expected.changed.push(edited);
      next.push(edited);
    } else if (i % 61 === 0) {
      next.push({ ...s, lineage: { ...s.lineage, crawledAt: '2026-03-01T00:00:00.000Z' } }); // re-crawled: lineage only
    } else next.push(s);
  });
  const fresh = [...syntheticSamples(120, images, { langs: ['th', 'vi', 'ko', 'hu'], start: 5000, tag: 'new' })];
  expected.added.push(...fresh);
  next.push(...fresh);
  v1 = (await exportDataset(base, { dir: path.join(root, 'v1'), card: false, formats: [] })).dir;
  v2 = (await exportDataset(next, { dir: path.join(root, 'v2'), card: false, formats: [] })).dir;
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('diff between two versions', () => {
  it('is exact per language and source', async () => {
    const d = await diffExports(v1, v2);
    expect(d.added).toEqual(group(expected.added));
    expect(d.removed).toEqual(group(expected.removed));
    expect(d.changed).toEqual(group(expected.changed));
    expect(d.counts.added).toBe(expected.added.length);
    expect(d.counts.removed).toBe(expected.removed.length);
    expect(d.counts.changed).toBe(expected.changed.length);
    expect(d.counts.unchanged).toBe(1500 - expected.removed.length - expected.changed.length);
    expect(d.counts.byLang.hu).toEqual(Object.fromEntries(Object.entries(group(expected.added).hu!).map(([s, ids]) => [s, { added: ids!.length, removed: 0, changed: 0 }])));
    expect(Object.keys(d.added)).toEqual(['hu', 'ko', 'th', 'vi']);
  });

  it('gives the same answer through partition files (large manifests) and in reverse', async () => {
    const inMemory = await diffManifests(v1, v2);
    const partitioned = await diffManifests(path.join(v1, 'manifest.jsonl'), path.join(v2, 'manifest.jsonl'), { partitionBytes: 64 * 1024, tmpDir: root });
    expect(partitioned).toEqual(inMemory);
    expect(fs.readdirSync(root).filter((f) => f.startsWith('mella-diff-'))).toEqual([]);
    const reverse = await diffManifests(v2, v1);
    expect(reverse.added).toEqual(inMemory.removed);
    expect(reverse.removed).toEqual(inMemory.added);
    expect(reverse.counts.changed).toBe(inMemory.counts.changed);
  });

  it('finds nothing between an export and itself', async () => {
    const d = await diffExports(v1, v1);
    expect(d.counts).toMatchObject({ added: 0, removed: 0, changed: 0, unchanged: 1500 });
    expect(d.added).toEqual({});
  });
});
