/**
 * The optional `fuse` stage (off by default): the paper's "thick description" as its own sample kind.
 * For each record the filter stage kept (an image with its native alt), a multimodal model writes a
 * detailed description directly in the target language, with the native alt text as context (names,
 * places, dishes the picture alone cannot tell). The prompt carries the stand-in's conventions
 * (`Target language:` and `Alt text:` lines), which a real model reads as instructions.
 */
import { createHash } from 'node:crypto';
import { blobs } from '../shared/blobs';
import { db } from '../shared/db';
import { altTextLine, targetLanguageLine } from '../../infra/llm-standin/conventions';
import { languageIdConfigSchema, languageIdOperator } from '../filter/text/language-id';
import { comparisonKey, graphemeCount } from '../filter/text/segment';
import { jpegDataUrl } from '../llm/image';
import { planLlmStage, runLlmShard, type LlmStageSpec } from '../llm/stage';
import { languageName } from '../translate/prompts';

interface FuseItem {
  key: string; // filter_records.seq
  alt: string;
  trainSha256: string;
  trainBlobKey: string;
}

const languageId = languageIdConfigSchema.parse({});

export const FUSE_PROMPTS: Readonly<Record<string, { system(lang: string, name: string): string; user(name: string): string }>> = {
  'fuse-v1': {
    system: (lang, name) =>
      [
        `You describe images for a ${name} multimodal dataset. Write a detailed, factual description of the image in ${name},`,
        'as continuous prose of 3 to 6 sentences: the main subject, people and objects, the setting, visible text, colours and style.',
        'The alt text a native speaker wrote for the image is given: use it for names, places and things the picture alone cannot tell,',
        'and do not contradict the image. Output only the description.',
        targetLanguageLine(lang),
      ].join('\n'),
    user: (name) => `Describe this image in detail in ${name}.`,
  },
};

export const fuseSpec: LlmStageSpec<FuseItem> = {
  stage: 'fuse',
  inputTables: ['filter_records', 'filter_images'],
  settings: (c) => c.fuse,
  async planKeys(runId, lang) {
    const { rows } = await db().query<{ seq: number }>(
      `select f.seq from filter_records f join filter_images i on i.run_id = f.run_id and i.lang = f.lang and i.sha256 = f.image_sha256
        where f.run_id = $1 and f.lang = $2 and f.kept and i.train_blob_key is not null order by f.seq`,
      [runId, lang],
    );
    return rows.map((r) => String(r.seq));
  },
  async loadItems(runId, lang, shardIndex) {
    const { rows } = await db().query<{ key: string; alt: string; train_sha256: string; train_blob_key: string }>(
      `select i.item_key as key, f.alt, fi.train_sha256, fi.train_blob_key
         from llm_items i
         join filter_records f on f.run_id = i.run_id and f.seq = i.item_key::int
         join filter_images fi on fi.run_id = f.run_id and fi.lang = f.lang and fi.sha256 = f.image_sha256
         left join llm_outputs o on o.run_id = i.run_id and o.stage = i.stage and o.lang = i.lang and o.item_key = i.item_key
        where i.run_id = $1 and i.stage = 'fuse' and i.lang = $2 and i.shard_index = $3 and o.item_key is null
        order by i.item_key`,
      [runId, lang, shardIndex],
    );
    return rows.map((r) => ({ key: r.key, alt: r.alt, trainSha256: r.train_sha256, trainBlobKey: r.train_blob_key }));
  },
  inputHash: (item, lang, config) => createHash('sha256').update(JSON.stringify([item.trainSha256, config.fuse.imageMaxSide, item.alt, lang])).digest('hex'),
  async buildRequest(item, lang, config, retry) {
    const c = config.fuse;
    const prompt = FUSE_PROMPTS[c.promptVersion];
    if (!prompt) throw new Error(`unknown fuse prompt version "${c.promptVersion}"`);
    const name = languageName(lang);
    const url = await jpegDataUrl(await blobs().get(item.trainBlobKey), c.imageMaxSide);
    const system = prompt.system(lang, name) + (retry ? `\n\nYour previous answer was rejected (${retry.reason}: ${retry.detail}). Answer again in ${name} only.` : '');
    return {
      inputHash: fuseSpec.inputHash!(item, lang, config),
      messages: [
        { role: 'system', content: system },
        {
          role: 'user',
          content: [
            { type: 'text', text: `${prompt.user(name)}\n${altTextLine(item.alt)}` },
            { type: 'image_url', image_url: { url } },
          ],
        },
      ],
    };
  },
  async validate(item, answer, lang, config) {
    const text = answer.text;
    if (comparisonKey(text) === comparisonKey(item.alt)) return { ok: false, reason: 'copy_of_alt', detail: 'the answer repeats the alt text', text };
    const n = graphemeCount(text, lang);
    if (n < config.fuse.minGraphemes) return { ok: false, reason: 'too_short', detail: `${n} graphemes < ${config.fuse.minGraphemes}`, text };
    const id = await languageIdOperator.apply({ text, raw: text, lang }, languageId, {});
    if (!id.keep) return { ok: false, reason: id.reason, detail: id.detail ?? '', text };
    return { ok: true, text };
  },
  sourceText: (item) => item.alt,
};

/** Activity (mella-cpu): plans the fuse stage of a language. */
export const planFuse = (a: { runId: string; lang: string }) => planLlmStage(fuseSpec, a.runId, a.lang);
/** Activity (mella-llm): one shard of fused descriptions. */
export const fuseShard = (a: { runId: string; lang: string; shardIndex: number }) => runLlmShard(fuseSpec, a);
