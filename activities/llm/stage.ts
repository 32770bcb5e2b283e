/**
 * The mechanics the LLM stages (caption, translate) share: planning items into shards, and the shard
 * activity that asks the endpoint for each item, validates the answer, retries an invalid answer once
 * with the reason, records a rejection after that, and stores what each item cost.
 *
 * Checkpoint contract as in every stage: a done shard returns its recorded counts; a retried attempt
 * handles only items without an output; outputs are written in batches while a heartbeat carries the
 * count; the done-marker is written last, from the stored outputs. Paid answers are in `llm_cache`
 * (call.ts), so an attempt that dies mid-shard pays for nothing twice.
 */
import { setMaxListeners } from 'node:events';
import { Context, CancelledFailure } from '@temporalio/activity';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { analyzeTables, db, inTransaction } from '../shared/db';
import type { RunConfig } from '../shared/config';
import { runConfig } from '../run/run-record';
import type { ShardResult } from '../../workflows/types';
import { parseStandinMarker } from '../../infra/llm-standin/conventions';
import { cacheKeyOf, cachedChat, lookupCache, type CacheLookup, type ChatOutcome } from './call';
import { resolveEndpoint } from './endpoint';

export type LlmStageName = 'caption' | 'translate' | 'fuse';

export interface LlmStageSettings {
  endpoint: string;
  model: string;
  promptVersion: string;
  temperature: number;
  maxTokens: number;
  shardSize: number;
  window: number;
}

export type Validation = { ok: true; text: string } | { ok: false; reason: string; detail: string; text: string };

export interface LlmStageSpec<I extends { key: string }> {
  stage: LlmStageName;
  settings(config: RunConfig): LlmStageSettings;
  /** The tables `loadItems` joins besides llm_items and llm_outputs (analyzed once the stage is planned). */
  inputTables: readonly string[];
  /** Item keys of a language, in a stable order (planning). */
  planKeys(runId: string, lang: string): Promise<string[]>;
  /** The shard's items that have no output yet. */
  loadItems(runId: string, lang: string, shardIndex: number, config: RunConfig): Promise<I[]>;
  /**
   * The item's input hash without building the request (no image is read): lets the shard look up all
   * its items in the cache with one query. Must equal the `inputHash` that `buildRequest` returns.
   */
  inputHash?(item: I, lang: string, config: RunConfig): string;
  /** Messages for the item; `retry` carries the reason the previous answer was refused. */
  buildRequest(item: I, lang: string, config: RunConfig, retry?: { reason: string; detail: string }): Promise<{ messages: ChatCompletionMessageParam[]; inputHash: string }>;
  /** Judges the answer (stand-in marker already removed). */
  validate(item: I, answer: { text: string; finishReason: string | null }, lang: string, config: RunConfig): Promise<Validation> | Validation;
  sourceText?(item: I): string | null;
}

/** Activity body (mella-cpu): plans an LLM stage of one language; idempotent. */
export async function planLlmStage<I extends { key: string }>(spec: LlmStageSpec<I>, runId: string, lang: string): Promise<{ totalItems: number; shardCount: number; window: number }> {
  const settings = spec.settings(await runConfig(runId));
  const planned = await db().query<{ total_items: number; shard_count: number }>(
    'select total_items, shard_count from stage_plans where run_id = $1 and lang = $2 and stage = $3',
    [runId, lang, spec.stage],
  );
  if (planned.rows[0]) return { totalItems: planned.rows[0].total_items, shardCount: planned.rows[0].shard_count, window: settings.window };
  const keys = await spec.planKeys(runId, lang);
  const shardCount = Math.ceil(keys.length / settings.shardSize);
  await inTransaction(async (client) => {
    await client.query('delete from llm_items where run_id = $1 and stage = $2 and lang = $3', [runId, spec.stage, lang]);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await client.query(
        `insert into llm_items (run_id, stage, lang, item_key, shard_index)
         select $1, $2, $3, k, (($5::int + o - 1) / $4::int) from unnest($6::text[]) with ordinality as t(k, o)`,
        [runId, spec.stage, lang, settings.shardSize, i, batch],
      );
    }
    await client.query(
      `insert into stage_plans (run_id, lang, stage, total_items, shard_count, shard_size) values ($1, $2, $3, $4, $5, $6) on conflict do nothing`,
      [runId, lang, spec.stage, keys.length, shardCount, settings.shardSize],
    );
  });
  // The shards' item queries join these by key: the planner must know they are no longer empty.
  await analyzeTables(['llm_items', 'llm_outputs', ...spec.inputTables]);
  return { totalItems: keys.length, shardCount, window: settings.window };
}

