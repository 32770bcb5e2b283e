/**
 * The caption stage: for each image the filter stage kept in a language, a detailed English
 * description from a multimodal model (the language source, D_ling, before translation). The image is
 * sent as a JPEG data URL: the normalized training copy as it is when it is a JPEG within `imageMaxSide`,
 * else resized and re-encoded (activities/llm/image.ts). Captions do not depend on the target
 * language, so an image kept in two languages is paid for once (the second is a cache hit).
 */
import { blobs } from '../shared/blobs';
import { db } from '../shared/db';
import type { RunConfig } from '../shared/config';
import { ConfigError } from '../shared/config';
import { languageIdConfigSchema, languageIdOperator } from '../filter/text/language-id';
import { words } from '../filter/text/segment';
import { jpegDataUrl } from '../llm/image';
import { planLlmStage, runLlmShard, type LlmStageSpec } from '../llm/stage';
import { captionPrompt } from './prompts';

interface CaptionItem {
  key: string; // original image sha256
  trainSha256: string;
  trainBlobKey: string;
}

const languageId = languageIdConfigSchema.parse({});

export const captionSpec: LlmStageSpec<CaptionItem> = {
  stage: 'caption',
  inputTables: ['filter_images'],
  settings: (c) => c.caption,
  async planKeys(runId, lang) {
    const { rows } = await db().query<{ sha256: string }>(
      'select sha256 from filter_images where run_id = $1 and lang = $2 and kept order by sha256',
      [runId, lang],
    );
    return rows.map((r) => r.sha256);
  },
  async loadItems(runId, lang, shardIndex) {
    const { rows } = await db().query<{ key: string; train_sha256: string; train_blob_key: string }>(
      `select i.item_key as key, f.train_sha256, f.train_blob_key
         from llm_items i
         join filter_images f on f.run_id = i.run_id and f.lang = i.lang and f.sha256 = i.item_key
         left join llm_outputs o on o.run_id = i.run_id and o.stage = i.stage and o.lang = i.lang and o.item_key = i.item_key
        where i.run_id = $1 and i.stage = 'caption' and i.lang = $2 and i.shard_index = $3 and o.item_key is null
        order by i.item_key`,
      [runId, lang, shardIndex],
    );
    return rows.map((r) => ({ key: r.key, trainSha256: r.train_sha256, trainBlobKey: r.train_blob_key }));
  },
  // Same picture, same size sent: same answer (the training copy's hash plus the size sent).
  inputHash: (item, _lang, config) => `${item.trainSha256}:${config.caption.imageMaxSide}`,
  async buildRequest(item, _lang, config: RunConfig, retry) {
    const c = config.caption;
    let prompt;
    try {
      prompt = captionPrompt(c.promptVersion);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    const url = await jpegDataUrl(await blobs().get(item.trainBlobKey), c.imageMaxSide);
    const system = retry ? `${prompt.system}\n\n${prompt.retry(retry.reason, retry.detail)}` : prompt.system;
    return {
      inputHash: captionSpec.inputHash!(item, _lang, config),
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: [{ type: 'text', text: prompt.user }, { type: 'image_url', image_url: { url } }] },
      ],
    };
  },
  async validate(_item, answer, _lang, config) {
    const c = config.caption;
    const n = words(answer.text, c.sourceLanguage).length;
    if (n < c.minWords) return { ok: false, reason: 'too_short', detail: `${n} words < ${c.minWords}`, text: answer.text };
    if (n > c.maxWords) return { ok: false, reason: 'too_long', detail: `${n} words > ${c.maxWords}`, text: answer.text };
    const id = await languageIdOperator.apply({ text: answer.text, raw: answer.text, lang: c.sourceLanguage }, languageId, {});
    if (!id.keep) return { ok: false, reason: id.reason, detail: `${id.detail ?? ''} (expected ${c.sourceLanguage})`, text: answer.text };
    return { ok: true, text: answer.text };
  },
};

/** Activity (mella-cpu): plans the caption stage of a language. */
export const planCaption = (a: { runId: string; lang: string }) => planLlmStage(captionSpec, a.runId, a.lang);
/** Activity (mella-llm): one shard of captions. */
export const captionShard = (a: { runId: string; lang: string; shardIndex: number }) => runLlmShard(captionSpec, a);
