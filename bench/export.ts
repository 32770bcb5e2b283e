/**
 * bench:export: the merge stage's export (activities/merge/export.ts) on synthetic samples: a few hundred
 * distinct small photo-like images (160 px, noisy JPEG/PNG/WebP, a few KiB each, as the filter stage's
 * training copies are after resizing, only smaller) shared by N samples over the eight default languages
 * and three sources. Every run is a fresh child process that streams its samples from a generator (no
 * array of samples anywhere) and reports its wall time, the time spent in each writer, and its peak RSS
 * (VmHWM). Runs, at N = BENCH_SMALL and N = BENCH_LARGE:
 *   - all formats + the card, in one pass (what the merge stage runs);
 *   - each format on its own (with the manifest, which every export writes), and the manifest alone.
 * Last line: RESULT export ratio=<peak RSS of "all" at BENCH_LARGE / at BENCH_SMALL> goal=<=1.5
 *
 * Env: BENCH_SMALL (default 10000), BENCH_LARGE (100000), BENCH_IMAGES (300), BENCH_SHARD (1000),
 * BENCH_KEEP (any value: keep the work folder and print it).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportDataset, type ExportFormat } from '../activities/merge/export';
import { makeSyntheticImages, syntheticSample, type SyntheticImage } from '../activities/merge/synthetic';
import { tsEntryArgs } from '../infra/node-process';
import { PROJECT_ROOT } from '../infra/paths';

const SMALL = Number(process.env.BENCH_SMALL ?? 10_000);
const LARGE = Number(process.env.BENCH_LARGE ?? 100_000);
const IMAGES = Number(process.env.BENCH_IMAGES ?? 300);
const SHARD = Number(process.env.BENCH_SHARD ?? 1000);
const LANGS = ['ar', 'cs', 'hu', 'ko', 'ru', 'sr', 'th', 'vi'];

interface RunSpec {
  n: number;
  label: string;
  formats: ExportFormat[];
  card: boolean;
  imagesFile: string;
  dir: string;
}

interface RunResult {
  seconds: number;
  peakRss: number;
  timings: Record<string, number>;
  total: number;
  bytes: number;
  files: number;
}

function peakRss(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

/** The child: one export, then one JSON line on stdout. */
async function child(spec: RunSpec) {
  const images = JSON.parse(fs.readFileSync(spec.imagesFile, 'utf8')) as SyntheticImage[];
  function* samples() {
    for (let i = 0; i < spec.n; i++) yield syntheticSample(i, images, { langs: LANGS });
  }
  const t0 = performance.now();
  const r = await exportDataset(samples(), {
    dir: spec.dir,
    formats: spec.formats,
    shardSize: SHARD,
    card: spec.card ? { title: 'bench:export', galleryPerLanguage: 6 } : false,
  });
  const seconds = (performance.now() - t0) / 1000;
  const result: RunResult = {
    seconds,
    peakRss: peakRss(),
    timings: r.timings,
    total: r.counts.total,
    bytes: r.files.reduce((a, f) => a + f.bytes, 0),
    files: r.files.length,
  };
  console.log(JSON.stringify(result));
}

function runChild(spec: RunSpec): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, tsEntryArgs('bench/export.ts', ['--child', JSON.stringify(spec)]), { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`export child (${spec.label}, ${spec.n}) exited ${code}: ${out.slice(-500)}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as RunResult);
    });
  });
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-bench-export-'));
  const log = (m: string) => console.log(m);
  try {
    const images = await makeSyntheticImages(path.join(work, 'blobs'), IMAGES, { side: 160, noise: true });
    const imagesFile = path.join(work, 'images.json');
    fs.writeFileSync(imagesFile, JSON.stringify(images));
    const avg = images.reduce((a, i) => a + fs.statSync(i.path).size, 0) / images.length;
    log(`bench:export on ${os.cpus().length} cores; ${IMAGES} distinct images (160 px, ${(avg / 1024).toFixed(1)} KiB on average), ${LANGS.length} languages, 3 sources; WebDataset shards of ${SHARD}`);
    const configs: { label: string; formats: ExportFormat[]; card: boolean }[] = [
      { label: 'all + card', formats: ['llamafactory', 'ms-swift', 'webdataset'], card: true },
      { label: 'manifest only', formats: [], card: false },
      { label: 'llamafactory', formats: ['llamafactory'], card: false },
      { label: 'ms-swift', formats: ['ms-swift'], card: false },
      { label: 'webdataset', formats: ['webdataset'], card: false },
    ];
    const results = new Map<string, RunResult>();
    for (const n of [SMALL, LARGE]) {
      for (const c of configs) {
        const dir = path.join(work, `export-${n}-${c.label.replace(/\W+/g, '-')}`);
        const r = await runChild({ n, label: c.label, formats: c.formats, card: c.card, imagesFile, dir });
        if (r.total !== n) throw new Error(`${c.label} at ${n}: exported ${r.total} of ${n}`);
        results.set(`${n} ${c.label}`, r);
        log(
          `  ${String(n).padStart(7)} ${c.label.padEnd(14)} ${r.seconds.toFixed(2).padStart(7)} s  ${(n / r.seconds).toFixed(0).padStart(6)} samples/s  peak RSS ${mib(r.peakRss).padStart(8)}  ${mib(r.bytes).padStart(7)} in data files`,
        );
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    for (const n of [SMALL, LARGE]) {
      const all = results.get(`${n} all + card`)!;
      const base = results.get(`${n} manifest only`)!;
      const t = all.timings;
      log(`time per format at ${n} (ms inside the one-pass "all" run): ${['images', 'manifest', 'llamafactory', 'ms-swift', 'webdataset', 'card', 'validate', 'checksums'].map((k) => `${k} ${t[k] ?? 0}`).join(', ')}; total ${t.total}`);
      log(
        `time per format at ${n} (separate runs, minus the manifest-only run of ${base.seconds.toFixed(2)} s): ${['llamafactory', 'ms-swift', 'webdataset'].map((f) => `${f} +${(results.get(`${n} ${f}`)!.seconds - base.seconds).toFixed(2)} s`).join(', ')}`,
      );
    }
    const small = results.get(`${SMALL} all + card`)!;
    const large = results.get(`${LARGE} all + card`)!;
    const ratio = large.peakRss / small.peakRss;
    log(`peak RSS (all formats + card): ${mib(small.peakRss)} at ${SMALL} samples, ${mib(large.peakRss)} at ${LARGE} samples: ratio ${ratio.toFixed(3)} (goal <= 1.5)`);
    if (process.env.BENCH_KEEP) log(`work folder kept: ${work}`);
    console.log(`RESULT export ratio=${ratio.toFixed(3)} goal=<=1.5`);
  } finally {
    if (!process.env.BENCH_KEEP) fs.rmSync(work, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(JSON.parse(process.argv[at + 1]!) as RunSpec);
else await main();
