/**
 * Activity (mella-cpu): scores every model's predictions per language and source (scoring.ts) and
 * stores them in `eval_scores` (replaced as a whole: a retry or a re-run scores the same predictions
 * the same way). A sample without an answer (request refused) is scored as an empty prediction.
 */
import { db, inTransaction } from '../shared/db';
import { evaluationRow } from './record';
import { scoreGroup } from './scoring';

export async function scoreEvaluation(a: { evalId: string }): Promise<{ scores: number }> {
  const row = await evaluationRow(a.evalId);
  const rows: { model: string; lang: string; source: string; metric: string; value: number; signature: string; n: number }[] = [];
  for (const m of row.config.models) {
    const { rows: pairs } = await db().query<{ lang: string; source: string; prediction: string | null; reference: string }>(
      `select i.lang, i.source, p.prediction, i.reference
         from eval_items i
         left join eval_predictions p on p.eval_id = i.eval_id and p.sample_id = i.sample_id and p.model_name = $2
        where i.eval_id = $1
        order by i.lang, i.source, i.sample_id`,
      [a.evalId, m.name],
    );
    const groups = new Map<string, { lang: string; source: string; predictions: string[]; references: string[] }>();
    for (const p of pairs) {
      const key = `${p.lang}\u0000${p.source}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { lang: p.lang, source: p.source, predictions: [], references: [] }));
      g.predictions.push(p.prediction ?? '');
      g.references.push(p.reference);
    }
    for (const g of groups.values()) {
      for (const s of scoreGroup(g.lang, g.source, g.predictions, g.references)) rows.push({ model: m.name, lang: g.lang, source: g.source, ...s });
    }
  }
  await inTransaction(async (client) => {
    await client.query('delete from eval_scores where eval_id = $1', [a.evalId]);
    for (const r of rows) {
      await client.query(
        'insert into eval_scores (eval_id, model_name, lang, source, metric, value, signature, n) values ($1, $2, $3, $4, $5, $6, $7, $8)',
        [a.evalId, r.model, r.lang, r.source, r.metric, r.value, r.signature, r.n],
      );
    }
  });
  return { scores: rows.length };
}
