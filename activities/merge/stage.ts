/**
 * Activity (mella-cpu): the merge stage of a run. Reads what the earlier stages kept from PostgreSQL,
 * as samples in a stable order, and exports them as an immutable dataset version: LLaMA-Factory,
 * ms-swift, WebDataset, the manifest with lineage, and the dataset card (export.ts). The version is
 * recorded with its parent (the previous version of the same dataset name) and the exact diff to it.
 *
 *  - D_know (`know`): each kept record: its dataset image (the best copy of its near-duplicate group)
 *    with a target-language question and the native alt text as the answer.
 *  - D_ling (`ling`): each kept translation: its image with a "describe in detail" instruction in the
 *    target language and the translated caption as the answer.
 * Samples of one picture share its group key (the original keeper's sha256), so the split never puts
 * one picture on two sides.
 *
 * Idempotent: a run whose version is recorded returns it; an export directory left by a crashed
 * attempt (published, not yet recorded) is removed and written again (exports are deterministic).
 */
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stateDir } from '../../infra/paths';
import { blobs } from '../shared/blobs';
import { db } from '../shared/db';
import { runConfig } from '../run/run-record';
import { computeSummary } from '../run/summary';
import { diffExports } from './diff';
import { exportDataset, type ExportResult } from './export';
import { chooseInstruction } from './instructions';
import { planMix } from './mix';
import type { Sample } from './sample';

const PAGE = 1000;

export interface MergeResult {
  versionId: string;
  name: string;
  dir: string;
  contentId: string;
  parentId: string | null;
  samples: number;
  bySource: Record<string, number>;
  standinSamples: number;
  skipped: boolean;
}

/** The exports root: MELLA_EXPORT_DIR or <state dir>/exports. */
export function exportsRoot(): string {
  return path.resolve(process.env.MELLA_EXPORT_DIR ?? path.join(stateDir(), 'exports'));
}

interface KnowRow {
  seq: number;
  alt: string;
  image_sha256: string;
  text_passed: string[];
  image_passed: string[];
  train_blob_key: string;
  train_format: string;
  train_sha256: string;
  page_url: string | null;
  url: string;
  url_key: string;
  text: string | null;
  source: string;
  line_no: number;
  fetched_at: Date;
  extra: Record<string, unknown> | null;
}

interface LingRow {
  item_key: string;
  text: string;
  model: string;
  prompt_version: string;
  standin: boolean;
  caption: string;
  caption_model: string;
  caption_prompt: string;
  caption_standin: boolean;
  train_blob_key: string;
  train_format: string;
  train_sha256: string;
  passed: string[];
  page_url: string | null;
}

