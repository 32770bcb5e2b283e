/**
 * One paid call, never paid twice: a chat completion looked up in the PostgreSQL cache first (or in a
 * batched lookup the shard made for all its items), keyed by endpoint URL, model, prompt version,
 * parameters and input hash; otherwise sent within the endpoint's limits, retried with exponential
 * backoff that honours `Retry-After`, and stored (in group commits) before its concurrency slot is freed.
 *
 * Failures are classified:
 *  - 401/403 (the key) and 404 (the model or URL): the configuration is wrong; non-retryable failure
 *    of the activity (`EndpointAuthError`, `EndpointConfigError`), the run fails with the message;
 *  - 400/413/422: this input was refused; returned as a rejection of the item, not retried;
 *  - 408/409/429, 5xx, timeouts, connection errors, malformed bodies: retried up to `maxAttempts`,
 *    then the activity attempt fails (Temporal retries it later; answers already cached are kept).
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { db, dbAsyncCommit } from '../shared/db';
import type { Endpoint } from './endpoint';

export interface ChatRequest {
  endpoint: Endpoint;
  model: string;
  promptVersion: string;
  messages: ChatCompletionMessageParam[];
  temperature: number;
  maxTokens: number;
  /** sha256 (or any stable id) of the input the messages were built from. */
  inputHash: string;
  /** Distinguishes prompts built from the same input (a validation retry). */
  variant?: string;
  signal?: AbortSignal;
  /** Called while waiting (backoff, rate limits), so a long wait still heartbeats. */
  onWait?: () => void;
  /**
   * The result of a batched cache lookup made for this request's key shortly before (`lookupCache`):
   * when it holds the key, the single lookup is skipped (a hit is served, a miss is sent).
   */
  prefetched?: CacheLookup;
}

interface CachedRow {
  content: string;
  finish_reason: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  standin: boolean;
}

/** What one batched lookup found: the keys it asked about, and the answers among them. */
export interface CacheLookup {
  asked: ReadonlySet<string>;
  hits: ReadonlyMap<string, CachedRow>;
}

/** One query for many cache keys (a shard's items, both variants), instead of one query a request. */
export async function lookupCache(keys: readonly string[]): Promise<CacheLookup> {
  const asked = new Set(keys);
  const hits = new Map<string, CachedRow>();
  if (asked.size === 0) return { asked, hits };
  const { rows } = await db().query<CachedRow & { cache_key: string }>(
    'select cache_key, content, finish_reason, prompt_tokens, completion_tokens, standin from llm_cache where cache_key = any($1::text[])',
    [[...asked]],
  );
  for (const row of rows) hits.set(row.cache_key, row);
  return { asked, hits };
}

export interface CacheRow {
  cacheKey: string;
  endpoint: string;
  model: string;
  promptVersion: string;
  inputHash: string;
  variant: string;
  content: string;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
  standin: boolean;
}

/**
 * Answers are written in groups ("group commit"): up to CACHE_WRITERS inserts are on their way at once,
 * and the answers that arrive while all of them are busy queue up and go in the next insert together.
 * Each caller waits until its own row is committed, so the answer is stored before the caller releases
 * its concurrency slot, exactly as with one insert per answer; at 32 requests in flight this is one
 * statement for several answers, and an answer seldom waits for another group's statement to finish.
 * The inserts go through `dbAsyncCommit` (no wait for the WAL flush): a killed worker loses nothing that
 * was inserted; only a crash of PostgreSQL itself could lose the last fraction of a second of answers,
 * which would then be paid for again.
 */
const CACHE_WRITERS = 3;
let cacheQueue: { row: CacheRow; resolve: () => void; reject: (e: unknown) => void }[] = [];
let cacheWriters = 0;

export function storeAnswer(row: CacheRow): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    cacheQueue.push({ row, resolve, reject });
    if (cacheWriters < CACHE_WRITERS) void writeCacheQueue();
  });
}

