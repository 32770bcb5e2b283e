/**
 * Activity (mella-cpu): writes report.json, report.md and report.html into the evaluation's report
 * directory (`<export dir>/../evaluations/<eval id>/` by default), each atomically (temporary file and
 * rename), and records the paths.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { db } from '../shared/db';
import { evaluationRow } from './record';
import { loadReport } from './report-data';
import { renderReportHtml } from './report-html';
import { renderReportMarkdown } from './report-markdown';
import type { ReportPaths } from './types';

async function writeAtomic(file: string, text: string) {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

export async function writeEvaluationReport(a: { evalId: string }): Promise<ReportPaths & { standin: boolean }> {
  const row = await evaluationRow(a.evalId);
  const dir = row.report_dir!;
  await fs.mkdir(dir, { recursive: true });
  const report = await loadReport(a.evalId);
  const paths: ReportPaths = { dir, json: path.join(dir, 'report.json'), markdown: path.join(dir, 'report.md'), html: path.join(dir, 'report.html') };
  await writeAtomic(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeAtomic(paths.markdown, renderReportMarkdown(report));
  await writeAtomic(paths.html, renderReportHtml(report));
  await db().query('update evaluations set report_json = $2, report_md = $3, report_html = $4, updated_at = now() where eval_id = $1', [a.evalId, paths.json, paths.markdown, paths.html]);
  return { ...paths, standin: report.standinPredictions > 0 };
}
