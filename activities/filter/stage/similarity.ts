/**
 * Activity (mella-llm): the optional image-text similarity pass of the filter stage, after the set
 * pass, over the records it kept (config `filter.imageTextSimilarity`, off by default). Each record's
 * image (its dataset picture's training copy) and alt are embedded by an OpenAI-compatible embeddings
 * endpoint; a cosine similarity below the language's floor removes the record with its measure:
 * `text_operator = image-text-similarity`, `reason = low_image_text_similarity`, `text_measured` the
 * similarity, `text_threshold` the floor. A kept record gets the operator in its `text_passed`.
 *
 * Requests: images one each, as vLLM's chat-style embeddings input (`messages` with the image as a data
 * URL, and `imagePrompt` as text when set); alts in batches of `textBatch` as plain `input`. Every
 * vector is cached in `llm_cache` (endpoint URL, model, kind, dimensions, image size or prompt, input
 * hash), so a retry or a re-run pays nothing twice, and the endpoint's limits, retries and failure
 * classes are those of every paid call (llm/call.ts `paidCall`).
 *
 * Resumable: a record is judged once (its verdict is written in batches, with heartbeats); a retried
 * attempt takes the records without a verdict. The counts it returns are read from the verdicts.
 */
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { blobs } from '../../shared/blobs';
import { db } from '../../shared/db';
import { runConfig } from '../../run/run-record';
import { lookupCache, paidCall, storeAnswer } from '../../llm/call';
import { resolveEndpoint, type Endpoint } from '../../llm/endpoint';
import { jpegDataUrl } from '../../llm/image';
import { baseLanguage } from '../text/segment';
import type { ImageTextSimilarityConfig } from '../config';

export const SIMILARITY_OPERATOR = 'image-text-similarity';
export const SIMILARITY_REASON = 'low_image_text_similarity';
const PROMPT_VERSION = 'embed-v1';

export interface SimilarityPassResult {
  recordsIn: number;
  recordsRemoved: number;
  rejected: Record<string, number>;
}

/** The floor for a language: exact tag, then base language, then `minSimilarity`. */
export function similarityFloor(s: ImageTextSimilarityConfig, lang: string): number {
  return s.languages[lang] ?? s.languages[baseLanguage(lang)] ?? s.minSimilarity;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`embedding lengths differ: ${a.length} and ${b.length} (one model for images and texts?)`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

const toBase64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
function fromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(i * 4);
  return out;
}

function vectorOf(embedding: unknown): Float32Array {
  if (typeof embedding === 'string') return fromBase64(embedding);
  if (Array.isArray(embedding) && embedding.every((x) => typeof x === 'number')) return Float32Array.from(embedding as number[]);
  throw new Error('malformed embedding in the answer');
}

interface EmbeddingAnswer {
  data?: { index?: number; embedding?: unknown }[];
  usage?: { prompt_tokens?: number };
}

interface Job {
  kind: 'image' | 'text';
  inputHash: string;
  cacheKey: string;
}

