/**
 * Near-duplicate removal against earlier dataset versions (the filter stage's set pass, before the
 * in-run grouping). An image that an earlier version already published stays as it is: a refresh or
 * a new crawl does not swap a published picture for a new copy of it, and does not add a resized,
 * re-encoded or slightly cropped copy of it either. So:
 *
 *  - an image of this run whose sha256 an earlier version published is kept (it is that image);
 *  - any other kept image within `phash-dedup`'s `maxDistance` of a published image is removed with
 *    the reason `near_duplicate_of_published` (operator `phash-dedup`, the distance measured, the
 *    threshold, the version and image in the detail, `duplicate_of` the published sha256).
 *
 * "Published by a version" = the images that the version's run kept in the same language with a
 * training copy (what its D_know and D_ling samples are built from). Which versions: config
 * `filter.dedupAgainstVersions`: `dataset` (default) the versions of this run's dataset name
 * (`merge.name`) recorded before this run was created, `all` every version recorded before it, `none`.
 */
import type pg from 'pg';
import { phashHalves, popcount32 } from '../image/phash';

export interface PublishedImage {
  sha256: string;
  phash: string;
  versionId: string;
}

export interface PublishedMatch {
  sha256: string;
  publishedSha256: string;
  versionId: string;
  distance: number;
}

/** The images earlier versions published in a language (oldest version first per image). */
export async function publishedImages(client: pg.PoolClient, runId: string, lang: string, against: 'dataset' | 'all', datasetName: string): Promise<PublishedImage[]> {
  const { rows } = await client.query<{ sha256: string; phash: string; version_id: string }>(
    `select distinct on (fi.sha256) fi.sha256, fi.phash, v.version_id
       from dataset_versions v
       join filter_images fi on fi.run_id = v.run_id and fi.lang = $2 and fi.kept and fi.phash is not null and fi.train_blob_key is not null
      where v.run_id <> $1
        and v.created_at < (select created_at from runs where run_id = $1)
        and ($3::text is null or v.name = $3)
      order by fi.sha256, v.created_at`,
    [runId, lang, against === 'dataset' ? datasetName : null],
  );
  return rows.map((r) => ({ sha256: r.sha256, phash: r.phash, versionId: r.version_id }));
}

/**
 * For each candidate that is not itself published, the closest published image within `maxDistance`
 * (ties: the smaller sha256). Linear in candidates x published; hashes are parsed once into their
 * 32-bit halves.
 */
export function matchPublished(candidates: readonly { sha256: string; phash: string }[], published: readonly PublishedImage[], maxDistance: number): PublishedMatch[] {
  const publishedShas = new Set(published.map((p) => p.sha256));
  // Every published hash parsed once, not once per candidate.
  const hi = new Uint32Array(published.length);
  const lo = new Uint32Array(published.length);
  published.forEach((p, i) => ([hi[i], lo[i]] = phashHalves(p.phash)));
  const out: PublishedMatch[] = [];
  for (const c of candidates) {
    if (publishedShas.has(c.sha256)) continue;
    const [ch, cl] = phashHalves(c.phash);
    let best: PublishedMatch | undefined;
    for (let i = 0; i < published.length; i++) {
      const p = published[i]!;
      const d = popcount32(ch ^ hi[i]!) + popcount32(cl ^ lo[i]!);
      if (d > maxDistance) continue;
      if (best === undefined || d < best.distance || (d === best.distance && p.sha256 < best.publishedSha256)) {
        best = { sha256: c.sha256, publishedSha256: p.sha256, versionId: p.versionId, distance: d };
      }
    }
    if (best) out.push(best);
  }
  return out;
}