interface Output {
  key: string;
  kept: boolean;
  reason: string | null;
  detail: string | null;
  text: string | null;
  sourceText: string | null;
  calls: number;
  cachedCalls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  standin: boolean;
}

const REFUSAL = /^\s*(i['’]m sorry|i am sorry|sorry,? (but )?i can(?:['’]|no)t|i can(?:['’]|no)t (help|assist|provide|describe)|i['’]m (unable|not able) to|as an ai\b)/i;

/** Checks every stage makes before its own: an answer at all, not a refusal, not cut off. */
export function basicAnswerCheck(text: string, finishReason: string | null): { reason: string; detail: string } | undefined {
  if (text.trim() === '') return { reason: 'empty_answer', detail: 'the model answered with no text' };
  if (REFUSAL.test(text)) return { reason: 'refusal', detail: text.slice(0, 120) };
  if (finishReason === 'length') return { reason: 'truncated', detail: 'the answer hit max_tokens' };
  return undefined;
}

const FLUSH_EVERY = 20;
const HEARTBEAT_MS = 1000;

/** Activity body (mella-llm): one shard of an LLM stage. */
export async function runLlmShard<I extends { key: string }>(spec: LlmStageSpec<I>, args: { runId: string; lang: string; shardIndex: number }): Promise<ShardResult> {
  const { runId, lang, shardIndex } = args;
  const started = Date.now();
  const done = await shardDone(spec.stage, runId, lang, shardIndex);
  if (done) return done;
  const ctx = Context.current();
  // Every request in flight (and every backoff wait) listens on this signal, more than Node's default
  // of 10 at any concurrency above 10; they are removed as they end, so this is no leak.
  setMaxListeners(0, ctx.cancellationSignal);
  const config = await runConfig(runId);
  const settings = spec.settings(config);
  const endpoint = resolveEndpoint(config.llm, settings.endpoint);
  const price = config.llm.prices[settings.model];
  const items = await spec.loadItems(runId, lang, shardIndex, config);

  let pending: Output[] = [];
  let written = (ctx.info.heartbeatDetails as { written?: number } | undefined)?.written ?? 0;
  let flushing = Promise.resolve();
  const flush = () => {
    const batch = pending;
    pending = [];
    flushing = flushing.then(async () => {
      if (batch.length) await writeOutputs(spec.stage, runId, lang, shardIndex, settings, endpoint.baseUrl, batch);
      written += batch.length;
      ctx.heartbeat({ written });
    });
    return flushing;
  };
  const timer = setInterval(() => void flush().catch(() => undefined), HEARTBEAT_MS);

  // One cache query for the shard (both variants of every item) instead of one a request.
  const identity = { endpoint, model: settings.model, promptVersion: settings.promptVersion, temperature: settings.temperature, maxTokens: settings.maxTokens };
  let prefetched: CacheLookup | undefined;
  if (spec.inputHash) {
    const keys: string[] = [];
    for (const item of items) {
      const inputHash = spec.inputHash(item, lang, config);
      for (const variant of ['', 'retry-1']) keys.push(cacheKeyOf({ ...identity, messages: [], inputHash, variant }));
    }
    prefetched = await lookupCache(keys);
  }

  const ask = async (item: I, retry?: { reason: string; detail: string }): Promise<ChatOutcome> => {
    const { messages, inputHash } = await spec.buildRequest(item, lang, config, retry);
    return cachedChat({
      ...identity,
      messages,
      inputHash,
      ...(retry ? { variant: 'retry-1' } : {}),
      signal: ctx.cancellationSignal,
      onWait: () => ctx.heartbeat({ written }),
      ...(prefetched ? { prefetched } : {}),
    });
  };

  const handle = async (item: I) => {
    const out: Output = {
      key: item.key, kept: false, reason: null, detail: null, text: null, sourceText: spec.sourceText?.(item) ?? null,
      calls: 0, cachedCalls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0, standin: false,
    };
    let retry: { reason: string; detail: string } | undefined;
    for (let round = 0; round < 2; round++) {
      const answer = await ask(item, retry);
      out.calls++;
      if (!answer.ok) {
        Object.assign(out, { kept: false, reason: answer.reason, detail: answer.detail });
        break;
      }
      if (answer.cached) out.cachedCalls++;
      else {
        out.promptTokens += answer.promptTokens;
        out.completionTokens += answer.completionTokens;
        if (price) out.costUsd += (answer.promptTokens * price.inputPerMillion + answer.completionTokens * price.outputPerMillion) / 1e6;
      }
      const marker = parseStandinMarker(answer.content);
      out.standin ||= answer.standin || marker.standin;
      const text = marker.body.trim();
      const basic = basicAnswerCheck(text, answer.finishReason);
      const verdict: Validation = basic ? { ok: false, ...basic, text } : await spec.validate(item, { text, finishReason: answer.finishReason }, lang, config);
      out.text = verdict.text;
      if (verdict.ok) {
        Object.assign(out, { kept: true, reason: null, detail: null });
        break;
      }
      Object.assign(out, { kept: false, reason: verdict.reason, detail: verdict.detail });
      retry = { reason: verdict.reason, detail: verdict.detail };
    }
    pending.push(out);
    if (pending.length >= FLUSH_EVERY) void flush().catch(() => undefined);
  };

  try {
    // The endpoint's own limiter bounds requests in flight; the shard just offers its items.
    await Promise.all(items.map((item) => (ctx.cancellationSignal.aborted ? undefined : handle(item))));
  } finally {
    clearInterval(timer);
    await flush();
  }
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`${spec.stage} shard cancelled; its finished items are kept`);
  return markShardDone(spec.stage, runId, lang, shardIndex, ctx.info.attempt, Date.now() - started);
}

