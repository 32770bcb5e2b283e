import type { RunSummary, StageCounts, StageProgress } from '../workflows/types';

export function bar(done: number, total: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(frac * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.round(frac * 100)).padStart(3)}%`;
}

export function formatRejected(rejected: Record<string, number>): string {
  const entries = Object.entries(rejected).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([r, n]) => `${r}=${n}`).join(' ') : '-';
}

export function formatCounts(c: StageCounts): string {
  const rejected = Object.values(c.rejected).reduce((a, b) => a + b, 0);
  return `in ${c.in}  kept ${c.kept}  rejected ${rejected} (${formatRejected(c.rejected)})`;
}

export function formatStageProgress(lang: string, p: StageProgress, tty: boolean): string {
  const shards = `${p.doneShards}/${p.totalShards} shards`;
  const head = `${lang.padEnd(6)} ${p.stage.padEnd(8)} ${p.status.padEnd(8)}`;
  return tty ? `${head} ${bar(p.doneShards, p.totalShards)} ${shards}  ${formatCounts(p)}` : `${head} ${shards}  ${formatCounts(p)}`;
}

export function formatSummary(s: RunSummary): string {
  const lines = [`run ${s.runId}: ${s.status}${s.error ? ` (${s.error})` : ''}`];
  for (const [stage, c] of Object.entries(s.stages)) lines.push(`  ${stage.padEnd(8)} all    ${formatCounts(c)}`);
  for (const [lang, stages] of Object.entries(s.languages)) {
    for (const [stage, c] of Object.entries(stages)) lines.push(`  ${stage.padEnd(8)} ${lang.padEnd(6)} ${formatCounts(c)}`);
  }
  for (const [lang, c] of Object.entries(s.crawl ?? {})) {
    const warc = Object.keys(c.warcSkipped).length ? `; WARC records skipped: ${formatRejected(c.warcSkipped)}` : '';
    const refresh = c.refresh ? `; against ${c.refresh.previousRun}: pages new ${c.refresh.new}, changed ${c.refresh.changed}, unchanged ${c.refresh.unchanged}, gone ${c.refresh.gone}` : '';
    lines.push(`  crawl    ${lang.padEnd(6)} images found ${c.images}, sent to ingest ${c.handedOff}${c.skippedKnown ? ` (${c.skippedKnown} known from the previous crawl not sent again)` : ''}${warc}${refresh}`);
  }
  for (const [lang, f] of Object.entries(s.filter ?? {})) {
    lines.push(`  filter   ${lang.padEnd(6)} images: ${formatCounts(f.images)}`);
    for (const [op, c] of Object.entries(f.operators)) {
      lines.push(`    ${op.padEnd(18)} in ${c.in}  kept ${c.kept}  rejected ${c.rejected}${c.rejected ? ` (${formatRejected(c.byReason)})` : ''}`);
    }
  }
  for (const [stage, perLang] of Object.entries(s.llm ?? {})) {
    for (const [lang, u] of Object.entries(perLang)) {
      lines.push(
        `  ${stage.padEnd(8)} ${lang.padEnd(6)} requests ${u.calls} (cached ${u.cachedCalls})  tokens ${u.promptTokens}+${u.completionTokens}  cost $${u.costUsd.toFixed(4)}` +
          (u.standinOutputs ? `  [${u.standinOutputs} outputs from the offline stand-in model]` : ''),
      );
    }
  }
  if (s.dataset) {
    const d = s.dataset;
    const bySource = Object.entries(d.counts.bySource).map(([k, v]) => `${k} ${v}`).join(', ');
    lines.push(`  dataset ${d.name} ${d.versionId}: ${d.counts.total} samples (${bySource}; train ${d.counts.bySplit.train}, validation ${d.counts.bySplit.validation}, test ${d.counts.bySplit.test})${d.parentId ? `, parent ${d.parentId}` : ''}`);
    lines.push(`    export: ${d.dir}`);
    lines.push(`    card:   ${d.dir}/card.html  (and card.md)`);
    if (d.standinSamples) lines.push(`    ${d.standinSamples} samples hold stand-in model output (labelled in the manifest and the card)`);
  }
  lines.push(`  unique images: ${s.uniqueImages}; records in other languages skipped: ${s.skippedOtherLanguage}`);
  for (const e of s.inputErrors.slice(0, 10)) lines.push(`  input error: ${e.source} line ${e.line}: ${e.reason} (${e.detail})`);
  return lines.join('\n');
}
