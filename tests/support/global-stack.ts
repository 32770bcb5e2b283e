import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../infra/stack/ports';
import { startStack, type RunningStack } from '../../infra/stack/stack';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: { temporalAddress: string; databaseUrl: string; stateDir: string; blobDir: string };
  }
}

let stack: RunningStack | undefined;

/** Starts the real embedded stack on free ports in a temporary state dir, for every test file. */
export async function setup(project: TestProject) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-test-'));
  fs.chmodSync(stateDir, 0o755);
  stack = await startStack({
    stateDir,
    ports: { temporal: await freePort(), temporalUi: await freePort(), postgres: await freePort() },
    headless: true,
  });
  project.provide('stack', {
    temporalAddress: stack.temporalAddress,
    databaseUrl: stack.databaseUrl,
    stateDir,
    blobDir: path.join(stateDir, 'blobs'),
  });
}

export async function teardown() {
  if (!stack) return;
  await stack.stop();
  fs.rmSync(stack.stateDir, { recursive: true, force: true });
}
