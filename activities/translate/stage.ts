/**
 * The translate stage: each kept caption of a language, translated into that language (the second
 * half of the language source, D_ling). Any chat model behind an OpenAI-compatible endpoint serves; a
 * dedicated MT service fits behind the same endpoint interface.
 */
import { createHash } from 'node:crypto';
import { db } from '../shared/db';
import { ConfigError } from '../shared/config';
import { planLlmStage, runLlmShard, type LlmStageSpec } from '../llm/stage';
import { baseLanguage } from '../filter/text/segment';
import { languageName, translatePrompt } from './prompts';
import { validateTranslation } from './validate';

interface TranslateItem {
  key: string; // image sha256
  caption: string;
}

function glossaryFor(glossary: Record<string, Record<string, string>>, lang: string): Record<string, string> {
  return glossary[lang] ?? glossary[baseLanguage(lang)] ?? {};
}

export const translateSpec: LlmStageSpec<TranslateItem> = {
  stage: 'translate',
  inputTables: [],
  settings: (c) => c.translate,
  async planKeys(runId, lang) {
    const { rows } = await db().query<{ item_key: string }>(
      `select item_key from llm_outputs where run_id = $1 and stage = 'caption' and lang = $2 and kept order by item_key`,
      [runId, lang],
    );
    return rows.map((r) => r.item_key);
  },
  async loadItems(runId, lang, shardIndex) {
    const { rows } = await db().query<{ key: string; caption: string }>(
      `select i.item_key as key, c.text as caption
         from llm_items i
         join llm_outputs c on c.run_id = i.run_id and c.stage = 'caption' and c.lang = i.lang and c.item_key = i.item_key
         left join llm_outputs o on o.run_id = i.run_id and o.stage = i.stage and o.lang = i.lang and o.item_key = i.item_key
        where i.run_id = $1 and i.stage = 'translate' and i.lang = $2 and i.shard_index = $3 and o.item_key is null
        order by i.item_key`,
      [runId, lang, shardIndex],
    );
    return rows;
  },
  inputHash: (item, lang, config) => createHash('sha256').update(JSON.stringify([lang, glossaryFor(config.translate.glossary, lang), item.caption])).digest('hex'),
  async buildRequest(item, lang, config, retry) {
    const t = config.translate;
    let prompt;
    try {
      prompt = translatePrompt(t.promptVersion);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    const name = languageName(lang);
    const glossary = glossaryFor(t.glossary, lang);
    const system = prompt.system(lang, name, glossary) + (retry ? `\n\n${prompt.retry(retry.reason, retry.detail, name)}` : '');
    return {
      inputHash: translateSpec.inputHash!(item, lang, config),
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: item.caption },
      ],
    };
  },
  validate: (item, answer, lang, config) => validateTranslation(item.caption, answer.text, lang, config.translate),
  sourceText: (item) => item.caption,
};

/** Activity (mella-cpu): plans the translate stage of a language. */
export const planTranslate = (a: { runId: string; lang: string }) => planLlmStage(translateSpec, a.runId, a.lang);
/** Activity (mella-llm): one shard of translations. */
export const translateShard = (a: { runId: string; lang: string; shardIndex: number }) => runLlmShard(translateSpec, a);
