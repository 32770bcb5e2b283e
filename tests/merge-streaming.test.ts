/**
 * Streaming: an export of 20,000 synthetic samples (40 small images shared between them, every format
 * and the card) must not hold the samples it has written. The heap (plus external memory) after a full
 * garbage collection is compared at sample 2,000 and at the end; the bound is loose on purpose (the
 * benchmark, bench/export.ts, measures peak RSS at 10,000 and 100,000 samples in fresh processes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { exportDataset } from '../activities/merge/export';
import type { Sample } from '../activities/merge/sample';
import { makeSyntheticImages, syntheticSample } from '../activities/merge/synthetic';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const used = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-merge-stream-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('streaming export', () => {
  it('exports 20,000 samples without memory growing with them', async () => {
    const images = await makeSyntheticImages(path.join(root, 'blobs'), 40);
    const N = 20_000;
    const marks: Record<string, number> = {};
    async function* samples(): AsyncGenerator<Sample> {
      for (let i = 0; i < N; i++) {
        if (i === 2_000) marks.early = used();
        yield syntheticSample(i, images, { langs: ['ar', 'cs', 'hu', 'ko', 'ru', 'sr', 'th', 'vi'] });
      }
      marks.late = used();
    }
    const r = await exportDataset(samples(), { dir: path.join(root, 'export'), shardSize: 500 });
    expect(r.counts.total).toBe(N);
    const manifest = fs.statSync(path.join(r.dir, 'manifest.jsonl')).size;
    const growth = marks.late! - marks.early!;
    console.log(
      `merge-streaming: ${N} samples, ${(manifest / 2 ** 20).toFixed(1)} MiB of manifest; heap+external ${(marks.early! / 2 ** 20).toFixed(1)} MiB at 2,000, ${(marks.late! / 2 ** 20).toFixed(1)} MiB at ${N} (growth ${(growth / 2 ** 20).toFixed(1)} MiB); timings ${JSON.stringify(r.timings)}`,
    );
    // holding the 18,000 later samples (or their lines) would take well over their manifest's size
    expect(manifest).toBeGreaterThan(15 * 2 ** 20);
    expect(growth).toBeLessThan(8 * 2 ** 20);
  });
});
