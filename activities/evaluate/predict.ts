/**
 * Activity (mella-llm): the predictions of one model for one shard of an evaluation. Each sample's
 * request goes through `cachedChat` (cached by endpoint, model, prompt version, parameters and input;
 * within the endpoint's concurrency and rate limits; a 401/403 fails the activity at once, non-retryable).
 * Checkpoint: only samples without a stored prediction are asked; each prediction is stored as soon as
 * it arrives (upsert), and a heartbeat carries the count; a done shard returns its counts.
 */
import { setMaxListeners } from 'node:events';
import { Context, CancelledFailure } from '@temporalio/activity';
import { db } from '../shared/db';
import { ConfigError } from '../shared/config';
import { cachedChat } from '../llm/call';
import { resolveEndpoint } from '../llm/endpoint';
import { basicAnswerCheck } from '../llm/stage';
import { parseStandinMarker } from '../../infra/llm-standin/conventions';
import { evaluationRow } from './record';
import { buildEvalRequest } from './request';
import type { PredictShardResult } from './types';

interface ItemRow {
  sample_id: string;
  lang: string;
  source: string;
  instruction: string;
  image: string;
  image_sha256: string;
}

export async function evaluatePredictShard(a: { evalId: string; modelName: string; shardIndex: number }): Promise<PredictShardResult> {
  const { evalId, modelName, shardIndex } = a;
  const row = await evaluationRow(evalId);
  const config = row.config;
  const m = config.models.find((x) => x.name === modelName);
  if (!m) throw new ConfigError(`evaluation ${evalId} has no model "${modelName}"`);
  const { rows: items } = await db().query<ItemRow>(
    `select i.sample_id, i.lang, i.source, i.instruction, i.image, i.image_sha256
       from eval_items i
       left join eval_predictions p on p.eval_id = i.eval_id and p.sample_id = i.sample_id and p.model_name = $2
      where i.eval_id = $1 and i.shard_index = $3 and p.sample_id is null
      order by i.sample_id`,
    [evalId, modelName, shardIndex],
  );
  if (items.length === 0) return { ...(await shardCounts(evalId, modelName, shardIndex)), skipped: true };

  const ctx = Context.current();
  const endpoint = resolveEndpoint(config.llm, m.endpoint);
  let done = 0;
  const beat = () => ctx.heartbeat({ done });
  // The first failure (a refused key, an endpoint that keeps failing) stops the shard's other requests.
  const stop = new AbortController();
  // Every request in flight (and every backoff wait) listens on this signal, more than Node's default
  // of 10 at a concurrency above 10; each listener is removed when its request ends.
  setMaxListeners(0, stop.signal);
  const onCancel = () => stop.abort(ctx.cancellationSignal.reason);
  ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
  let firstError: unknown;

  const handle = async (item: ItemRow) => {
    const { messages, inputHash } = await buildEvalRequest(
      { sampleId: item.sample_id, lang: item.lang, instruction: item.instruction, image: item.image, imageSha256: item.image_sha256 },
      row.export_dir,
      { imageMaxSide: config.imageMaxSide, targetLanguageHint: m.targetLanguageHint },
    );
    const answer = await cachedChat({
      endpoint,
      model: m.model,
      promptVersion: config.promptVersion,
      messages,
      temperature: m.temperature,
      maxTokens: m.maxTokens,
      inputHash,
      signal: stop.signal,
      onWait: beat,
    });
    let prediction = '';
    let kept = false;
    let reason: string | null = null;
    let detail: string | null = null;
    let standin = false;
    if (answer.ok) {
      const marker = parseStandinMarker(answer.content);
      standin = answer.standin || marker.standin;
      prediction = marker.body.trim();
      kept = true;
      // Noted, not refused: an empty, refused or cut-off answer is what the model said, and is scored.
      const note = basicAnswerCheck(prediction, answer.finishReason);
      if (note) ({ reason, detail } = note);
    } else {
      reason = answer.reason;
      detail = answer.detail;
    }
    await db().query(
      `insert into eval_predictions (eval_id, model_name, sample_id, lang, source, prediction, kept, reason, detail, endpoint, model, cache_key, cached, standin,
         prompt_tokens, completion_tokens, shard_index)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
       on conflict (eval_id, model_name, sample_id) do nothing`,
      [
        evalId, modelName, item.sample_id, item.lang, item.source, prediction, kept, reason, detail?.slice(0, 500) ?? null, endpoint.baseUrl, m.model,
        answer.ok ? answer.cacheKey : null, answer.ok && answer.cached, standin,
        answer.ok && !answer.cached ? answer.promptTokens : 0, answer.ok && !answer.cached ? answer.completionTokens : 0, shardIndex,
      ],
    );
    done++;
    beat();
  };

  // The endpoint's limiter bounds requests in flight; the shard offers all its samples.
  await Promise.all(
    items.map(async (item) => {
      if (stop.signal.aborted) return;
      try {
        await handle(item);
      } catch (err) {
        if (!stop.signal.aborted) {
          firstError = err;
          stop.abort(err);
        }
      }
    }),
  );
  ctx.cancellationSignal.removeEventListener('abort', onCancel);
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('prediction shard cancelled; its stored predictions are kept');
  if (firstError !== undefined) throw firstError;
  return { ...(await shardCounts(evalId, modelName, shardIndex)), skipped: false };
}

async function shardCounts(evalId: string, modelName: string, shardIndex: number): Promise<Omit<PredictShardResult, 'skipped'>> {
  const { rows } = await db().query<{ n: string; cached: string; failed: string; standin: string }>(
    `select count(*) as n, count(*) filter (where cached) as cached, count(*) filter (where not kept) as failed, count(*) filter (where standin) as standin
       from eval_predictions where eval_id = $1 and model_name = $2 and shard_index = $3`,
    [evalId, modelName, shardIndex],
  );
  const r = rows[0]!;
  return { shardIndex, predictions: Number(r.n), cached: Number(r.cached), failed: Number(r.failed), standin: Number(r.standin) };
}