async function writeOutputs(stage: LlmStageName, runId: string, lang: string, shardIndex: number, s: LlmStageSettings, endpoint: string, batch: Output[]) {
  const values: unknown[] = [];
  const rows = batch.map((o) => {
    const row = [
      runId, stage, lang, o.key, o.kept, o.reason, o.detail?.slice(0, 500) ?? null, o.text, o.sourceText, s.model, s.promptVersion, endpoint,
      o.calls, o.cachedCalls, o.promptTokens, o.completionTokens, o.costUsd, o.standin, shardIndex,
    ];
    const at = values.length;
    values.push(...row);
    return `(${row.map((_, i) => `$${at + i + 1}`).join(',')})`;
  });
  await db().query(
    `insert into llm_outputs (run_id, stage, lang, item_key, kept, reason, detail, text, source_text, model, prompt_version, endpoint,
       calls, cached_calls, prompt_tokens, completion_tokens, cost_usd, standin, shard_index)
     values ${rows.join(',')} on conflict do nothing`,
    values,
  );
}

async function shardDone(stage: LlmStageName, runId: string, lang: string, shardIndex: number): Promise<ShardResult | undefined> {
  const { rows } = await db().query<{ items_in: number; kept: number; rejected: Record<string, number> }>(
    'select items_in, kept, rejected from shards where run_id = $1 and lang = $2 and stage = $3 and shard_index = $4',
    [runId, lang, stage, shardIndex],
  );
  const r = rows[0];
  return r && { shardIndex, in: r.items_in, kept: r.kept, rejected: r.rejected, skipped: true };
}

async function markShardDone(stage: LlmStageName, runId: string, lang: string, shardIndex: number, attempt: number, durationMs: number): Promise<ShardResult> {
  const { rows } = await db().query<{ kept: boolean; reason: string | null; n: string }>(
    `select kept, reason, count(*) as n from llm_outputs where run_id = $1 and stage = $2 and lang = $3 and shard_index = $4 group by 1, 2`,
    [runId, stage, lang, shardIndex],
  );
  const result: ShardResult = { shardIndex, in: 0, kept: 0, rejected: {}, skipped: false };
  for (const row of rows) {
    const n = Number(row.n);
    result.in += n;
    if (row.kept) result.kept += n;
    else result.rejected[row.reason ?? 'unknown'] = (result.rejected[row.reason ?? 'unknown'] ?? 0) + n;
  }
  const total = await db().query<{ n: string }>(
    'select count(*) as n from llm_items where run_id = $1 and stage = $2 and lang = $3 and shard_index = $4',
    [runId, stage, lang, shardIndex],
  );
  if (Number(total.rows[0]!.n) !== result.in) throw new Error(`${stage} shard ${lang}/${shardIndex}: ${result.in} outputs for ${total.rows[0]!.n} items`);
  await db().query(
    `insert into shards (run_id, lang, stage, shard_index, items_in, kept, rejected, attempt, duration_ms) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict do nothing`,
    [runId, lang, stage, shardIndex, result.in, result.kept, JSON.stringify(result.rejected), attempt, durationMs],
  );
  return result;
}
