/**
 * Per-domain politeness across worker processes (activities/crawl/domain-slots.ts) on the suite's real
 * PostgreSQL: concurrent reservations from this process and from another Node process start at least
 * the delay apart; a page's not_before and a 429's hold push the next start; an abort ends the wait.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { holdDomain, politeWait, reserveVisit } from '../activities/crawl/domain-slots';
import { closeDb } from '../activities/shared/db';
import { PROJECT_ROOT } from '../infra/paths';

const domain = (label: string) => `${label}-${process.pid}-${Date.now().toString(36)}.example:8080`;

afterAll(async () => {
  await closeDb();
});

/**
 * Another Node process that makes `n` reservations at once when told to: `go()` starts them and
 * resolves with their start times (epoch ms, the database's clock).
 */
async function childReserver(d: string, delayMs: number, n: number): Promise<{ go: () => Promise<number[]> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-slots-'));
  const script = path.join(dir, 'child.mts');
  fs.writeFileSync(
    script,
    `import { reserveVisit } from ${JSON.stringify(path.join(PROJECT_ROOT, 'activities', 'crawl', 'domain-slots.ts'))};
     import { closeDb, db } from ${JSON.stringify(path.join(PROJECT_ROOT, 'activities', 'shared', 'db.ts'))};
     await db().query('select 1');
     console.log('ready');
     process.stdin.once('data', async () => {
       const starts = await Promise.all(Array.from({ length: ${n} }, async () => (await reserveVisit(${JSON.stringify(d)}, ${delayMs})).startAt));
       console.log(JSON.stringify(starts));
       await closeDb();
       process.exit(0);
     });`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => (fs.rmSync(dir, { recursive: true, force: true }), resolve(code))));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b) => {
      out += b;
      if (out.includes('ready\n')) resolve();
    });
    void exited.then((code) => reject(new Error(`child exited ${code} before it was ready: ${err.slice(-2000)}`)));
  });
  return {
    go: async () => {
      child.stdin.write('go\n');
      const code = await exited;
      if (code !== 0) throw new Error(`child exited ${code}: ${err.slice(-2000)}`);
      return JSON.parse(out.trim().split('\n').pop()!) as number[];
    },
  };
}

describe('crawl domain slots', () => {
  it('spaces concurrent visits from two processes by the delay', async () => {
    const d = domain('shared');
    const delay = 400;
    const starts = async () => (await reserveVisit(d, delay)).startAt;
    const child = await childReserver(d, delay, 4);
    // Both processes ask at the same moment.
    const [theirs, mine] = await Promise.all([child.go(), Promise.all(Array.from({ length: 4 }, starts))]);
    const all = [...mine, ...theirs].sort((a, b) => a - b);
    expect(all).toHaveLength(8);
    // Every visit has a start of its own, at least one delay after the one before, whichever process
    // asked (starts by the database's clock; 1 ms for float rounding of the epoch).
    for (let i = 1; i < all.length; i++) expect(all[i]! - all[i - 1]!).toBeGreaterThanOrEqual(delay - 1);
    // The table now holds the start after the last one.
    expect((await reserveVisit(d, delay)).startAt - all[7]!).toBeGreaterThanOrEqual(delay - 1);
  });

  it('a page not_before and a 429 hold push the next start; an abort ends the wait', async () => {
    // Starts are compared by the database's clock (the same machine's clock as Date.now()), so the
    // checks hold however slow the statements are under load.
    const a = domain('not-before');
    const notBefore = Date.now() + 1500;
    const first = await reserveVisit(a, 100, new Date(notBefore));
    expect(first.startAt).toBeGreaterThanOrEqual(notBefore - 1);
    expect(first.waitMs).toBeLessThanOrEqual(1550);
    // the next one comes a delay after that start
    expect((await reserveVisit(a, 100)).startAt - first.startAt).toBeGreaterThanOrEqual(99);

    const b = domain('held');
    const t0 = Date.now();
    await holdDomain(b, 2000);
    const held = await reserveVisit(b, 100);
    expect(held.startAt - t0).toBeGreaterThanOrEqual(1995);
    // a hold never shortens what is already reserved
    await holdDomain(b, 10);
    expect((await reserveVisit(b, 100)).startAt - held.startAt).toBeGreaterThanOrEqual(99);

    const c = domain('abort');
    await reserveVisit(c, 5000);
    const ac = new AbortController();
    const waitStarted = Date.now();
    setTimeout(() => ac.abort(), 200);
    await politeWait(c, 5000, ac.signal);
    expect(Date.now() - waitStarted).toBeLessThan(2000);
  });
});
