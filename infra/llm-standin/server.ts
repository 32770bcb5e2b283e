/**
 * The MELLA LLM stand-in: a small OpenAI-compatible HTTP server (node:http) for the tests and the
 * offline demo, which cannot run a model. The real `openai` client talks to it unchanged.
 *
 *   POST /v1/chat/completions   captions, target-language descriptions, translations (chat.ts)
 *   POST /v1/embeddings         deterministic unit vectors (embeddings.ts)
 *   GET  /v1/models, /v1/models/{id}
 *
 * Every response carries `x-mella-standin: 1`; the conventions are in conventions.ts and
 * docs/llm-standin.md. Faults come from the server's plan or a request's `x-standin-fault` header
 * (faults.ts). The key is never logged nor echoed.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { chatCompletion, parseChatRequest } from './chat';
import { FAULT_HEADER, STANDIN_HEADER, STANDIN_KIND_HEADER } from './conventions';
import { DEFAULT_EMBEDDING_DIMENSIONS, MAX_EMBEDDING_DIMENSIONS, embeddingResponse, parseEmbeddingRequest } from './embeddings';
import { FaultInjector, parseFaultHeader, type Decision, type FaultPlan, type StandinRoute } from './faults';
import { ApiError, invalidRequest } from './protocol';
import { StatsRecorder, type Outcome, type StandinStats } from './stats';

export interface LlmStandinOptions {
  /** 0 (default): a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Delay before every chat and embeddings answer, in ms (default 0). */
  latencyMs?: number;
  /** Server-wide fault rules (faults.ts). */
  faults?: FaultPlan;
  /** When set, `Authorization: Bearer <requireKey>` is required (401 otherwise); else any key or none is accepted. */
  requireKey?: string;
  /** Embedding dimension when the request gives no `dimensions` (64-4096, default 256). */
  embeddingDimensions?: number;
  /** Listed by GET /v1/models (any model name is served anyway). */
  models?: string[];
  /** Largest request body (default 32 MiB; 413 beyond). */
  maxBodyBytes?: number;
  /** More chat/embeddings requests than this in flight get a 429 (default: no limit). */
  maxInFlight?: number;
  /** Requests kept in `stats().log` (default 10,000). */
  logLimit?: number;
  /** One line per request (method, path, status, outcome, model, duration; never a header or a key). */
  log?: (line: string) => void;
}

export interface LlmStandin {
  /** e.g. http://127.0.0.1:18080/v1 (what `new OpenAI({ baseURL })` takes). */
  baseUrl: string;
  port: number;
  host: string;
  stats(): StandinStats;
  /** Zeroes the stats and restarts the fault plan's `first`/`every` counting. */
  reset(): void;
  /** Replaces the fault plan (its counting starts again). */
  setFaults(plan: FaultPlan): void;
  /** Stops listening and ends every open request, hung ones included. */
  close(): Promise<void>;
}

export const DEFAULT_MODELS = ['mella-standin-vlm', 'mella-standin-embed'];
const MODEL_CREATED = 1_767_225_600; // 2026-01-01T00:00:00Z, fixed so that the listing is deterministic

