/**
 * Activity (mella-cpu): the set pass of the filter stage for one language, after its item pass.
 *
 *  1. Images: the image set operators (phash-dedup) group the kept images of the language; each
 *     group keeps its best member (phash.ts ranks quality) and the others are marked removed, with
 *     their keeper. A record whose image was removed keeps its alt and points to the keeper (its
 *     `image_sha256`): the alt describes the same picture, and the dataset holds one copy of it.
 *  2. Alts: the text set operators (near-duplicate) compare the kept records' alts per dataset image:
 *     the same picture with near-identical alts from many pages is one sample, not many.
 *
 * All in one transaction, with its done-marker: a retried or re-run pass either finds the marker and
 * returns what it recorded, or starts from the item pass's verdicts again.
 */
import { inTransaction } from '../../shared/db';
import type { DedupResult } from '../pipeline';
import { dedupImages, dedupTexts } from '../pipeline';
import type { Fidelity } from '../operator';
import { runConfig } from '../../run/run-record';
import type { RunConfig } from '../../shared/config';
import { filterPipelineFor } from './pipeline-cache';
import { matchPublished, publishedImages } from './published';

export interface DedupPassResult {
  imagesIn: number;
  imagesRemoved: number;
  recordsIn: number;
  recordsRemoved: number;
  /** Records removed, by reason (they were counted kept by the shards). */
  rejected: Record<string, number>;
  skipped: boolean;
  /** The image-text similarity pass (mella-llm) is to run next (`filter.imageTextSimilarity.enabled`). */
  similarity?: boolean;
}

/** member id -> (keeper id, measured distance or similarity), from the groups of every operator. */
function membership(result: DedupResult): Map<string, { keeper: string; measured: number; operator: string }> {
  const out = new Map<string, { keeper: string; measured: number; operator: string }>();
  for (const [operator, groups] of Object.entries(result.groups)) {
    for (const g of groups) for (const m of g.members) out.set(m.id, { keeper: g.keeper, measured: m.measured, operator });
  }
  return out;
}

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

export async function dedupFilter(args: { runId: string; lang: string }): Promise<DedupPassResult> {
  const config = await runConfig(args.runId);
  const result = await dedupPass(args, config);
  return config.filter.imageTextSimilarity.enabled ? { ...result, similarity: true } : result;
}

