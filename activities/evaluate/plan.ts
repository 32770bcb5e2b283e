/**
 * Plans an evaluation: reads the export's manifest once, keeps the samples of the split (and languages,
 * up to `limitPerLanguage` each, in manifest order), and stores them as eval items in shards of
 * `shardSize`. Idempotent: a planned evaluation returns its stored plan.
 */
import { db, inTransaction } from '../shared/db';
import { readManifest } from '../merge/manifest';
import { evaluationRow } from './record';

export interface EvalPlan {
  items: number;
  shardCount: number;
  perLanguage: Record<string, number>;
}

interface Item {
  id: string;
  lang: string;
  source: string;
  instruction: string;
  answer: string;
  image: string;
  imageSha256: string;
}

/** Activity (mella-cpu). */
export async function planEvaluation(a: { evalId: string }): Promise<EvalPlan> {
  const row = await evaluationRow(a.evalId);
  if (row.shard_count !== null) return storedPlan(a.evalId, row.shard_count);
  const c = row.config;
  const langs = c.languages ? new Set(c.languages) : undefined;
  const perLanguage: Record<string, number> = {};
  const items: Item[] = [];
  for await (const line of readManifest(row.export_dir)) {
    if (line.split !== c.split || (langs && !langs.has(line.lang))) continue;
    const n = perLanguage[line.lang] ?? 0;
    if (c.limitPerLanguage !== undefined && n >= c.limitPerLanguage) continue;
    perLanguage[line.lang] = n + 1;
    items.push({ id: line.id, lang: line.lang, source: line.source, instruction: line.instruction, answer: line.answer, image: line.image, imageSha256: line.imageSha256 });
  }
  // Shards by a stable order (language, then id) so every shard holds one or few languages.
  items.sort((x, y) => (x.lang < y.lang ? -1 : x.lang > y.lang ? 1 : x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const shardCount = Math.ceil(items.length / c.shardSize);
  await inTransaction(async (client) => {
    await client.query('delete from eval_items where eval_id = $1', [a.evalId]);
    for (let i = 0; i < items.length; i += 500) {
      const batch = items.slice(i, i + 500);
      await client.query(
        `insert into eval_items (eval_id, sample_id, lang, source, shard_index, instruction, reference, image, image_sha256)
         select $1, t.id, t.lang, t.source, (($2::int + t.o - 1) / $3::int), t.instruction, t.answer, t.image, t.sha
           from unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) with ordinality as t(id, lang, source, instruction, answer, image, sha, o)`,
        [a.evalId, i, c.shardSize, batch.map((b) => b.id), batch.map((b) => b.lang), batch.map((b) => b.source), batch.map((b) => b.instruction), batch.map((b) => b.answer), batch.map((b) => b.image), batch.map((b) => b.imageSha256)],
      );
    }
    await client.query('update evaluations set items = $2, shard_count = $3, updated_at = now() where eval_id = $1', [a.evalId, items.length, shardCount]);
  });
  return { items: items.length, shardCount, perLanguage };
}

async function storedPlan(evalId: string, shardCount: number): Promise<EvalPlan> {
  const { rows } = await db().query<{ lang: string; n: string }>('select lang, count(*) as n from eval_items where eval_id = $1 group by lang order by lang', [evalId]);
  const perLanguage = Object.fromEntries(rows.map((r) => [r.lang, Number(r.n)]));
  return { items: Object.values(perLanguage).reduce((x, y) => x + y, 0), shardCount, perLanguage };
}
