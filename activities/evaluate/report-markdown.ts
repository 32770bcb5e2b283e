/** report.md: the evaluation as Markdown tables (every text escaped: model names and paths are user input). */
import { escapeMarkdown as md } from '../merge/card';
import { formatValue, type EvaluationReport } from './report-data';
import { METRICS } from './scoring';

export function standinBannerText(r: EvaluationReport): string | undefined {
  if (r.standinPredictions === 0) return undefined;
  return `STAND-IN OUTPUT: ${r.standinPredictions} of ${r.totalPredictions} predictions came from the project's stand-in server, not from a model. These scores exercise the pipeline; they say nothing about any model.`;
}

export function renderReportMarkdown(r: EvaluationReport): string {
  const out: string[] = [`# Evaluation ${md(r.evalId)}`, ''];
  const banner = standinBannerText(r);
  if (banner) out.push(`> **${md(banner)}**`, '');
  out.push(
    `Dataset ${r.versionId ? `version \`${md(r.versionId)}\`` : 'export'} at \`${md(r.exportDir)}\`, split **${md(r.split)}**, ${r.items} samples.`,
    r.baseline ? `Deltas are each model minus the baseline **${md(r.baseline)}**.` : 'No baseline model: no deltas.',
    '',
    '## Models',
    '',
    '| model | role | model id | endpoint | predictions | no answer | cached | stand-in | tokens (prompt / completion) |',
    '| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const m of r.models) {
    out.push(`| ${md(m.name)} | ${m.role} | ${md(m.model)} | ${md(m.endpoints.join(', ') || '–')} | ${m.predictions} | ${m.failed} | ${m.cached} | ${m.standin} | ${m.promptTokens} / ${m.completionTokens} |`);
  }
  out.push('', '## Samples', '', '| language | source | samples |', '| --- | --- | ---: |');
  for (const [lang, bySource] of Object.entries(r.perLanguage)) for (const [source, n] of Object.entries(bySource)) out.push(`| ${md(lang)} | ${md(source)} | ${n} |`);

  const others = r.models.filter((m) => m.name !== r.baseline).map((m) => m.name);
  const order = [...(r.baseline ? [r.baseline] : []), ...others];
  for (const metric of METRICS) {
    const rows = r.rows.filter((x) => x.metric === metric);
    if (!rows.length) continue;
    out.push('', `## ${rows[0]!.label} (0–${rows[0]!.scale})`, '');
    const head = ['language', 'source', 'n', ...order.map((n) => (n === r.baseline ? `${md(n)} (baseline)` : md(n))), ...(r.baseline ? others.map((n) => `Δ ${md(n)}`) : [])];
    out.push(`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`);
    for (const x of rows) {
      const cells = [md(x.lang), md(x.source), String(x.n), ...order.map((n) => formatValue(x.values[n], x.scale)), ...(r.baseline ? others.map((n) => formatValue(x.delta[n], x.scale, true)) : [])];
      out.push(`| ${cells.join(' | ')} |`);
    }
  }
  out.push('', '## Signatures', '');
  const sigs = new Map<string, Set<string>>();
  for (const x of r.rows) (sigs.get(x.label) ?? sigs.set(x.label, new Set()).get(x.label)!).add(x.signature);
  for (const [label, set] of sigs) for (const s of [...set].sort()) out.push(`- ${md(label)}: \`${s.replace(/`/g, "'")}\``);
  out.push(
    '',
    'BLEU: sacrebleu-compatible corpus BLEU, tokenizer 13a, ICU word segmentation for languages written without spaces (`seg:` in the signature). ' +
      'METEOR: exact matches only (no stem, synonym or paraphrase modules). Keyword accuracy: docs/metrics.md. ' +
      'A sample without an answer counts as an empty prediction.',
    '',
  );
  return out.join('\n');
}