async function dedupPass(args: { runId: string; lang: string }, config: RunConfig): Promise<DedupPassResult> {
  const { runId, lang } = args;
  const pipeline = await filterPipelineFor(runId, lang);
  return inTransaction(async (client) => {
    // Serialises two attempts of the same pass (a retry racing a slow first attempt).
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`filter-dedup:${runId}:${lang}`]);
    const done = await client.query<{ images_in: number; images_removed: number; records_in: number; records_removed: number }>(
      'select images_in, images_removed, records_in, records_removed from filter_dedup_passes where run_id = $1 and lang = $2',
      [runId, lang],
    );
    if (done.rows[0]) {
      const d = done.rows[0];
      const rejected = await removedByReason(client, runId, lang);
      return { imagesIn: d.images_in, imagesRemoved: d.images_removed, recordsIn: d.records_in, recordsRemoved: d.records_removed, rejected, skipped: true };
    }

    // 1. Images.
    const images = await client.query<{ sha256: string; phash: string; width: number; height: number; bytes: number; fidelity: Fidelity; frames: number }>(
      `select sha256, phash, width, height, bytes, fidelity, frames from filter_images
        where run_id = $1 and lang = $2 and kept and phash is not null order by sha256`,
      [runId, lang],
    );
    // 1a. Copies of what earlier dataset versions published (published.ts), before the in-run groups.
    const publishedRemoval = await removePublishedCopies(client, runId, lang, images.rows, pipeline, config);
    const imageResult = dedupImages(
      images.rows
        .filter((r) => !publishedRemoval.removed.has(r.sha256))
        .map((r) => ({ id: r.sha256, phash: r.phash, width: r.width, height: r.height, bytes: r.bytes, fidelity: r.fidelity, frames: r.frames })),
      pipeline,
    );
    const imageGroups = membership(imageResult);
    const removedImages = [...imageResult.verdicts].filter(([, r]) => r !== null);
    for (const [sha, r] of removedImages) {
      await client.query(
        `update filter_images set kept = false, operator = $4, reason = $5, measured = $6, threshold = $7, detail = $8, duplicate_of = $9
          where run_id = $1 and lang = $2 and sha256 = $3`,
        [runId, lang, sha, r!.operator, r!.reason, json(r!.measured), json(r!.threshold), r!.detail ?? null, imageGroups.get(sha)?.keeper ?? null],
      );
      // Its records now show the group's keeper.
      const keeper = imageGroups.get(sha)?.keeper;
      if (keeper) await client.query('update filter_records set image_sha256 = $4 where run_id = $1 and lang = $2 and sha256 = $3', [runId, lang, sha, keeper]);
    }
    await appendPassed(client, 'filter_images', 'passed', 'sha256', runId, lang, imageResult);

    // 2. Alts of the kept records, compared per dataset image.
    const records = await client.query<{ seq: number; alt: string; image_sha256: string }>(
      'select seq, alt, image_sha256 from filter_records where run_id = $1 and lang = $2 and kept order by seq',
      [runId, lang],
    );
    const textResult = dedupTexts(
      records.rows.map((r) => ({ id: String(r.seq), text: r.alt, bucket: r.image_sha256 })),
      pipeline,
    );
    const removedRecords = [...textResult.verdicts].filter(([, r]) => r !== null);
    for (const [seq, r] of removedRecords) {
      await client.query(
        `update filter_records set kept = false, text_kept = false, reason = $4, text_operator = $5, text_reason = $4, text_measured = $6,
           text_threshold = $7, text_detail = $8 where run_id = $1 and seq = $3 and lang = $2`,
        [runId, lang, Number(seq), r!.reason, r!.operator, json(r!.measured), json(r!.threshold), r!.detail ?? null],
      );
    }
    await appendPassed(client, 'filter_records', 'text_passed', 'seq', runId, lang, textResult);

    // Groups, for audit: one row per removed member.
    const groups = [...imageGroups.entries(), ...membership(textResult).entries()];
    if (groups.length) {
      await client.query(
        `insert into filter_duplicate_groups (run_id, lang, operator, keeper, member, measured)
         select $1, $2, * from unnest($3::text[], $4::text[], $5::text[], $6::float8[]) on conflict do nothing`,
        [runId, lang, groups.map(([, g]) => g.operator), groups.map(([, g]) => g.keeper), groups.map(([m]) => m), groups.map(([, g]) => g.measured)],
      );
    }
    const result = {
      imagesIn: images.rows.length,
      imagesRemoved: removedImages.length + publishedRemoval.removed.size,
      recordsIn: records.rows.length + publishedRemoval.recordsRemoved,
      recordsRemoved: removedRecords.length + publishedRemoval.recordsRemoved,
    };
    await client.query(
      `insert into filter_dedup_passes (run_id, lang, images_in, images_removed, records_in, records_removed) values ($1, $2, $3, $4, $5, $6)`,
      [runId, lang, result.imagesIn, result.imagesRemoved, result.recordsIn, result.recordsRemoved],
    );
    return { ...result, rejected: await removedByReason(client, runId, lang), skipped: false };
  });
}

/**
 * Removes the kept images that are near-duplicates of images earlier dataset versions published. A
 * record of a removed image points to the published image when this run kept that one too (as for an
 * in-run group); otherwise the record is removed with the same reason (the picture is in the dataset
 * already, with the alt its earlier version carries).
 */