const STATUS_OUTCOME: Record<number, Outcome> = { 400: 'bad-request', 401: 'unauthorized', 404: 'not-found', 405: 'not-found', 413: 'bad-request', 429: 'rate-limited' };
const outcomeOf = (status: number): Outcome => (status >= 500 ? 'server-error' : STATUS_OUTCOME[status] ?? 'bad-request');

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => (size > limit ? reject(new BodyTooLarge()) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

function sameKey(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

/** A promise's outcome as a value, so that a failure can wait (unobserved rejections crash Node). */
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
async function settle<T>(fn: () => Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Starts the stand-in; resolves once it listens. */
export async function startLlmStandin(opts: LlmStandinOptions = {}): Promise<LlmStandin> {
  const host = opts.host ?? '127.0.0.1';
  const latencyMs = opts.latencyMs ?? 0;
  const maxBodyBytes = opts.maxBodyBytes ?? 32 * 1024 * 1024;
  const dims = opts.embeddingDimensions ?? DEFAULT_EMBEDDING_DIMENSIONS;
  if (!Number.isInteger(dims) || dims < 64 || dims > MAX_EMBEDDING_DIMENSIONS) {
    throw new Error(`embeddingDimensions must be an integer from 64 to ${MAX_EMBEDDING_DIMENSIONS}, got ${dims}`);
  }
  if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new Error(`latencyMs must be a non-negative number, got ${latencyMs}`);
  const models = opts.models ?? DEFAULT_MODELS;
  const faults = new FaultInjector(opts.faults ?? []);
  const stats = new StatsRecorder(opts.logLimit);
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requestSeq = 0;
  let working = 0; // chat/embeddings requests past the fault decision and not yet answered

  /** The 200 answer of a request past its faults: body, headers, outcome and the tokens to count. */
  const answerOf = async (route: string, json: unknown, model: string | undefined, raw: string, fault: 'empty' | 'refusal' | undefined) => {
    if (route === 'chat') {
      const { kind, body } = await chatCompletion(parseChatRequest(json), raw, fault);
      return { body: JSON.stringify(body), headers: { [STANDIN_KIND_HEADER]: kind } as Record<string, string>, outcome: (fault ?? 'ok') as Outcome, tokens: [body.usage.prompt_tokens, body.usage.completion_tokens] };
    }
    if (route === 'embeddings') {
      const body = await embeddingResponse(parseEmbeddingRequest(json), dims);
      return { body: JSON.stringify(body), headers: {}, outcome: 'ok' as Outcome, tokens: [body.usage.prompt_tokens, 0] };
    }
    const body =
      model !== undefined
        ? { id: model, object: 'model', created: MODEL_CREATED, owned_by: 'mella-standin' }
        : { object: 'list', data: models.map((id) => ({ id, object: 'model', created: MODEL_CREATED, owned_by: 'mella-standin' })) };
    return { body: JSON.stringify(body), headers: {}, outcome: 'ok' as Outcome, tokens: undefined };
  };

  /** Resolves after `ms`, or early (false) when the response closes first. */
  const wait = (ms: number, res: http.ServerResponse): Promise<boolean> =>
    new Promise((resolve) => {
      if (ms <= 0) return resolve(!res.closed);
      const done = (ok: boolean) => {
        clearTimeout(t);
        timers.delete(t);
        res.off('close', onClose);
        resolve(ok);
      };
      const onClose = () => done(false);
      const t = setTimeout(() => done(true), ms);
      timers.add(t);
      res.on('close', onClose);
    });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const startedAt = Date.now();
    stats.started();
    const requestId = `req_standin_${++requestSeq}`;
    let route: StandinRoute | 'other' = 'other';
    let model: string | undefined;
    let outcome: Outcome = 'aborted';
    let hung = false;
    let counted = false;
    res.on('close', () => {
      if (counted) working--;
      stats.ended({ route, ...(model === undefined ? {} : { model }), outcome: hung ? 'hang' : outcome, status: res.headersSent ? res.statusCode : 0, startedAt, endedAt: Date.now() });
      opts.log?.(`${req.method} ${req.url?.split('?')[0]} ${res.headersSent ? res.statusCode : '-'} ${hung ? 'hang' : outcome}${model ? ` model=${model}` : ''} ${Date.now() - startedAt}ms`);
    });

    const send = (status: number, body: string, headers: Record<string, string> = {}, result: Outcome = status === 200 ? 'ok' : outcomeOf(status)) => {
      if (res.closed || res.headersSent) return;
      outcome = result;
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        [STANDIN_HEADER]: '1',
        'x-request-id': requestId,
        ...headers,
      });
      res.end(body);
    };
    const sendError = (err: ApiError) => send(err.status, JSON.stringify(err.body()), err.headers);

    try {
      const path = new URL(req.url ?? '/', 'http://standin').pathname.replace(/\/+$/, '');
      const method = req.method ?? 'GET';
      if (path === '/v1/chat/completions') route = 'chat';
      else if (path === '/v1/embeddings') route = 'embeddings';
      else if (path === '/v1/models' || path.startsWith('/v1/models/')) route = 'models';
      else throw new ApiError(404, `Invalid URL (${method} ${path})`, 'invalid_request_error', 'unknown_url');
      const expected = route === 'models' ? 'GET' : 'POST';
      if (method !== expected) throw new ApiError(405, `Method ${method} not allowed for ${path}; use ${expected}`, 'invalid_request_error', 'method_not_allowed');

      if (opts.requireKey !== undefined) {
        const auth = req.headers.authorization;
        if (auth === undefined || auth.trim() === '') {
          throw new ApiError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", 'invalid_request_error', 'missing_api_key');
        }
        const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
        if (m === null || !sameKey(m[1]!, opts.requireKey)) throw new ApiError(401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
      }

      let raw = '';
      let json: unknown;
      if (expected === 'POST') {
        try {
          raw = (await readBody(req, maxBodyBytes)).toString('utf8');
        } catch (err) {
          if (err instanceof BodyTooLarge) throw new ApiError(413, `Request too large: the limit is ${maxBodyBytes} bytes.`, 'invalid_request_error', 'request_too_large');
          throw err;
        }
        try {
          json = JSON.parse(raw);
        } catch {
          throw invalidRequest('We could not parse the JSON body of your request. (HINT: send valid JSON with Content-Type: application/json.)');
        }
        if (typeof json === 'object' && json !== null && typeof (json as { model?: unknown }).model === 'string') model = (json as { model: string }).model;
      } else if (route === 'models' && path.startsWith('/v1/models/')) {
        const id = path.slice('/v1/models/'.length);
        try {
          model = decodeURIComponent(id);
        } catch {
          throw invalidRequest(`Invalid model id in the URL: ${id}`);
        }
      }

      const header = req.headers[FAULT_HEADER];
      const headerRules = header === undefined ? [] : parseFaultHeader(Array.isArray(header) ? header.join(',') : header);
      const decision: Decision = faults.decide(route, model, headerRules);
      stats.faults(decision.applied);

      if (route !== 'models' && opts.maxInFlight !== undefined && working >= opts.maxInFlight) {
        throw new ApiError(429, `Too many requests in flight (limit ${opts.maxInFlight}).`, 'requests', 'rate_limit_exceeded', null, { 'retry-after': '1' });
      }
      if (route !== 'models') {
        working++;
        counted = true;
      }

      const failure = decision.failure;
      // A request that will be answered is worked on while the latency runs (a model's latency includes
      // its own work): the answer goes out at the later of the two. Errors in it still come after it.
      const answering = failure === undefined || failure.kind === 'empty' || failure.kind === 'refusal';
      const early = answering ? settle(() => answerOf(route, json, model, raw, failure?.kind === 'empty' || failure?.kind === 'refusal' ? failure.kind : undefined)) : undefined;
      const delay = (route === 'models' ? 0 : latencyMs) + decision.latencyMs;
      if (!(await wait(delay, res))) return;

      if (failure !== undefined) {
        const retryAfter: Record<string, string> = failure.retryAfterSeconds === undefined ? {} : { 'retry-after': String(failure.retryAfterSeconds) };
        switch (failure.kind) {
          case 'hang':
            hung = true;
            return; // never answered: the client's timeout fires; close() ends the connection
          case '429':
            throw new ApiError(429, 'Rate limit reached for requests (injected by the MELLA stand-in).', 'requests', 'rate_limit_exceeded', null, retryAfter);
          case '500':
            throw new ApiError(500, 'The server had an error while processing your request (injected by the MELLA stand-in).', 'server_error');
          case '503':
            throw new ApiError(503, 'The engine is currently overloaded (injected by the MELLA stand-in).', 'server_error', 'overloaded', null, retryAfter);
          case '401':
            throw new ApiError(401, 'Incorrect API key provided (injected by the MELLA stand-in).', 'invalid_request_error', 'invalid_api_key');
          case 'malformed-json': {
            const whole = JSON.stringify({
              id: `${route === 'chat' ? 'chatcmpl' : 'emb'}-malformed`,
              object: route === 'chat' ? 'chat.completion' : route === 'embeddings' ? 'list' : 'model',
              model: model ?? null,
              choices: [{ index: 0, message: { role: 'assistant', content: '[stand-in] this body is cut off on purpose' } }],
            });
            send(200, whole.slice(0, Math.floor(whole.length / 2)), {}, 'malformed-json');
            return;
          }
          case 'empty':
          case 'refusal':
            break; // handled by the chat route below
        }
      }

      const answer = await (early ?? settle(() => answerOf(route, json, model, raw, undefined)));
      if (!answer.ok) throw answer.error;
      const { body, headers, outcome, tokens } = answer.value;
      if (tokens !== undefined) stats.tokens(tokens[0]!, tokens[1]!);
      send(200, body, headers, outcome);
    } catch (err) {
      if (err instanceof ApiError) sendError(err);
      else send(500, JSON.stringify(new ApiError(500, `The stand-in failed: ${(err as Error).message}`, 'server_error').body()));
    }
  };

  const server = http.createServer((req, res) => void handle(req, res));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://${urlHost}:${port}/v1`,
    port,
    host,
    stats: () => stats.snapshot(),
    reset: () => {
      stats.reset();
      faults.reset();
    },
    setFaults: (plan) => faults.setPlan(plan),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
