import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, isPortOpen } from '../infra/stack/ports';
import { readStackRecord, stackDown, stackFile, stackStatus, stackUp } from '../infra/stack/control';
import { isAlive } from '../infra/stack/pid';
import { tmpDir } from './support/pipeline';

/** `mella dev up | down | status` on a state dir and ports of its own (the suite's stack is separate). */
const dir = tmpDir('devstack');
fs.chmodSync(dir, 0o755);
const logs: string[] = [];
const log = (m: string) => logs.push(m);

afterAll(async () => {
  await stackDown(dir, log).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('embedded stack lifecycle', () => {
  it('starts, is reused by a second up, keeps data across down/up, and stops cleanly', async () => {
    const ports = { temporal: await freePort(), temporalUi: await freePort(), postgres: await freePort() };
    const first = await stackUp(dir, ports, log);
    expect(first.reused).toBe(false);
    expect(first.record).toMatchObject({ state: 'ready', temporalAddress: `127.0.0.1:${ports.temporal}` });
    const status = await stackStatus(dir);
    expect(status.running).toBe(true);
    expect(status.services.map((s) => s.up)).toEqual([true, true, true]);
    // The Web UI answers over HTTP.
    const ui = await fetch(first.record.temporalUiUrl!);
    expect(ui.status).toBe(200);

    const second = await stackUp(dir, ports, log);
    expect(second).toMatchObject({ reused: true, record: { pid: first.record.pid } });

    // Migrations applied; a row written now survives a restart (SQLite file and PostgreSQL data dir).
    const db = new pg.Client({ connectionString: first.record.databaseUrl });
    await db.connect();
    const versions = (await db.query('select version from schema_migrations order by version')).rows.map((r) => r.version);
    expect(versions[0]).toBe(1);
    await db.query(`insert into runs (run_id, name, workflow_id, languages, stages, config) values ('persist', 'p', 'w', '{th}', '{ingest}', '{}')`);
    await db.end();

    expect(await stackDown(dir, log)).toBe(true);
    expect(isAlive(first.record.pid)).toBe(false);
    expect(await isPortOpen(ports.temporal)).toBe(false);
    expect(await isPortOpen(ports.postgres)).toBe(false);
    expect((await stackStatus(dir)).running).toBe(false);
    expect(await stackDown(dir, log)).toBe(false);

    const again = await stackUp(dir, ports, log);
    const db2 = new pg.Client({ connectionString: again.record.databaseUrl });
    await db2.connect();
    expect((await db2.query(`select name from runs where run_id = 'persist'`)).rows).toEqual([{ name: 'p' }]);
    await db2.end();
    await stackDown(dir, log);
  });

  it('reports and cleans a stale pid file, and names a port held by something else', async () => {
    const ports = { temporal: await freePort(), temporalUi: await freePort(), postgres: await freePort() };
    fs.writeFileSync(stackFile(dir), JSON.stringify({ state: 'ready', pid: 999_999, ports, stateDir: dir, startedAt: new Date().toISOString() }));
    const s = await stackStatus(dir);
    expect(s.running).toBe(false);
    expect(s.stale).toMatch(/pid 999999 is not running/);

    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(ports.temporal, '127.0.0.1', r));
    try {
      await expect(stackUp(dir, ports, log)).rejects.toThrow(new RegExp(`port ${ports.temporal} \\(temporal\\) is in use`));
      expect(logs.some((l) => /stale .*pid 999999.*cleaning up/.test(l))).toBe(true);
      expect(readStackRecord(dir)).toBeUndefined();
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    const up = await stackUp(dir, ports, log);
    expect(up.reused).toBe(false);
    await stackDown(dir, log);
    expect(fs.existsSync(path.join(dir, 'logs', 'temporal.log'))).toBe(true);
  });
});