/** Every sample of a run, language by language, D_know then D_ling, each in key order (deterministic). */
export async function* runSamples(runId: string, languages: readonly string[], sources: { know: boolean; ling: boolean; fused?: boolean }): AsyncGenerator<Sample> {
  const locate = (key: string) => blobs().locate(key);
  for (const lang of [...languages].sort()) {
    if (sources.know) {
      for (let after = -1; ; ) {
        const { rows } = await db().query<KnowRow>(
          `select f.seq, f.alt, f.image_sha256, f.text_passed, fi.passed as image_passed, fi.train_blob_key, fi.train_format, fi.train_sha256,
                  r.page_url, r.url, r.url_key, r.text, r.source, r.line_no, x.fetched_at, r.extra
             from filter_records f
             join filter_images fi on fi.run_id = f.run_id and fi.lang = f.lang and fi.sha256 = f.image_sha256
             join ingest_records r on r.run_id = f.run_id and r.seq = f.seq
             join ingest_results x on x.run_id = f.run_id and x.seq = f.seq
            where f.run_id = $1 and f.lang = $2 and f.kept and fi.train_blob_key is not null and f.seq > $3
            order by f.seq limit ${PAGE}`,
          [runId, lang, after],
        );
        for (const r of rows) {
          // Stable across runs (a refresh's diff compares ids): the image URL and the alt as written.
          const id = `know:${lang}:${createHash('sha256').update(`${r.url_key}\n${r.text ?? ''}`).digest('hex').slice(0, 24)}`;
          yield {
            id,
            lang,
            source: 'know',
            imageSha256: r.train_sha256,
            imagePath: locate(r.train_blob_key),
            imageFormat: r.train_format,
            instruction: chooseInstruction(id, lang, 'know').text,
            answer: r.alt,
            groupKey: r.image_sha256,
            lineage: {
              imageUrl: r.url,
              pageUrl: r.page_url,
              fetchedAt: r.fetched_at.toISOString(),
              input: `${r.source}:${r.line_no}`,
              originalImage: r.image_sha256,
              filters: { image: r.image_passed, text: r.text_passed },
              ...(r.extra?.context ? { context: r.extra.context } : {}),
            },
          };
        }
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1]!.seq;
      }
    }
    if (sources.ling) {
      for (let after = ''; ; ) {
        const { rows } = await db().query<LingRow>(
          `select t.item_key, t.text, t.model, t.prompt_version, t.standin, c.text as caption, c.model as caption_model,
                  c.prompt_version as caption_prompt, c.standin as caption_standin, fi.train_blob_key, fi.train_format, fi.train_sha256, fi.passed,
                  (select r.page_url from ingest_results x join ingest_records r on r.run_id = x.run_id and r.seq = x.seq
                    where x.run_id = t.run_id and x.sha256 = t.item_key and r.lang = t.lang order by r.seq limit 1) as page_url
             from llm_outputs t
             join llm_outputs c on c.run_id = t.run_id and c.stage = 'caption' and c.lang = t.lang and c.item_key = t.item_key
             join filter_images fi on fi.run_id = t.run_id and fi.lang = t.lang and fi.sha256 = t.item_key
            where t.run_id = $1 and t.stage = 'translate' and t.lang = $2 and t.kept and t.item_key > $3
            order by t.item_key limit ${PAGE}`,
          [runId, lang, after],
        );
        for (const r of rows) {
          const id = `ling:${lang}:${r.item_key}`;
          yield {
            id,
            lang,
            source: 'ling',
            imageSha256: r.train_sha256,
            imagePath: locate(r.train_blob_key),
            imageFormat: r.train_format,
            instruction: chooseInstruction(id, lang, 'ling').text,
            answer: r.text,
            groupKey: r.item_key,
            standin: r.standin || r.caption_standin,
            lineage: {
              pageUrl: r.page_url,
              originalImage: r.item_key,
              filters: { image: r.passed },
              caption: r.caption,
              captionModel: r.caption_model,
              captionPrompt: r.caption_prompt,
              translateModel: r.model,
              translatePrompt: r.prompt_version,
              ...(r.standin || r.caption_standin ? { standin: true } : {}),
            },
          };
        }
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1]!.item_key;
      }
    }
    if (sources.fused) {
      for (let after = -1; ; ) {
        const { rows } = await db().query<{
          seq: number; text: string; model: string; prompt_version: string; standin: boolean; alt: string; image_sha256: string;
          train_blob_key: string; train_format: string; train_sha256: string; url_key: string; raw: string | null; page_url: string | null;
        }>(
          `select f.seq, o.text, o.model, o.prompt_version, o.standin, f.alt, f.image_sha256, fi.train_blob_key, fi.train_format, fi.train_sha256,
                  r.url_key, r.text as raw, r.page_url
             from llm_outputs o
             join filter_records f on f.run_id = o.run_id and f.seq = o.item_key::int
             join filter_images fi on fi.run_id = f.run_id and fi.lang = f.lang and fi.sha256 = f.image_sha256
             join ingest_records r on r.run_id = f.run_id and r.seq = f.seq
            where o.run_id = $1 and o.stage = 'fuse' and o.lang = $2 and o.kept and f.seq > $3
            order by f.seq limit ${PAGE}`,
          [runId, lang, after],
        );
        for (const r of rows) {
          const id = `fused:${lang}:${createHash('sha256').update(`${r.url_key}\n${r.raw ?? ''}`).digest('hex').slice(0, 24)}`;
          yield {
            id,
            lang,
            source: 'fused',
            imageSha256: r.train_sha256,
            imagePath: locate(r.train_blob_key),
            imageFormat: r.train_format,
            instruction: chooseInstruction(id, lang, 'fused').text,
            answer: r.text,
            groupKey: r.image_sha256,
            standin: r.standin,
            lineage: { pageUrl: r.page_url, originalImage: r.image_sha256, alt: r.alt, fuseModel: r.model, fusePrompt: r.prompt_version, ...(r.standin ? { standin: true } : {}) },
          };
        }
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1]!.seq;
      }
    }
  }
}

