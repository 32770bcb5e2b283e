/**
 * One export of the dataset: a single pass over the samples writes every format at once (manifest,
 * LLaMA-Factory, ms-swift, WebDataset), places the images, gathers the card's statistics, and publishes
 * the directory atomically. Everything is written into `<dir>.tmp-<random>` beside the target and
 * renamed to `<dir>` only when all files are closed and validated; a failure removes the temporary
 * directory and leaves nothing under `<dir>`. An export directory is immutable: exporting into an
 * existing one is an error.
 *
 *   <dir>/
 *     manifest.jsonl              one line per sample, full lineage (always written)
 *     dataset_info.json           LLaMA-Factory registry (dataset_dir = <dir>)
 *     llamafactory/<name>_{train,validation,test}.json
 *     ms-swift/{train,validation,test}.jsonl
 *     webdataset/<name>-<split>-000000.tar ...
 *     images/<sha256[0:2]>/<sha256>.<ext>
 *     rejected.jsonl              samples the export refused, with the reason
 *     card.md, card.html          the dataset card (unless card: false)
 *     export.json                 counts, options, files with sha256
 *     SHA256SUMS                  every file (images included), `sha256sum -c` format
 *
 * Determinism: the same samples in the same order with the same options give byte-identical files
 * (keys sorted, no timestamps, tar mtimes 0); the order is the caller's (e.g. ORDER BY id) and is kept.
 * `contentId` is the sha256 of SHA256SUMS: a version id that changes when any byte does.
 * Memory does not grow with the number of samples: writers stream through 1 MiB buffers, the images
 * directory itself remembers which images are placed, the split leak guard is a fixed-size Bloom filter,
 * and the card keeps bounded statistics.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { renderCardHtml, renderCardMarkdown, type CardBuildInfo } from './card';
import { CardStatsCollector, type CardStats } from './card-stats';
import { countSample, emptyCounts, type ExportCounts } from './counts';
import { ImageMismatchError, ImageMissingError, ImagePlacer, type ImageMode } from './images';
import { INSTRUCTION_TEMPLATES_VERSION } from './instructions';
import { canonicalJson } from './json';
import { LeakGuard } from './leak-guard';
import { ExportValidationError, LlamaFactoryWriter, llamaFactoryFile, validateSharegptFile, type ValidationProblem } from './llamafactory';
import { MANIFEST_FILE, ManifestWriter, readManifest } from './manifest';
import { mixKeeps, type MixPlan } from './mix';
import { MsSwiftWriter, msSwiftFile } from './ms-swift';
import { checkSample, SPLITS, type Sample, type SampleRejection, type SplitName } from './sample';
import { FileSink, type WrittenFile } from './sink';
import { splitConfigSchema, splitOf, type SplitConfig } from './split';
import { DEFAULT_SHARD_SIZE, WebDatasetWriter } from './webdataset';
import type { ExportRecord, FormatWriter } from './writer';

export const EXPORT_FORMATS = ['llamafactory', 'ms-swift', 'webdataset'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_FORMAT_VERSION = 1;

export interface ExportCardOptions {
  title?: string;
  version?: { id?: string; parent?: string | null };
  /** Stage counts from the pipeline (in, kept, rejected by reason), overall and per language. */
  stats?: Pick<CardStats, 'stages' | 'perLanguage'>;
  build?: CardBuildInfo;
  galleryPerLanguage?: number;
  thumbnailSide?: number;
  topDomains?: number;
  /** Where a sample came from, for "sources per domain"; default the registrable domain of `lineage.pageUrl`. */
  domainOf?: (s: Sample) => string | undefined;
}

export interface ExportOptions {
  /** The export directory to create (it must not exist). */
  dir: string;
  /** Prefix of the LLaMA-Factory dataset names and WebDataset shards. Default `mella`. */
  name?: string;
  /** Default all three; the manifest is always written. */
  formats?: readonly ExportFormat[];
  split?: Partial<SplitConfig>;
  /** A plan from `planMix`; without one every sample is kept. */
  mix?: MixPlan;
  /** WebDataset samples per shard (default 1000). */
  shardSize?: number;
  /** `link` (default): hard links from the blob store where possible, copies otherwise. */
  imageMode?: ImageMode;
  /** Hash every image placed and compare with the sample's sha256 (default true). */
  verifyImages?: boolean;
  /** log2 of the bits of each split's Bloom filter in the leak guard (default 26: 8 MiB per split). */
  leakGuardBits?: number;
  /** The dataset card; `false` for none. */
  card?: ExportCardOptions | false;
  /** Called every `progressEvery` samples (default 1000), e.g. to heartbeat. */
  onProgress?: (p: { seen: number; exported: number }) => void | Promise<void>;
  progressEvery?: number;
}