function keyOf(endpoint: Endpoint, s: ImageTextSimilarityConfig, kind: 'image' | 'text', inputHash: string): string {
  const params = kind === 'image' ? { dimensions: s.dimensions ?? null, imageMaxSide: s.imageMaxSide, imagePrompt: s.imagePrompt } : { dimensions: s.dimensions ?? null };
  return createHash('sha256').update(JSON.stringify([endpoint.baseUrl, s.model, PROMPT_VERSION, kind, params, inputHash])).digest('hex');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface RecordRow {
  seq: number;
  alt: string;
  train_sha256: string;
  train_blob_key: string;
}

export async function similarityFilter(args: { runId: string; lang: string }): Promise<SimilarityPassResult> {
  const { runId, lang } = args;
  const config = await runConfig(runId);
  const s = config.filter.imageTextSimilarity;
  if (!s.enabled) return { recordsIn: 0, recordsRemoved: 0, rejected: {} };
  const ctx = Context.current();
  const endpoint = resolveEndpoint(config.llm, s.endpoint);
  const floor = similarityFloor(s, lang);
  const { rows } = await db().query<RecordRow>(
    `select f.seq, f.alt, fi.train_sha256, fi.train_blob_key
       from filter_records f
       join filter_images fi on fi.run_id = f.run_id and fi.lang = f.lang and fi.sha256 = f.image_sha256
      where f.run_id = $1 and f.lang = $2 and f.kept and fi.train_blob_key is not null
        and not ($3 = any(f.text_passed)) and f.text_operator is distinct from $3
      order by f.seq`,
    [runId, lang, SIMILARITY_OPERATOR],
  );
  let judged = 0;
  const beat = setInterval(() => ctx.heartbeat({ judged }), 1000);
  try {
    // Vectors: cached ones in one lookup, the rest asked for.
    const images = new Map<string, Job & { blobKey: string }>();
    const texts = new Map<string, Job & { text: string }>();
    for (const r of rows) {
      if (!images.has(r.train_sha256)) images.set(r.train_sha256, { kind: 'image', inputHash: r.train_sha256, cacheKey: keyOf(endpoint, s, 'image', r.train_sha256), blobKey: r.train_blob_key });
      const h = sha256(r.alt);
      if (!texts.has(h)) texts.set(h, { kind: 'text', inputHash: h, cacheKey: keyOf(endpoint, s, 'text', h), text: r.alt });
    }
    const vectors = new Map<string, Float32Array>();
    const cached = await lookupCache([...images.values(), ...texts.values()].map((j) => j.cacheKey));
    for (const [key, row] of cached.hits) vectors.set(key, fromBase64(row.content));
    const store = (job: Job, vec: Float32Array, tokens: number, standin: boolean) => {
      vectors.set(job.cacheKey, vec);
      return storeAnswer({
        cacheKey: job.cacheKey, endpoint: endpoint.baseUrl, model: s.model, promptVersion: PROMPT_VERSION, inputHash: `${job.kind}:${job.inputHash}`,
        variant: '', content: toBase64(vec), finishReason: null, promptTokens: tokens, completionTokens: 0, standin,
      });
    };
    const rejectedInput = new Map<string, string>(); // cache key -> why the endpoint refused it
    const ask = (tokens: number, body: Record<string, unknown>, onAnswer: (a: EmbeddingAnswer, standin: boolean) => Promise<void>) =>
      paidCall(endpoint, `model "${s.model}" or no embeddings`, tokens, ctx.cancellationSignal, () => ctx.heartbeat({ judged }), async () => {
        const { data, response } = await endpoint.client.post<EmbeddingAnswer>('/embeddings', { body, signal: ctx.cancellationSignal }).withResponse();
        if (!data || !Array.isArray(data.data)) throw new Error('malformed embeddings answer: no data');
        await onAnswer(data, response.headers.get('x-mella-standin') === '1');
      });
    const dims = s.dimensions !== undefined ? { dimensions: s.dimensions } : {};
    await Promise.all([
      ...[...images.values()].filter((j) => !vectors.has(j.cacheKey)).map(async (job) => {
        const url = await jpegDataUrl(await blobs().get(job.blobKey), s.imageMaxSide);
        const content = [{ type: 'image_url', image_url: { url } }, ...(s.imagePrompt ? [{ type: 'text', text: s.imagePrompt }] : [])];
        const out = await ask(800, { model: s.model, messages: [{ role: 'user', content }], encoding_format: 'float', ...dims }, (a, standin) =>
          store(job, vectorOf(a.data?.[0]?.embedding), a.usage?.prompt_tokens ?? 0, standin),
        );
        if (!out.ok) rejectedInput.set(job.cacheKey, out.detail);
      }),
      ...chunks([...texts.values()].filter((j) => !vectors.has(j.cacheKey)), s.textBatch).map(async (batch) => {
        const tokens = batch.reduce((n, j) => n + j.text.length / 4, 0);
        const out = await ask(tokens, { model: s.model, input: batch.map((j) => j.text), encoding_format: 'float', ...dims }, async (a, standin) => {
          const byIndex = new Map((a.data ?? []).map((d, i) => [d.index ?? i, d.embedding]));
          if (byIndex.size !== batch.length) throw new Error(`malformed embeddings answer: ${byIndex.size} vectors for ${batch.length} inputs`);
          const each = Math.ceil((a.usage?.prompt_tokens ?? 0) / batch.length);
          await Promise.all(batch.map((j, i) => store(j, vectorOf(byIndex.get(i)), each, standin)));
        });
        if (!out.ok) for (const j of batch) rejectedInput.set(j.cacheKey, out.detail);
      }),
    ]);

    // Verdicts, in batches.
    for (const batch of chunks(rows, 200)) {
      const passed: { seq: number; measured: number }[] = [];
      const failed: { seq: number; measured: number | null; detail: string | null }[] = [];
      for (const r of batch) {
        const imageKey = images.get(r.train_sha256)!.cacheKey;
        const textKey = texts.get(sha256(r.alt))!.cacheKey;
        const refused = rejectedInput.get(imageKey) ?? rejectedInput.get(textKey);
        if (refused !== undefined) {
          failed.push({ seq: r.seq, measured: null, detail: `the endpoint refused the input: ${refused}` });
          continue;
        }
        const sim = Math.round(cosine(vectors.get(imageKey)!, vectors.get(textKey)!) * 1e4) / 1e4;
        if (sim >= floor) passed.push({ seq: r.seq, measured: sim });
        else failed.push({ seq: r.seq, measured: sim, detail: null });
      }
      // A kept record keeps its similarity in text_stats too, for tuning the floor.
      await db().query(
        `update filter_records f set text_passed = f.text_passed || $5::text[],
                text_stats = coalesce(f.text_stats, '{}'::jsonb) || jsonb_build_object('imageTextSimilarity', t.sim)
           from unnest($3::int[], $4::float8[]) as t(seq, sim)
          where f.run_id = $1 and f.lang = $2 and f.seq = t.seq`,
        [runId, lang, passed.map((p) => p.seq), passed.map((p) => p.measured), [SIMILARITY_OPERATOR]],
      );
      for (const f of failed) {
        await db().query(
          `update filter_records set kept = false, text_kept = false, reason = $4, text_operator = $5, text_reason = $4, text_measured = $6, text_threshold = $7, text_detail = $8
            where run_id = $1 and lang = $2 and seq = $3`,
          [runId, lang, f.seq, f.measured === null ? 'similarity_request_rejected' : SIMILARITY_REASON, SIMILARITY_OPERATOR, JSON.stringify(f.measured), JSON.stringify(floor), f.detail],
        );
      }
      judged += batch.length;
      ctx.heartbeat({ judged });
    }
  } finally {
    clearInterval(beat);
  }
  // Counts from the stored verdicts: a retried attempt reports the whole pass.
  const counts = await db().query<{ kept: boolean; reason: string | null; n: string }>(
    `select kept, text_reason as reason, count(*) as n from filter_records
      where run_id = $1 and lang = $2 and ($3 = any(text_passed) or text_operator = $3) group by 1, 2`,
    [runId, lang, SIMILARITY_OPERATOR],
  );
  const result: SimilarityPassResult = { recordsIn: 0, recordsRemoved: 0, rejected: {} };
  for (const c of counts.rows) {
    const n = Number(c.n);
    result.recordsIn += n;
    if (!c.kept) {
      result.recordsRemoved += n;
      result.rejected[c.reason ?? 'unknown'] = (result.rejected[c.reason ?? 'unknown'] ?? 0) + n;
    }
  }
  return result;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
