/**
 * `mella export list | show | reexport`: the dataset versions the merge stage recorded.
 * Reads PostgreSQL directly (versions are data, not workflow state).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { db } from '../activities/shared/db';
import { exportRun } from '../activities/merge/stage';

interface VersionRow {
  version_id: string;
  name: string;
  run_id: string;
  parent_id: string | null;
  dir: string;
  content_id: string;
  counts: { total: number; bySplit: Record<string, number>; bySource: Record<string, number> };
  rejected: Record<string, number>;
  diff: unknown;
  standin_samples: number;
  created_at: Date;
}

export async function listVersions(name?: string): Promise<VersionRow[]> {
  const { rows } = await db().query<VersionRow>(
    `select * from dataset_versions ${name ? 'where name = $1' : ''} order by created_at`,
    name ? [name] : [],
  );
  return rows;
}

export async function showVersion(versionId: string): Promise<VersionRow> {
  const { rows } = await db().query<VersionRow>('select * from dataset_versions where version_id = $1', [versionId]);
  if (!rows[0]) throw new Error(`no dataset version "${versionId}" (mella export list shows them)`);
  return rows[0];
}

export function formatVersionLine(v: VersionRow): string {
  const src = Object.entries(v.counts.bySource).map(([k, n]) => `${k} ${n}`).join(', ');
  return `${v.version_id}  ${v.name}  ${v.created_at.toISOString()}  ${v.counts.total} samples (${src})${v.parent_id ? `  parent ${v.parent_id}` : ''}${v.standin_samples ? `  [${v.standin_samples} stand-in]` : ''}`;
}

/** Exports a recorded version again into `dir` and compares its content id with the recorded one. */
export async function reexportVersion(versionId: string, dir: string): Promise<{ contentId: string; same: boolean; dir: string }> {
  const v = await showVersion(versionId);
  const target = path.resolve(dir);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const result = await exportRun(v.run_id, target, { versionId: v.version_id, parentId: v.parent_id });
  return { contentId: result.contentId, same: result.contentId === v.content_id, dir: target };
}