/**
 * Exports a run's samples into `dir` with the run's merge settings (the merge stage, and
 * `mella export reexport`, which must reproduce the recorded content id byte for byte).
 */
export async function exportRun(
  runId: string,
  dir: string,
  opts: { versionId: string; parentId: string | null; onProgress?: (p: { seen: number; exported: number }) => void },
): Promise<ExportResult> {
  const { versionId, parentId } = opts;
  const config = await runConfig(runId);
  const m = config.merge;
  const sources = { know: config.stages.includes('filter'), ling: config.stages.includes('translate'), fused: config.stages.includes('fuse') };
  const summary = await computeSummary(runId, 'running');
  // The card shows the stages before this one (a re-export after the version is recorded must not see it).
  const { merge: _merge, ...stages } = summary.stages;
  const samples = () => runSamples(runId, config.languages, sources);
  const mix = m.mix ? await planMix(samples, m.mix, { salt: m.mixSalt }) : undefined;
  const models = [
    ...(sources.ling ? [{ role: 'caption', name: config.caption.model }, { role: 'translate', name: config.translate.model }] : []),
    ...(sources.fused ? [{ role: 'fuse', name: config.fuse.model }] : []),
  ];
  const result = await exportDataset(samples(), {
    dir,
    name: m.name,
    formats: m.formats,
    split: m.split,
    ...(mix ? { mix } : {}),
    shardSize: m.shardSize,
    imageMode: m.imageMode,
    verifyImages: m.verifyImages,
    card: {
      title: `${m.name} (${versionId})`,
      version: { id: versionId, parent: parentId },
      stats: { stages, perLanguage: summary.languages },
      build: {
        config,
        models,
        promptVersions: sources.ling ? { caption: config.caption.promptVersion, translate: config.translate.promptVersion } : {},
        facts: { run: runId },
      },
      galleryPerLanguage: m.card.galleryPerLanguage,
      thumbnailSide: m.card.thumbnailSide,
      topDomains: m.card.topDomains,
    },
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });

  return result;
}

export async function mergeRun(args: { runId: string }): Promise<MergeResult> {
  const { runId } = args;
  const versionId = `v-${runId}`;
  const recorded = await versionRow(versionId);
  if (recorded) return { ...recorded, skipped: true };

  const ctx = Context.current();
  const config = await runConfig(runId);
  const m = config.merge;
  const dir = path.join(exportsRoot(), m.name, versionId);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.dirname(dir), { recursive: true });

  const parent = await db().query<{ version_id: string; dir: string }>(
    'select version_id, dir from dataset_versions where name = $1 and run_id <> $2 order by created_at desc limit 1',
    [m.name, runId],
  );
  const parentId = parent.rows[0]?.version_id ?? null;
  const result = await exportRun(runId, dir, { versionId, parentId, onProgress: (p) => ctx.heartbeat(p) });

  let diff: unknown = null;
  if (parent.rows[0]) {
    try {
      diff = (await diffExports(parent.rows[0].dir, dir)).counts;
    } catch (err) {
      diff = { error: `parent export unreadable: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  await db().query(
    `insert into dataset_versions (version_id, name, run_id, parent_id, dir, content_id, counts, rejected, diff, standin_samples)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict do nothing`,
    [versionId, m.name, runId, parentId, dir, result.contentId, JSON.stringify(result.counts), JSON.stringify(result.rejected), JSON.stringify(diff), result.standinSamples],
  );
  return { ...(await versionRow(versionId))!, skipped: false };
}

async function versionRow(versionId: string): Promise<Omit<MergeResult, 'skipped'> | undefined> {
  const { rows } = await db().query<{ version_id: string; name: string; dir: string; content_id: string; parent_id: string | null; counts: { total: number; bySource: Record<string, number> }; standin_samples: number }>(
    'select version_id, name, dir, content_id, parent_id, counts, standin_samples from dataset_versions where version_id = $1',
    [versionId],
  );
  const r = rows[0];
  return (
    r && {
      versionId: r.version_id, name: r.name, dir: r.dir, contentId: r.content_id, parentId: r.parent_id,
      samples: r.counts.total, bySource: r.counts.bySource, standinSamples: r.standin_samples,
    }
  );
}
