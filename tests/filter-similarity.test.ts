/**
 * The optional image-text similarity pass of the filter stage (activities/filter/stage/similarity.ts)
 * through the workflow, against the project's OpenAI-compatible stand-in over real HTTP. The stand-in
 * embeds an image as its own English caption of it (infra/llm-standin/embeddings.ts), so an alt that
 * says what the stand-in sees scores high and an unrelated alt low: the mechanism (requests, cache,
 * floors per language, verdicts with measure and threshold) is tested, not a model's quality.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, similarityFloor } from '../activities/filter/stage/similarity';
import { imageTextSimilarityConfigSchema } from '../activities/filter/config';
import { jpegForRequest } from '../activities/llm/image';
import { blobs } from '../activities/shared/blobs';
import { captionEn } from '../infra/llm-standin/caption';
import { imageFacts } from '../infra/llm-standin/image-facts';
import { startLlmStandin, type LlmStandin } from '../infra/llm-standin/index';
import { drawSceneImage } from '../infra/sample-site/images';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import type { RunSummary } from '../workflows/types';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import { dbClient, runToCompletion, testConfig, tmpDir, writeList } from './support/pipeline';

const pool = dbClient();
const dir = tmpDir('filter-similarity');
let server: SampleServer;
let standin: LlmStandin;
let workers: RunningWorkers;

beforeAll(async () => {
  server = await startSampleServer();
  server.set('/img/market.jpg', { kind: 'bytes', body: await drawSceneImage('night-market', 2), contentType: 'image/jpeg' });
  server.set('/img/river.jpg', { kind: 'bytes', body: await drawSceneImage('river-sunset', 4), contentType: 'image/jpeg' });
  standin = await startLlmStandin({ port: 0 });
  workers = await startWorkers(['mella-cpu', 'mella-llm']);
});
afterAll(async () => {
  await workers?.stop();
  await standin?.close();
  await server?.close();
  await pool.end();
});

const UNRELATED = 'Quarterly revenue grew by four percent while operating costs stayed flat across all regions';

async function run(label: string, alts: { market: string; river: string }, similarity: Record<string, unknown>): Promise<RunSummary> {
  const list = writeList(dir, `${label}.jsonl`, [
    { url: server.url('/img/market.jpg'), text: alts.market },
    { url: server.url('/img/river.jpg'), text: alts.river },
  ]);
  const config = testConfig({
    languages: ['en'], stages: ['ingest', 'filter'], inputs: [{ path: list, lang: 'en' }],
    llm: { endpoints: { default: { baseUrl: standin.baseUrl, concurrency: 4 } } },
    filter: { imageTextSimilarity: { enabled: true, model: 'mella-standin-embed', ...similarity } },
  });
  return runToCompletion(config, label);
}

async function verdicts(runId: string) {
  const { rows } = await pool.query<{ url: string; kept: boolean; reason: string | null; text_operator: string | null; text_measured: number | null; text_threshold: number | null; text_passed: string[]; text_stats: Record<string, unknown> }>(
    `select x.url, f.kept, f.reason, f.text_operator, f.text_measured, f.text_threshold, f.text_passed, f.text_stats
       from filter_records f join ingest_records x on x.run_id = f.run_id and x.seq = f.seq where f.run_id = $1 order by x.url`,
    [runId],
  );
  return new Map(rows.map((r) => [r.url.endsWith('market.jpg') ? 'market' : 'river', r]));
}

describe('image-text similarity through an embeddings endpoint', () => {
  let marketCaption = '';

  it('keeps an alt that says what the image shows, removes an unrelated one with its measure and floor', async () => {
    // What the stand-in will see: the training copy, as the pass sends it (its facts, in its words).
    const probe = await run('probe', { market: UNRELATED, river: UNRELATED }, { enabled: false });
    const { rows } = await pool.query<{ train_blob_key: string; url: string }>(
      `select fi.train_blob_key, x.url from filter_images fi join filter_records f on f.run_id = fi.run_id and f.image_sha256 = fi.sha256
         join ingest_records x on x.run_id = f.run_id and x.seq = f.seq where fi.run_id = $1`,
      [probe.runId],
    );
    const market = rows.find((r) => r.url.endsWith('market.jpg'))!;
    marketCaption = captionEn(await imageFacts(await jpegForRequest(await blobs().get(market.train_blob_key), 336)));

    standin.reset();
    const summary = await run('similarity', { market: marketCaption, river: UNRELATED }, { minSimilarity: 0.3 });
    const v = await verdicts(summary.runId);
    expect(v.get('market')).toMatchObject({ kept: true, text_operator: null });
    expect(v.get('market')!.text_passed).toContain('image-text-similarity');
    expect(v.get('market')!.text_stats.imageTextSimilarity as number).toBeGreaterThan(0.9);
    expect(v.get('river')).toMatchObject({ kept: false, reason: 'low_image_text_similarity', text_operator: 'image-text-similarity', text_threshold: 0.3 });
    expect(v.get('river')!.text_measured!).toBeLessThan(0.3);
    expect(summary.languages.en!.filter).toMatchObject({ in: 2, kept: 1, rejected: { low_image_text_similarity: 1 } });
    expect(summary.filter!.en!.operators['image-text-similarity']).toEqual({ in: 2, kept: 1, rejected: 1, byReason: { low_image_text_similarity: 1 } });
    // Two images (messages) and one batch of two alts (input).
    expect(standin.stats().byRoute.embeddings).toBe(3);
  });

  it('pays nothing twice: a second run with the same images and alts is served from the cache', async () => {
    standin.reset();
    const again = await run('similarity-again', { market: marketCaption, river: UNRELATED }, { minSimilarity: 0.3 });
    expect(again.languages.en!.filter).toMatchObject({ kept: 1, rejected: { low_image_text_similarity: 1 } });
    expect(standin.stats().byRoute.embeddings ?? 0).toBe(0);
  });

  it("floors per language: the language's floor replaces minSimilarity", async () => {
    const close = `${marketCaption} Seen on a busy evening.`;
    const strict = await run('similarity-strict', { market: close, river: UNRELATED }, { minSimilarity: 0.3, languages: { en: 0.999 } });
    expect(strict.languages.en!.filter).toMatchObject({ kept: 0, rejected: { low_image_text_similarity: 2 } });
    const v = await verdicts(strict.runId);
    expect(v.get('market')!.text_threshold).toBe(0.999);
    expect(v.get('market')!.text_measured!).toBeGreaterThan(0.5);
    const lenient = await run('similarity-lenient', { market: close, river: UNRELATED }, { minSimilarity: 0.999, languages: { en: 0.3 } });
    expect(lenient.languages.en!.filter).toMatchObject({ kept: 1, rejected: { low_image_text_similarity: 1 } });
  });

  it('config and maths', () => {
    const c = imageTextSimilarityConfigSchema.parse({ minSimilarity: 0.2, languages: { sr: 0.15, 'sr-Latn': 0.1 } });
    expect([similarityFloor(c, 'sr-Latn'), similarityFloor(c, 'sr-Cyrl'), similarityFloor(c, 'th')]).toEqual([0.1, 0.15, 0.2]);
    expect(() => imageTextSimilarityConfigSchema.parse({ minSimilarity: 2 })).toThrow();
    expect(cosine(Float32Array.from([1, 0]), Float32Array.from([1, 0]))).toBe(1);
    expect(cosine(Float32Array.from([1, 0]), Float32Array.from([0, 3]))).toBe(0);
    expect(() => cosine(Float32Array.from([1]), Float32Array.from([1, 0]))).toThrow(/lengths differ/);
  });
});
