import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../infra/paths';

/** The shared real-world fixtures (not part of a fresh clone elsewhere: tests skip without them). */
export const REAL_FIXTURES = path.resolve(PROJECT_ROOT, '..', 'shared', 'fixtures', 'real');
export const HAVE_REAL_FIXTURES = fs.existsSync(REAL_FIXTURES);
export const NO_FIXTURES_MESSAGE = `tests on real fixtures skipped: ${REAL_FIXTURES} is absent`;
if (!HAVE_REAL_FIXTURES) console.warn(NO_FIXTURES_MESSAGE);

export function fixtureFiles(sub: string): string[] {
  const dir = path.join(REAL_FIXTURES, sub);
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort().map((f) => path.join(dir, f)) : [];
}
