/**
 * report.html: one self-contained page (inline CSS and SVG, no script, a Content-Security-Policy that
 * forbids everything else), the house style of the dataset card: a stand-in banner, the models, one
 * table per language (baseline, fine-tuned, delta per metric), and one bar chart per metric (languages ×
 * models). Every text is escaped.
 */
import { colorAt, escapeHtml as e, groupedBarChart } from '../merge/charts';
import { formatValue, type EvaluationReport } from './report-data';
import { standinBannerText } from './report-markdown';
import { METRICS } from './scoring';

const CSS = `
:root{--fg:#1a202c;--mut:#4a5568;--bd:#e2e8f0;--bg:#fff;--soft:#f7fafc}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans Thai","Noto Sans Arabic","Noto Sans KR",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1100px;margin:0 auto;padding:24px}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid var(--bd);padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.muted{color:var(--mut)}.banner{background:#fff5f5;border:2px solid #c53030;color:#742a2a;padding:12px 16px;border-radius:6px;font-weight:600;margin:12px 0}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid var(--bd);padding:4px 8px;text-align:left;vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:var(--soft)}
td.up{color:#22543d;background:#f0fff4}td.down{color:#742a2a;background:#fff5f5}
svg{max-width:100%;height:auto;display:block;margin:8px 0}svg .t{font:600 13px sans-serif;fill:#1a202c}svg .a{font:11px sans-serif;fill:#4a5568}svg .g{stroke:#e2e8f0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px}
code{font-size:12px;word-break:break-all}
`;

const round = (v: number) => Math.round(v * 100) / 100;

export function renderReportHtml(r: EvaluationReport): string {
  const title = `Evaluation ${r.evalId}`;
  const p: string[] = [
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${e(title)}</title><style>${CSS}</style></head><body><main>`,
    `<h1>${e(title)}</h1>`,
  ];
  const banner = standinBannerText(r);
  if (banner) p.push(`<div class="banner" role="alert">${e(banner)}</div>`);
  p.push(
    `<p class="muted">Dataset ${r.versionId ? `version <code>${e(r.versionId)}</code>` : 'export'} at <code>${e(r.exportDir)}</code>, split <b>${e(r.split)}</b>, ${r.items} samples. ` +
      (r.baseline ? `Δ is each model minus the baseline <b>${e(r.baseline)}</b>.` : 'No baseline model: no deltas.') +
      '</p>',
  );

  p.push('<h2>Models</h2><table><tr><th>model</th><th>role</th><th>model id</th><th>endpoint</th><th class="n">predictions</th><th class="n">no answer</th><th class="n">cached</th><th class="n">stand-in</th><th class="n">tokens</th></tr>');
  for (const m of r.models) {
    p.push(
      `<tr><td>${e(m.name)}</td><td>${e(m.role)}</td><td>${e(m.model)}</td><td><code>${e(m.endpoints.join(', ') || '–')}</code></td>` +
        `<td class="n">${m.predictions}</td><td class="n">${m.failed}</td><td class="n">${m.cached}</td><td class="n">${m.standin}</td><td class="n">${m.promptTokens} / ${m.completionTokens}</td></tr>`,
    );
  }
  p.push('</table>');

  const others = r.models.filter((m) => m.name !== r.baseline).map((m) => m.name);
  const order = [...(r.baseline ? [r.baseline] : []), ...others];

  p.push('<h2>Charts</h2><div class="charts">');
  for (const metric of METRICS) {
    const rows = r.rows.filter((x) => x.metric === metric);
    if (!rows.length) continue;
    p.push(
      groupedBarChart({
        // Every chart on 0-100 (ROUGE-L, METEOR and keyword accuracy × 100): readable axes.
        title: `${rows[0]!.label} (${rows[0]!.scale === 100 ? '0–100' : '× 100'})`,
        categories: rows.map((x) => (x.source === (metric.startsWith('keyword') ? 'know' : 'ling') ? x.lang : `${x.lang} ${x.source}`)),
        series: order.map((name, i) => ({ name, color: colorAt(i === 0 && r.baseline ? 5 : i + 1), values: rows.map((x) => round(((x.values[name] ?? 0) * 100) / x.scale)) })),
      }),
    );
  }
  p.push('</div>');

  const langs = [...new Set(r.rows.map((x) => x.lang))];
  p.push('<h2>Per language</h2>');
  for (const lang of langs) {
    const counts = Object.entries(r.perLanguage[lang] ?? {}).map(([s, n]) => `${e(s)} ${n}`).join(', ');
    p.push(`<h3>${e(lang)} <span class="muted">(${counts})</span></h3><table><tr><th>metric</th><th>source</th><th class="n">n</th>`);
    for (const n of order) p.push(`<th class="n">${e(n)}${n === r.baseline ? ' (baseline)' : ''}</th>`);
    if (r.baseline) for (const n of others) p.push(`<th class="n">Δ ${e(n)}</th>`);
    p.push('</tr>');
    for (const x of r.rows.filter((y) => y.lang === lang)) {
      p.push(`<tr><td title="${e(x.signature)}">${e(x.label)}</td><td>${e(x.source)}</td><td class="n">${x.n}</td>`);
      for (const n of order) p.push(`<td class="n">${formatValue(x.values[n], x.scale)}</td>`);
      if (r.baseline) {
        for (const n of others) {
          const d = x.delta[n];
          const cls = d === null || d === undefined || d === 0 ? 'n' : d > 0 ? 'n up' : 'n down';
          p.push(`<td class="${cls}">${formatValue(d, x.scale, true)}</td>`);
        }
      }
      p.push('</tr>');
    }
    p.push('</table>');
  }

  p.push('<h2>Signatures</h2><ul>');
  const seen = new Set<string>();
  for (const x of r.rows) {
    const k = `${x.label}\u0000${x.signature}`;
    if (seen.has(k)) continue;
    seen.add(k);
    p.push(`<li>${e(x.label)}: <code>${e(x.signature)}</code></li>`);
  }
  p.push(
    '</ul><p class="muted">BLEU: sacrebleu-compatible corpus BLEU, tokenizer 13a, ICU word segmentation for languages written without spaces (<code>seg:</code> in the signature). ' +
      'METEOR: exact matches only (no stem, synonym or paraphrase modules). A sample without an answer counts as an empty prediction.</p>',
    '</main></body></html>',
  );
  return p.join('\n');
}
