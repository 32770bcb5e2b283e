/**
 * A small `fetch` over `node:http`/`node:https` with keep-alive agents, for the `openai` client's `fetch`
 * option. Node's global fetch (undici) implements the whole Fetch standard (web streams for bodies,
 * request cloning, redirects, CORS bookkeeping) and costs about a millisecond of CPU per call; an
 * OpenAI-compatible API needs none of that: a JSON body out, a JSON body back. Only what the client
 * uses is implemented: method, headers, a string/bytes body, the abort signal; the answer is a standard
 * `Response` holding the whole body. No redirects are followed (an API endpoint does not redirect; a
 * 3xx comes back to the client as it is).
 */
import http from 'node:http';
import https from 'node:https';

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason as unknown;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const e = new Error('This operation was aborted');
  e.name = 'AbortError';
  return e;
}

function bodyBytes(body: unknown): string | Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError(`http-fetch: unsupported request body (${Object.prototype.toString.call(body)}); only strings and bytes are sent`);
}

/** `fetch(url, init)` for JSON APIs; resolves to a `Response` with the whole body read. */
export function httpFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    if (typeof input !== 'string' && !(input instanceof URL)) {
      reject(new TypeError('http-fetch: pass a URL and an init object, not a Request'));
      return;
    }
    const url = typeof input === 'string' ? new URL(input) : input;
    const signal = init.signal ?? undefined;
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    let body: string | Buffer | undefined;
    try {
      body = bodyBytes(init.body);
    } catch (err) {
      reject(err);
      return;
    }
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') {
      reject(new TypeError(`http-fetch: unsupported protocol ${url.protocol}`));
      return;
    }
    let settled = false;
    const onAbort = () => req.destroy(abortError(signal!));
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      f();
    };
    const req = (secure ? https : http).request(
      url,
      { method: init.method ?? 'GET', headers, agent: secure ? agents.https : agents.http },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => done(() => reject(err)));
        res.on('end', () =>
          done(() => {
            const raw = res.rawHeaders;
            const pairs: [string, string][] = [];
            for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
            const status = res.statusCode ?? 0;
            // A Response cannot carry a body for these statuses.
            const nullBody = status === 204 || status === 205 || status === 304 || init.method === 'HEAD';
            resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: pairs }));
          }),
        );
      },
    );
    req.on('error', (err) => done(() => reject(err.name === 'AbortError' ? err : new TypeError('fetch failed', { cause: err }))));
    signal?.addEventListener('abort', onAbort, { once: true });
    req.end(body);
  });
}
