/**
 * bench:filter: the filter stage's per-image work (`judgeImage`, activities/filter/stage/shard.ts: the
 * default image operator chain for a language, i.e. `decodable` on bytes ingest validated (header
 * checks, one decode to 1024 px, thumbnail, pixel statistics and pHash), then animated, min-side,
 * aspect-ratio, uniform-content, bytes-per-pixel, and for a kept image the normalized training copy
 * (1024 px, JPEG q95, encoded from the same decode) put into the blob store) against the bare baseline: plain sharp decode + resize of the same bytes to the same
 * longer side (1024, never enlarged) + JPEG q95, in the same run, at the same concurrency (one image
 * in flight per core).
 *
 * Images: the fixture photographs (../shared/fixtures/real/images/photo: JPEG, WebP, AVIF) replicated
 * to N, each copy made unique (own sha256) without touching its pixels: a JPEG gets a comment segment
 * (COM) after SOI, a WebP an extra RIFF chunk (RIFF size fixed), an AVIF a top-level `free` box at the
 * end. Copies are made on the fly from the six originals, so no list of N buffers grows with N. Every
 * variant kind is checked once: same verdict, size and pHash as its original. Without the fixtures the
 * bench says so and uses generated photo-like images (JPEG/WebP at several sizes) instead.
 *
 * Every measured run is a fresh child process (wall time, CPU time, peak RSS = VmHWM):
 *   - chain at N and bare at N (ROUNDS rounds, alternating; medians compared);
 *   - chain and bare at BENCH_SMALL, for the peak-RSS comparison with N.
 * Then a short sequential breakdown (one image at a time) of where the chain spends its time
 * (bench/filter-profile.ts splits `decodable` further).
 * Last line: RESULT filter ratio=<chain time / bare time at N> goal=<=1.25
 *
 * Env: BENCH_IMAGES (default 5000), BENCH_SMALL (1000), BENCH_ROUNDS (1), BENCH_LANG (cs),
 * BENCH_CONCURRENCY (number of cores), BENCH_BREAKDOWN (images per fixture in the breakdown, 5; 0: skip).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { tsEntryArgs } from '../infra/node-process';
import { PROJECT_ROOT } from '../infra/paths';
import { variant } from './filter-images';

const N = Number(process.env.BENCH_IMAGES ?? 5_000);
const SMALL = Number(process.env.BENCH_SMALL ?? 1_000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1));
const LANG = process.env.BENCH_LANG ?? 'cs';
const CORES = os.cpus().length;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? CORES);
const BREAKDOWN = Number(process.env.BENCH_BREAKDOWN ?? 5);
const MAX_SIDE = 1024;
const QUALITY = 95;
const PHOTOS = path.resolve(PROJECT_ROOT, '..', 'shared', 'fixtures', 'real', 'images', 'photo');

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

/** Photo-like images for a machine without the fixtures: gradients and noise, JPEG and WebP. */
async function generatedPhotos(): Promise<{ name: string; bytes: Buffer }[]> {
  const sizes: [number, number, 'jpeg' | 'webp'][] = [[640, 480, 'jpeg'], [1600, 1200, 'jpeg'], [1200, 800, 'webp'], [400, 300, 'jpeg'], [2048, 1365, 'jpeg'], [800, 800, 'webp']];
  return Promise.all(
    sizes.map(async ([w, h, f], k) => {
      const img = sharp({ create: { width: w, height: h, channels: 3, background: { r: (k * 70) % 256, g: (k * 40 + 60) % 256, b: 128 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).blur(2);
      const bytes = f === 'jpeg' ? await img.jpeg({ quality: 85 }).toBuffer() : await img.webp({ quality: 80 }).toBuffer();
      return { name: `generated-${w}x${h}.${f}`, bytes };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Child: one measured run
// ---------------------------------------------------------------------------------------------

interface RunSpec {
  mode: 'chain' | 'bare';
  n: number;
  basesFile: string;
  blobDir: string;
}

interface RunResult {
  seconds: number;
  cpuSeconds: number;
  peakRss: number;
  kept: number;
  rejected: Record<string, number>;
  outBytes: number;
}

function peakRss(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

const bare = (bytes: Buffer) => sharp(bytes).resize(MAX_SIDE, MAX_SIDE, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: QUALITY }).toBuffer();

async function child(spec: RunSpec) {
  process.env.MELLA_BLOB_DIR = spec.blobDir; // read by blobs() on first use
  const { judgeImage } = await import('../activities/filter/stage/shard');
  const { resolveFilterPipeline } = await import('../activities/filter/pipeline');
  const { DEFAULT_FILTER_CONFIG } = await import('../activities/filter/config');
  const pipeline = resolveFilterPipeline(DEFAULT_FILTER_CONFIG, LANG);
  const bases = (JSON.parse(fs.readFileSync(spec.basesFile, 'utf8')) as string[]).map((b) => Buffer.from(b, 'base64'));
  const rejected: Record<string, number> = {};
  let kept = 0;
  let outBytes = 0;
  const one = async (i: number) => {
    const bytes = variant(bases[i % bases.length]!, i);
    if (spec.mode === 'bare') {
      outBytes += (await bare(bytes)).length;
      kept++;
      return;
    }
    const j = await judgeImage(String(i), bytes, pipeline);
    if (j.kept) kept++;
    else rejected[j.rejection!.reason] = (rejected[j.rejection!.reason] ?? 0) + 1;
  };
  // Warm-up (JIT, sharp's first pipelines): one copy of each original, not counted.
  for (let i = 0; i < bases.length; i++) await (spec.mode === 'bare' ? bare(bases[i]!) : judgeImage('warm-up', bases[i]!, pipeline));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < spec.n) await one(next++);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const result: RunResult = { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRss: peakRss(), kept, rejected, outBytes };
  console.log(JSON.stringify(result));
}

function runChild(spec: RunSpec): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, tsEntryArgs('bench/filter.ts', ['--child', JSON.stringify(spec)]), { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`filter child (${spec.mode}, ${spec.n}) exited ${code}: ${out.slice(-500)}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as RunResult);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Breakdown: one image at a time, each step timed on its own
// ---------------------------------------------------------------------------------------------

async function breakdown(bases: { name: string; bytes: Buffer }[], blobDir: string, log: (m: string) => void) {
  process.env.MELLA_BLOB_DIR = blobDir;
  const { validateImage } = await import('../activities/ingest/validate-image');
  const { decodeImage, decodableConfigSchema } = await import('../activities/filter/image/decodable');
  const { encodeTrainingCopy } = await import('../activities/filter/image/normalize');
  const { judgeImage } = await import('../activities/filter/stage/shard');
  const { resolveFilterPipeline } = await import('../activities/filter/pipeline');
  const { DEFAULT_FILTER_CONFIG } = await import('../activities/filter/config');
  const { blobs } = await import('../activities/shared/blobs');
  const pipeline = resolveFilterPipeline(DEFAULT_FILTER_CONFIG, LANG);
  const decodeConfig = pipeline.decode!.config as ReturnType<typeof decodableConfigSchema.parse>;
  const steps = ['decodable (stage path)', 'copy (training copy from its pixels)', 'blob put', 'judgeImage (all)', 'bare', 'validator (ingest, not repeated)'] as const;
  const totals: Record<string, number> = Object.fromEntries(steps.map((s) => [s, 0]));
  const time = async <T>(step: (typeof steps)[number], f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    totals[step]! += performance.now() - t0;
    return r;
  };
  log(`breakdown: one image at a time, ${BREAKDOWN} copies of each original, mean ms per image:`);
  log(`  ${'image'.padEnd(26)} ${steps.map((s) => s.split(' ')[0]!.padStart(10)).join(' ')}`);
  let count = 0;
  for (const { name, bytes } of bases) {
    const per: Record<string, number> = Object.fromEntries(steps.map((s) => [s, 0]));
    for (const s of steps) totals[s] = 0;
    await judgeImage('warm-up', bytes, pipeline);
    for (let k = 0; k < BREAKDOWN; k++) {
      const b = variant(bytes, 1_000_000 + k);
      const d = await time('decodable (stage path)', () =>
        decodeImage(b, decodeConfig, { validatedBy: 'ingest', keepRaster: true, decodeSide: pipeline.normalize.maxSide }),
      );
      const raster = d.keep ? d.value?.raster : undefined;
      const copy = raster ? await time('copy (training copy from its pixels)', () => encodeTrainingCopy(raster, pipeline.normalize)) : undefined;
      if (copy?.ok) await time('blob put', () => blobs().put(copy.image.bytes));
      await time('judgeImage (all)', () => judgeImage('b', b, pipeline));
      await time('bare', () => bare(b));
      await time('validator (ingest, not repeated)', () => validateImage(b, { limitInputPixels: decodeConfig.limitInputPixels }));
    }
    for (const s of steps) per[s] = totals[s]! / BREAKDOWN;
    count++;
    log(`  ${name.padEnd(26)} ${steps.map((s) => per[s]!.toFixed(1).padStart(10)).join(' ')}`);
  }
  log(
    `  (decodable = header checks + one ${pipeline.normalize.maxSide} px decode + ${decodeConfig.thumbnailSide} px thumbnail + pixel statistics + pHash; the copy is made only for kept images in judgeImage; validator = the full decode ingest made, for scale)`,
  );
  return count;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

function median<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
}

async function main() {
  const log = (m: string) => console.log(m);
  const shm = '/dev/shm';
  const tmpRoot = fs.existsSync(shm) && fs.statSync(shm).isDirectory() ? shm : os.tmpdir();
  const work = fs.mkdtempSync(path.join(tmpRoot, 'mella-bench-filter-'));
  try {
    let bases: { name: string; bytes: Buffer }[];
    if (fs.existsSync(PHOTOS)) {
      bases = fs.readdirSync(PHOTOS).sort().map((f) => ({ name: f, bytes: fs.readFileSync(path.join(PHOTOS, f)) }));
    } else {
      log(`fixture photos absent (${PHOTOS}): using generated photo-like images instead`);
      bases = await generatedPhotos();
    }
    // Check the variants once: unique bytes, same verdict and measurements as the original.
    const { judgeImage } = await import('../activities/filter/stage/shard');
    const { resolveFilterPipeline } = await import('../activities/filter/pipeline');
    const { DEFAULT_FILTER_CONFIG } = await import('../activities/filter/config');
    process.env.MELLA_BLOB_DIR = path.join(work, 'blobs-check');
    const pipeline = resolveFilterPipeline(DEFAULT_FILTER_CONFIG, LANG);
    log(`bench:filter on ${CORES} cores (${os.cpus()[0]?.model ?? 'cpu'}), node ${process.versions.node}, sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}; ${CONCURRENCY} images in flight; language ${LANG}; blob store in ${tmpRoot}`);
    log(`originals (${bases.length}), replicated to ${N}:`);
    const shas = new Set<string>();
    for (const { name, bytes } of bases) {
      const meta = await sharp(bytes).metadata();
      const orig = await judgeImage('o', bytes, pipeline);
      for (const i of [0, 1, N - 1]) {
        const v = variant(bytes, i);
        shas.add(createHash('sha256').update(v).digest('hex'));
        const j = await judgeImage('v', v, pipeline);
        const same = j.kept === orig.kept && j.rejection?.reason === orig.rejection?.reason && j.phash === orig.phash && j.width === orig.width && j.train?.sha256 === orig.train?.sha256;
        if (!same) throw new Error(`variant ${i} of ${name} is judged differently: ${JSON.stringify(j)} vs ${JSON.stringify(orig)}`);
      }
      log(
        `  ${name.padEnd(26)} ${String(meta.format).padEnd(5)} ${`${meta.width}x${meta.height}`.padStart(10)}${meta.pages ? ` x${meta.pages} frames` : ''} ${(bytes.length / 1024).toFixed(0).padStart(4)} KiB  chain: ${orig.kept ? `kept (training copy ${orig.train!.width}x${orig.train!.height})` : `rejected ${orig.rejection!.reason}`}`,
      );
    }
    if (shas.size !== bases.length * 3) throw new Error('bench:filter: variants are not unique');
    log('  every variant kind checked: own sha256, same verdict, size, pHash and training copy as its original');
    const basesFile = path.join(work, 'bases.json');
    fs.writeFileSync(basesFile, JSON.stringify(bases.map((b) => b.bytes.toString('base64'))));

    const spec = (mode: RunSpec['mode'], n: number, label: string): RunSpec => ({ mode, n, basesFile, blobDir: path.join(work, `blobs-${label}`) });
    const chains: RunResult[] = [];
    const bares: RunResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      bares.push(await runChild(spec('bare', N, `bare-${round}`)));
      chains.push(await runChild(spec('chain', N, `chain-${round}`)));
      log(`round ${round + 1}/${ROUNDS} at ${N} images: bare ${bares.at(-1)!.seconds.toFixed(2)} s, chain ${chains.at(-1)!.seconds.toFixed(2)} s`);
      fs.rmSync(path.join(work, `blobs-chain-${round}`), { recursive: true, force: true });
    }
    const small = await runChild(spec('chain', SMALL, 'chain-small'));
    const smallBare = await runChild(spec('bare', SMALL, 'bare-small'));
    const chain = median(chains, (r) => r.seconds);
    const base = median(bares, (r) => r.seconds);
    const row = (label: string, r: RunResult, n: number) =>
      log(
        `  ${label.padEnd(6)} ${String(n).padStart(6)} images ${r.seconds.toFixed(2).padStart(7)} s  ${(n / r.seconds).toFixed(1).padStart(7)} images/s  ${(n / r.seconds / CORES).toFixed(1).padStart(6)} images/s per core  CPU ${((r.cpuSeconds / n) * 1000).toFixed(1).padStart(5)} ms/image  peak RSS ${mib(r.peakRss).padStart(8)}`,
      );
    log(`runs (fresh child processes; ${CONCURRENCY} in flight):`);
    row('bare', base, N);
    row('chain', chain, N);
    row('bare', smallBare, SMALL);
    row('chain', small, SMALL);
    log(`chain verdicts at ${N}: kept ${chain.kept}, rejected ${JSON.stringify(chain.rejected)}`);
    const rssRatio = Math.max(...chains.map((r) => r.peakRss)) / small.peakRss;
    log(`peak RSS of the chain: ${mib(small.peakRss)} at ${SMALL} images, ${mib(Math.max(...chains.map((r) => r.peakRss)))} at ${N}: ratio ${rssRatio.toFixed(2)} (flat: ~1); bare: ${mib(smallBare.peakRss)} / ${mib(Math.max(...bares.map((r) => r.peakRss)))}`);
    const ratio = chain.seconds / base.seconds;
    log(`chain time / bare time at ${N} images: ${ratio.toFixed(3)} (goal <= 1.25); CPU time ratio ${(chain.cpuSeconds / base.cpuSeconds).toFixed(2)}`);
    if (BREAKDOWN > 0) await breakdown(bases, path.join(work, 'blobs-breakdown'), log);
    console.log(`RESULT filter ratio=${ratio.toFixed(3)} goal=<=1.25`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(JSON.parse(process.argv[at + 1]!) as RunSpec);
else await main();
