/**
 * The Chrome DevTools protocol over the pipe Chromium opens with `--remote-debugging-pipe`: commands
 * go to fd 3, responses and events come from fd 4, each message one JSON text ended by a NUL byte.
 * Sessions are flat (`Target.attachToTarget` with `flatten: true`): a page's commands and events carry
 * its `sessionId`; the browser's own have none.
 *
 * This is the whole transport a crawl page needs (browser.ts drives the pages, chromium-launch.ts
 * starts the process). Commands and events are typed by the protocol's own definitions (the
 * `devtools-protocol` package, types only). When the pipe closes every pending command rejects with
 * `DevToolsClosedError` and `closed` resolves.
 */
import type { Readable, Writable } from 'node:stream';
import type { ProtocolMapping } from 'devtools-protocol/types/protocol-mapping';

type Commands = ProtocolMapping.Commands;
export type DevToolsCommand = keyof Commands;
export type DevToolsParams<M extends DevToolsCommand> = Commands[M]['paramsType'][0];
export type DevToolsResult<M extends DevToolsCommand> = Commands[M]['returnType'];

/** One event: `method` names it, and narrows `params` to its type (`switch (event.method)`). */
export type DevToolsEvent = { [M in keyof ProtocolMapping.Events]: { method: M; params: ProtocolMapping.Events[M][0] } }[keyof ProtocolMapping.Events];

export type DevToolsEventHandler = (event: DevToolsEvent) => void;

/** A response (`id`) or an event (`method`, for `sessionId`; none for the browser's). */
interface Message {
  id?: number;
  result?: unknown;
  error?: { message: string; code?: number };
  method?: string;
  params?: Record<string, unknown>;
  sessionId?: string;
}

/** A command the browser answered with an error (its message, e.g. `Cannot find context with specified id`). */
export class DevToolsCommandError extends Error {
  constructor(
    readonly method: string,
    message: string,
  ) {
    super(`${method}: ${message}`);
    this.name = 'DevToolsCommandError';
  }
}

/** The pipe is closed: the browser exited or is closing. */
export class DevToolsClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DevToolsClosedError';
  }
}

export class DevToolsPipe {
  private nextId = 0;
  private readonly pending = new Map<number, { method: string; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private chunks: Buffer[] = [];
  /** Event handlers by session id; '' is the browser's own session. */
  private readonly handlers = new Map<string, DevToolsEventHandler>();
  private gone: DevToolsClosedError | null = null;
  private markClosed!: () => void;
  /** Resolves when the pipe is closed (the browser exited, or its end of the pipe broke). */
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  constructor(
    private readonly out: Writable,
    input: Readable,
  ) {
    input.on('data', (d: Buffer) => this.receive(d));
    input.on('close', () => this.fail('the browser closed its DevTools pipe'));
    input.on('error', (err: Error) => this.fail(`the DevTools pipe failed: ${err.message}`));
    out.on('error', (err: Error) => this.fail(`the DevTools pipe failed: ${err.message}`));
  }

  get isClosed(): boolean {
    return this.gone !== null;
  }

  /** Routes a session's events (`''`: the browser's) to `handler`; one handler per session. */
  on(sessionId: string, handler: DevToolsEventHandler): void {
    this.handlers.set(sessionId, handler);
  }

  off(sessionId: string): void {
    this.handlers.delete(sessionId);
  }

  /** Sends a command to the browser, or with `sessionId` to that page's session. */
  send<M extends DevToolsCommand>(method: M, params?: DevToolsParams<M>, sessionId?: string): Promise<DevToolsResult<M>> {
    if (this.gone) return Promise.reject(this.gone);
    const id = ++this.nextId;
    const message = sessionId ? { id, method, params: params ?? {}, sessionId } : { id, method, params: params ?? {} };
    return new Promise<DevToolsResult<M>>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject });
      this.out.write(`${JSON.stringify(message)}\0`);
    });
  }

  private receive(d: Buffer): void {
    let start = 0;
    for (let end = d.indexOf(0); end >= 0; end = d.indexOf(0, start)) {
      this.chunks.push(d.subarray(start, end));
      const text = Buffer.concat(this.chunks).toString('utf8');
      this.chunks = [];
      start = end + 1;
      let m: Message;
      try {
        m = JSON.parse(text) as Message;
      } catch {
        continue; // never seen; a message we cannot read is one we cannot route either
      }
      this.dispatch(m);
    }
    if (start < d.length) this.chunks.push(d.subarray(start));
  }

  private dispatch(m: Message): void {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new DevToolsCommandError(p.method, m.error.message));
      else p.resolve(m.result ?? {});
      return;
    }
    if (!m.method) return;
    const handler = this.handlers.get(m.sessionId ?? '');
    if (!handler) return;
    try {
      handler({ method: m.method, params: m.params ?? {} } as DevToolsEvent);
    } catch (err) {
      // a handler's bug must not break the transport of every other page
      console.error(`DevTools event handler for ${m.method} threw:`, err);
    }
  }

  private fail(message: string): void {
    if (this.gone) return;
    this.gone = new DevToolsClosedError(message);
    for (const p of this.pending.values()) p.reject(this.gone);
    this.pending.clear();
    this.markClosed();
  }
}