async function writeCacheQueue(): Promise<void> {
  cacheWriters++;
  try {
    while (cacheQueue.length > 0) {
      const batch = cacheQueue;
      cacheQueue = [];
      const rows = batch.map((b) => b.row);
      try {
        await dbAsyncCommit().query(
          `insert into llm_cache (cache_key, endpoint, model, prompt_version, input_hash, variant, content, finish_reason, prompt_tokens, completion_tokens, standin)
           select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::int[], $11::boolean[])
           on conflict do nothing`,
          [
            rows.map((r) => r.cacheKey), rows.map((r) => r.endpoint), rows.map((r) => r.model), rows.map((r) => r.promptVersion),
            rows.map((r) => r.inputHash), rows.map((r) => r.variant), rows.map((r) => r.content), rows.map((r) => r.finishReason),
            rows.map((r) => r.promptTokens), rows.map((r) => r.completionTokens), rows.map((r) => r.standin),
          ],
        );
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
  } finally {
    cacheWriters--;
  }
}

export type ChatOutcome =
  | {
      ok: true;
      content: string;
      finishReason: string | null;
      promptTokens: number;
      completionTokens: number;
      /** Served from the cache: nothing was paid for it now. */
      cached: boolean;
      /** Answered by the project's stand-in server (response header x-mella-standin). */
      standin: boolean;
      cacheKey: string;
      attempts: number;
    }
  | { ok: false; reason: 'request_rejected'; detail: string; attempts: number };

export function cacheKeyOf(r: ChatRequest): string {
  const identity = [r.endpoint.baseUrl, r.model, r.promptVersion, { temperature: r.temperature, maxTokens: r.maxTokens }, r.inputHash, r.variant ?? ''];
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** Rough token estimate for the rate limiter: 4 characters a token, 800 per image, plus the answer budget. */
function estimateTokens(r: ChatRequest): number {
  let n = r.maxTokens;
  for (const m of r.messages) {
    const content = (m as { content?: unknown }).content;
    if (typeof content === 'string') n += content.length / 4;
    else if (Array.isArray(content)) for (const part of content) n += part?.type === 'image_url' ? 800 : String(part?.text ?? '').length / 4;
  }
  return n;
}

const sleep = (ms: number, signal?: AbortSignal, onWait?: () => void) =>
  new Promise<void>((resolve, reject) => {
    const beat = onWait ? setInterval(onWait, 1000) : undefined;
    const done = () => {
      clearTimeout(t);
      if (beat) clearInterval(beat);
      signal?.removeEventListener('abort', abort);
    };
    const abort = () => {
      done();
      reject(signal!.reason ?? new Error('aborted'));
    };
    const t = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener('abort', abort, { once: true });
  });

/** Seconds or HTTP date of a Retry-After header (or retry-after-ms), in ms. */
export function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const v = headers?.get('retry-after');
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function backoff(attempt: number, base: number, max: number): number {
  const exp = Math.min(max, base * 2 ** (attempt - 1));
  return exp / 2 + Math.random() * (exp / 2); // "equal jitter"
}

/**
 * A model's text as PostgreSQL can store it: NUL (U+0000), which no `text` value may hold, becomes
 * U+FFFD. A small or broken model does emit it (the demo's tiny random fine-tune did); stored as it
 * came, the insert failed, and with it every answer of the same group commit, each then paid again.
 */
export function withoutNul(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);

export async function cachedChat(r: ChatRequest): Promise<ChatOutcome> {
  const cacheKey = cacheKeyOf(r);
  const h = r.prefetched?.asked.has(cacheKey)
    ? r.prefetched.hits.get(cacheKey)
    : (
        await db().query<CachedRow>('select content, finish_reason, prompt_tokens, completion_tokens, standin from llm_cache where cache_key = $1', [cacheKey])
      ).rows[0];
  if (h) {
    return { ok: true, content: h.content, finishReason: h.finish_reason, promptTokens: h.prompt_tokens, completionTokens: h.completion_tokens, cached: true, standin: h.standin, cacheKey, attempts: 0 };
  }
  const { endpoint } = r;
  // The answer is stored before the endpoint's slot is given back: answers paid for and not yet in
  // the cache never outnumber `concurrency`, so a worker killed at any moment loses at most that many.
  const out = await paidCall(endpoint, `model "${r.model}" or no chat completions`, estimateTokens(r), r.signal, r.onWait, async () => {
    const { data, response } = await endpoint.client.chat.completions
      .create({ model: r.model, messages: r.messages, temperature: r.temperature, max_tokens: r.maxTokens }, { signal: r.signal })
      .withResponse();
    if (!data || !Array.isArray(data.choices)) throw new Error('malformed completion: no choices');
    const choice = data.choices[0];
    const answer = {
      content: withoutNul(choice?.message?.content ?? ''),
      finishReason: choice?.finish_reason ?? null,
      promptTokens: data.usage?.prompt_tokens ?? 0,
      completionTokens: data.usage?.completion_tokens ?? 0,
      standin: response.headers.get('x-mella-standin') === '1',
    };
    // Every answer is kept, an empty or refused one too: it was paid for, and its validation decides.
    await storeAnswer({ cacheKey, endpoint: endpoint.baseUrl, model: r.model, promptVersion: r.promptVersion, inputHash: r.inputHash, variant: r.variant ?? '', ...answer });
    return answer;
  });
  return out.ok ? { ok: true, ...out.value, cached: false, cacheKey, attempts: out.attempts } : out;
}

/**
 * One paid request with the endpoint's limits, retries and failure classification (module comment):
 * `send` runs inside the endpoint's concurrency slot (store what was paid for before returning).
 * `what` completes "has no ..." in the message of a 404.
 */
export async function paidCall<T>(
  endpoint: Endpoint,
  what: string,
  tokens: number,
  signal: AbortSignal | undefined,
  onWait: (() => void) | undefined,
  send: () => Promise<T>,
): Promise<{ ok: true; value: T; attempts: number } | { ok: false; reason: 'request_rejected'; detail: string; attempts: number }> {
  const cfg = endpoint.config;
  let lastError = '';
  for (let attempt = 1; attempt <= cfg.maxAttempts; attempt++) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    let waitMs: number | undefined;
    try {
      return { ok: true, value: await endpoint.limited(tokens, send), attempts: attempt };
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof OpenAI.APIError && err.status !== undefined) {
        const status = err.status;
        if (status === 401 || status === 403) {
          throw ApplicationFailure.nonRetryable(`LLM endpoint "${endpoint.name}" (${endpoint.baseUrl}) refused the API key: HTTP ${status}`, 'EndpointAuthError');
        }
        if (status === 404) {
          throw ApplicationFailure.nonRetryable(`LLM endpoint "${endpoint.name}" (${endpoint.baseUrl}) has no ${what}: HTTP 404`, 'EndpointConfigError');
        }
        if (status === 400 || status === 413 || status === 422) return { ok: false, reason: 'request_rejected', detail: `HTTP ${status}: ${firstLine(err)}`, attempts: attempt };
        waitMs = retryAfterMs(err.headers as Headers | undefined);
        lastError = `HTTP ${status}: ${firstLine(err)}`;
      } else {
        lastError = firstLine(err);
      }
    }
    if (attempt < cfg.maxAttempts) await sleep(Math.min(cfg.backoffMaxMs, waitMs ?? backoff(attempt, cfg.backoffBaseMs, cfg.backoffMaxMs)), signal, onWait);
  }
  throw new Error(`LLM endpoint "${endpoint.name}" failed ${cfg.maxAttempts} times; last: ${lastError}`);
}
