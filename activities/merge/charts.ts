/**
 * Inline SVG charts for the dataset card: grouped vertical bars and stacked horizontal bars. Every
 * label is escaped (labels include web content: domains, reasons); numbers are formatted with fixed
 * precision so the same data always gives the same bytes.
 */

/** Escapes text for HTML and XML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const f = (n: number) => (Math.round(n * 10) / 10).toString();

export const SOURCE_COLORS: Record<string, string> = { know: '#2b6cb0', ling: '#dd6b20', fused: '#2f855a' };
const PALETTE = ['#c53030', '#d69e2e', '#805ad5', '#d53f8c', '#319795', '#718096', '#9c4221', '#4a5568', '#b7791f', '#2c5282'];
export const colorAt = (i: number) => PALETTE[i % PALETTE.length]!;

/** A readable axis maximum: 1, 2 or 5 times a power of ten, at least `max`. */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

const compact = (n: number) => (n >= 1e6 ? `${f(n / 1e6)}M` : n >= 1e4 ? `${f(n / 1e3)}k` : String(n));

export interface Series {
  name: string;
  color: string;
  values: number[];
}

/** Grouped vertical bars: one group per category, one bar per series. */
export function groupedBarChart(opts: { title: string; categories: string[]; series: Series[]; width?: number; height?: number; xLabel?: string }): string {
  const width = opts.width ?? 640;
  const height = opts.height ?? 260;
  const m = { top: 44, right: 12, bottom: opts.xLabel ? 48 : 34, left: 52 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const max = niceMax(Math.max(0, ...opts.series.flatMap((s) => s.values)));
  const groupW = plotW / Math.max(1, opts.categories.length);
  const barW = Math.max(1, (groupW * 0.8) / Math.max(1, opts.series.length));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(opts.title)}">`);
  out.push(`<title>${escapeHtml(opts.title)}</title>`);
  out.push(`<text x="${m.left}" y="16" class="t">${escapeHtml(opts.title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = m.top + plotH - (plotH * i) / 4;
    out.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${f(y)}" y2="${f(y)}" class="g"/>`);
    out.push(`<text x="${m.left - 6}" y="${f(y + 4)}" text-anchor="end" class="a">${escapeHtml(compact(v))}</text>`);
  }
  opts.categories.forEach((cat, ci) => {
    const gx = m.left + ci * groupW + groupW * 0.1;
    opts.series.forEach((s, si) => {
      const v = s.values[ci] ?? 0;
      const h = (plotH * v) / max;
      out.push(
        `<rect x="${f(gx + si * barW)}" y="${f(m.top + plotH - h)}" width="${f(Math.max(1, barW - 1))}" height="${f(h)}" fill="${s.color}"><title>${escapeHtml(`${cat} ${s.name}: ${v}`)}</title></rect>`,
      );
    });
    out.push(`<text x="${f(m.left + ci * groupW + groupW / 2)}" y="${m.top + plotH + 16}" text-anchor="middle" class="a">${escapeHtml(cat)}</text>`);
  });
  if (opts.xLabel) out.push(`<text x="${f(m.left + plotW / 2)}" y="${height - 8}" text-anchor="middle" class="a">${escapeHtml(opts.xLabel)}</text>`);
  // legend: one row under the title
  let lx = m.left;
  for (const s of opts.series) {
    out.push(`<rect x="${lx}" y="24" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="33" class="a">${escapeHtml(s.name)}</text>`);
    lx += 24 + s.name.length * 6.5;
  }
  out.push('</svg>');
  return out.join('');
}

export interface StackedRow {
  label: string;
  segments: { name: string; value: number; color: string }[];
}

/** Horizontal stacked bars, one row per label, scaled to the largest row total. */
export function stackedBarChart(opts: { title: string; rows: StackedRow[]; width?: number; labelWidth?: number }): string {
  const width = opts.width ?? 640;
  const labelW = opts.labelWidth ?? 150;
  const rowH = 22;
  const top = 26;
  const right = 60;
  const height = top + opts.rows.length * rowH + 8;
  const max = Math.max(1, ...opts.rows.map((r) => r.segments.reduce((a, s) => a + s.value, 0)));
  const plotW = width - labelW - right;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(opts.title)}">`);
  out.push(`<title>${escapeHtml(opts.title)}</title><text x="0" y="16" class="t">${escapeHtml(opts.title)}</text>`);
  opts.rows.forEach((row, ri) => {
    const y = top + ri * rowH;
    const label = row.label.length > 24 ? `${Array.from(row.label).slice(0, 23).join('')}…` : row.label;
    out.push(`<text x="${labelW - 6}" y="${y + 14}" text-anchor="end" class="a">${escapeHtml(label)}</text>`);
    let x = labelW;
    let total = 0;
    for (const s of row.segments) {
      if (s.value <= 0) continue;
      const w = (plotW * s.value) / max;
      out.push(`<rect x="${f(x)}" y="${y + 3}" width="${f(Math.max(0.5, w))}" height="${rowH - 6}" fill="${s.color}"><title>${escapeHtml(`${row.label} ${s.name}: ${s.value}`)}</title></rect>`);
      x += w;
      total += s.value;
    }
    out.push(`<text x="${f(x + 4)}" y="${y + 14}" class="a">${escapeHtml(compact(total))}</text>`);
  });
  out.push('</svg>');
  return out.join('');
}