async function removePublishedCopies(
  client: import('pg').PoolClient,
  runId: string,
  lang: string,
  kept: readonly { sha256: string; phash: string }[],
  pipeline: Awaited<ReturnType<typeof filterPipelineFor>>,
  config: RunConfig,
): Promise<{ removed: Set<string>; recordsRemoved: number }> {
  const none = { removed: new Set<string>(), recordsRemoved: 0 };
  const phashStep = pipeline.imageSet.find((s) => s.op.name === 'phash-dedup');
  if (!phashStep || kept.length === 0) return none;
  const against = config.filter.dedupAgainstVersions;
  if (against === 'none') return none;
  const published = await publishedImages(client, runId, lang, against, config.merge.name);
  if (published.length === 0) return none;
  const maxDistance = (phashStep.config as { maxDistance: number }).maxDistance;
  const matches = matchPublished(kept, published, maxDistance);
  const keptHere = new Set(kept.map((k) => k.sha256));
  let recordsRemoved = 0;
  for (const m of matches) {
    await client.query(
      `update filter_images set kept = false, operator = 'phash-dedup', reason = $4, measured = $5, threshold = $6, detail = $7, duplicate_of = $8
        where run_id = $1 and lang = $2 and sha256 = $3`,
      [runId, lang, m.sha256, PUBLISHED_REASON, json(m.distance), json(maxDistance), `near image ${m.publishedSha256.slice(0, 16)} of version ${m.versionId}`, m.publishedSha256],
    );
    if (keptHere.has(m.publishedSha256)) {
      await client.query('update filter_records set image_sha256 = $4 where run_id = $1 and lang = $2 and sha256 = $3', [runId, lang, m.sha256, m.publishedSha256]);
    } else {
      const r = await client.query(`update filter_records set kept = false, reason = $4 where run_id = $1 and lang = $2 and image_sha256 = $3 and kept`, [runId, lang, m.sha256, PUBLISHED_REASON]);
      recordsRemoved += r.rowCount ?? 0;
    }
    await client.query(
      `insert into filter_duplicate_groups (run_id, lang, operator, keeper, member, measured) values ($1, $2, 'phash-dedup', $3, $4, $5) on conflict do nothing`,
      [runId, lang, m.publishedSha256, m.sha256, m.distance],
    );
  }
  return { removed: new Set(matches.map((m) => m.sha256)), recordsRemoved };
}

const PUBLISHED_REASON = 'near_duplicate_of_published';

/** Survivors of the set operators get them in their passed list (counters count them kept). */
async function appendPassed(
  client: import('pg').PoolClient,
  table: 'filter_images' | 'filter_records',
  column: 'passed' | 'text_passed',
  idColumn: 'sha256' | 'seq',
  runId: string,
  lang: string,
  result: DedupResult,
) {
  const kept = [...result.verdicts].filter(([, r]) => r === null).map(([id]) => id);
  if (!kept.length || !result.operators.length) return;
  const cast = idColumn === 'seq' ? 'int[]' : 'text[]';
  await client.query(
    `update ${table} set ${column} = ${column} || $4::text[] where run_id = $1 and lang = $2 and ${idColumn} = any($3::${cast})`,
    [runId, lang, idColumn === 'seq' ? kept.map(Number) : kept, result.operators],
  );
}

async function removedByReason(client: import('pg').PoolClient, runId: string, lang: string): Promise<Record<string, number>> {
  const { rows } = await client.query<{ reason: string; n: string }>(
    `select text_reason as reason, count(*) as n from filter_records
      where run_id = $1 and lang = $2 and text_operator = any($3) group by 1
     union all
     select reason, count(*) as n from filter_records where run_id = $1 and lang = $2 and not kept and reason = $4 group by 1`,
    [runId, lang, (await filterPipelineFor(runId, lang)).textSet.map((s) => s.op.name), PUBLISHED_REASON],
  );
  return Object.fromEntries(rows.map((r) => [r.reason, Number(r.n)]));
}