export interface ExportResult {
  dir: string;
  name: string;
  /** sha256 of SHA256SUMS. */
  contentId: string;
  formats: ExportFormat[];
  /** Samples read from the input. */
  seen: number;
  counts: ExportCounts;
  /** Samples refused by the export, by reason (each one in rejected.jsonl). */
  rejected: Record<string, number>;
  /** Samples the mixing plan left out. */
  mixedOut: number;
  images: { count: number; bytes: number; linked: number; copied: number };
  standinSamples: number;
  /** Every file but the images, sorted by path. */
  files: WrittenFile[];
  /** Milliseconds spent per part (writers, images, validation, card, checksums) and in all. */
  timings: Record<string, number>;
}

export class ExportExistsError extends Error {}

export class SplitLeakError extends Error {
  constructor(readonly leaks: { sha256: string; splits: SplitName[]; sampleIds: string[] }[]) {
    super(
      `${leaks.length} image(s) on more than one side of the split (samples of one image with different group keys), e.g. ${leaks
        .slice(0, 3)
        .map((l) => `${l.sha256.slice(0, 12)} in ${l.splits.join('+')} (${l.sampleIds.join(', ')})`)
        .join('; ')}`,
    );
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

async function exists(p: string) {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

class Timer {
  readonly ms: Record<string, number> = {};
  async time<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.ms[key] = (this.ms[key] ?? 0) + performance.now() - t0;
    }
  }
}

/** Writes SHA256SUMS: the given files and every image, sorted by path, `<sha256>  <path>` per line. */
async function writeChecksums(root: string, files: WrittenFile[]): Promise<WrittenFile> {
  const sink = await FileSink.open(root, 'SHA256SUMS');
  const others = [...files].sort((a, b) => (a.path < b.path ? -1 : 1));
  let i = 0;
  const flushOthersBefore = async (p: string | undefined) => {
    while (i < others.length && (p === undefined || others[i]!.path < p)) {
      await sink.write(`${others[i]!.sha256}  ${others[i]!.path}\n`);
      i++;
    }
  };
  const imagesDir = path.join(root, 'images');
  const prefixes = (await exists(imagesDir)) ? (await fs.readdir(imagesDir)).sort() : [];
  for (const prefix of prefixes) {
    for (const name of (await fs.readdir(path.join(imagesDir, prefix))).sort()) {
      const rel = `images/${prefix}/${name}`;
      await flushOthersBefore(rel);
      // images are content-addressed: the name is the sha256 (checked when placed, with verifyImages)
      await sink.write(`${name.split('.')[0]}  ${rel}\n`);
    }
  }
  await flushOthersBefore(undefined);
  return sink.close();
}

export async function exportDataset(samples: AsyncIterable<Sample> | Iterable<Sample>, options: ExportOptions): Promise<ExportResult> {
  const dir = path.resolve(options.dir);
  const name = options.name ?? 'mella';
  if (!NAME.test(name)) throw new Error(`export name must match ${NAME}: ${name}`);
  const formats = EXPORT_FORMATS.filter((f) => (options.formats ?? EXPORT_FORMATS).includes(f));
  const split = splitConfigSchema.parse(options.split ?? {});
  const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
  const progressEvery = options.progressEvery ?? 1000;
  if (await exists(dir)) throw new ExportExistsError(`export directory already exists: ${dir}`);
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
  await fs.mkdir(tmp);

  const timer = new Timer();
  const t0 = performance.now();
  const writers: FormatWriter[] = [new ManifestWriter(tmp)];
  if (formats.includes('llamafactory')) writers.push(new LlamaFactoryWriter(tmp, name));
  if (formats.includes('ms-swift')) writers.push(new MsSwiftWriter(tmp));
  if (formats.includes('webdataset')) writers.push(new WebDatasetWriter(tmp, name, shardSize));
  const placer = new ImagePlacer(tmp, { mode: options.imageMode ?? 'link', verify: options.verifyImages ?? true });
  const guard = new LeakGuard(options.leakGuardBits ?? 26);
  const card = options.card === false ? undefined : (options.card ?? {});
  const collector = card ? new CardStatsCollector({ galleryPerLanguage: card.galleryPerLanguage, domainOf: card.domainOf }) : undefined;
  const rejectedSink = await FileSink.open(tmp, 'rejected.jsonl');
  const sinks: { abort(): Promise<void> }[] = [...writers, rejectedSink];

  const counts = emptyCounts();
  const rejected: Record<string, number> = {};
  const next: Record<SplitName, number> = { train: 0, validation: 0, test: 0 };
  let seen = 0;
  let mixedOut = 0;
  let linked = 0;
  let copied = 0;
  let standin = 0;
  const reject = async (s: Sample, r: SampleRejection) => {
    rejected[r.reason] = (rejected[r.reason] ?? 0) + 1;
    await rejectedSink.write(`${canonicalJson({ id: typeof s.id === 'string' ? s.id : null, lang: s.lang ?? null, source: s.source ?? null, imageSha256: s.imageSha256 ?? null, reason: r.reason, detail: r.detail })}\n`);
  };

  try {
    for await (const s of samples) {
      seen++;
      if (options.onProgress && seen % progressEvery === 0) await options.onProgress({ seen, exported: counts.total });
      const problem = checkSample(s);
      if (problem) {
        await reject(s, problem);
        continue;
      }
      if (options.mix && !mixKeeps(options.mix, s)) {
        mixedOut++;
        continue;
      }
      const sp = splitOf(s.groupKey, split);
      let placed;
      try {
        placed = await timer.time('images', () => placer.place(s.imageSha256, s.imageFormat, s.imagePath));
      } catch (err) {
        if (err instanceof ImageMissingError) {
          await reject(s, { reason: 'image_missing', detail: 'image file not found' });
          continue;
        }
        if (err instanceof ImageMismatchError) {
          await reject(s, { reason: 'image_hash_mismatch', detail: 'the image file does not have the sample\'s sha256' });
          continue;
        }
        throw err;
      }
      if (placed.how === 'link') linked++;
      if (placed.how === 'copy') copied++;
      guard.add(s.imageSha256, sp);
      const record: ExportRecord = { sample: s, split: sp, index: next[sp]++, imageRel: placed.relPath, imageFile: path.join(tmp, placed.relPath) };
      for (const w of writers) await timer.time(w.format, () => w.write(record));
      if (collector) await timer.time('card', async () => collector.add(s, sp, placed.relPath));
      countSample(counts, s.lang, sp, s.source);
      if (s.standin) standin++;
    }

    const files: WrittenFile[] = [];
    for (const w of writers) files.push(...(await timer.time(w.format, () => w.finish())));
    files.push(await rejectedSink.close());

    // No image on two sides of the split: the Bloom filters name suspects, the manifest settles them.
    const leaks = await timer.time('validate', () => guard.confirm(readManifest(tmp)));
    if (leaks.length > 0) throw new SplitLeakError(leaks);

    // The sharegpt files, read back: schema, <image> tokens == len(images), every image present.
    const problems: ValidationProblem[] = [];
    await timer.time('validate', async () => {
      for (const sp of SPLITS) {
        if (formats.includes('llamafactory')) problems.push(...(await validateSharegptFile(tmp, llamaFactoryFile(name, sp), { layout: 'json-array', checkImages: true })).problems);
        if (formats.includes('ms-swift')) problems.push(...(await validateSharegptFile(tmp, msSwiftFile(sp), { layout: 'jsonl' })).problems);
      }
    });
    if (problems.length > 0) throw new ExportValidationError(problems);

    const mixSummary = options.mix ? { salt: options.mix.salt, ratios: options.mix.ratios } : undefined;
    if (card && collector) {
      await timer.time('card', async () => {
        const collected = collector.result({ topDomains: card.topDomains });
        const input = {
          name,
          title: card.title,
          version: card.version,
          counts,
          stats: { stages: card.stats?.stages ?? {}, perLanguage: card.stats?.perLanguage, textLengths: collected.textLengths, domains: collected.domains, domainsApproximate: collected.domainsApproximate },
          gallery: collected.gallery,
          standinSamples: collected.standinSamples,
          standinBySource: collected.standinBySource,
          images: placer.count,
          build: card.build,
          split,
          mix: mixSummary,
          rejectedAtExport: rejected,
          mixedOut,
          formats: ['manifest', ...formats],
          thumbnailSide: card.thumbnailSide,
        };
        for (const [file, text] of [
          ['card.md', renderCardMarkdown(input)],
          ['card.html', await renderCardHtml(input)],
        ] as const) {
          const sink = await FileSink.open(tmp, file);
          await sink.write(text);
          files.push(await sink.close());
        }
      });
    }

    files.sort((a, b) => (a.path < b.path ? -1 : 1));
    const summary = {
      formatVersion: EXPORT_FORMAT_VERSION,
      name,
      formats: ['manifest', ...formats],
      split,
      mix: options.mix ? { salt: options.mix.salt, ratios: options.mix.ratios, quotas: options.mix.quotas } : null,
      shardSize,
      instructionTemplates: INSTRUCTION_TEMPLATES_VERSION,
      seen,
      counts,
      rejected,
      mixedOut,
      images: { count: placer.count, bytes: placer.bytes },
      standinSamples: standin,
      files,
    };
    const summarySink = await FileSink.open(tmp, 'export.json');
    await summarySink.write(`${JSON.stringify(JSON.parse(canonicalJson(summary)), null, 2)}\n`);
    const summaryFile = await summarySink.close();
    const all = [...files, summaryFile].sort((a, b) => (a.path < b.path ? -1 : 1));
    const sums = await timer.time('checksums', () => writeChecksums(tmp, all));

    try {
      await fs.rename(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ExportExistsError(`export directory appeared meanwhile: ${dir}`);
      throw err;
    }
    timer.ms.total = performance.now() - t0;
    const timings = Object.fromEntries(Object.entries(timer.ms).map(([k, v]) => [k, Math.round(v)]));
    return {
      dir,
      name,
      contentId: sums.sha256,
      formats,
      seen,
      counts,
      rejected,
      mixedOut,
      images: { count: placer.count, bytes: placer.bytes, linked, copied },
      standinSamples: standin,
      files: [...all, sums].sort((a, b) => (a.path < b.path ? -1 : 1)),
      timings,
    };
  } catch (err) {
    for (const s of sinks) await s.abort().catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
