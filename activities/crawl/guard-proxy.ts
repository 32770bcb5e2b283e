/**
 * The SSRF guard of the browser crawl: a small forward proxy on 127.0.0.1 that every request of a
 * rendered page goes through (the page's browser context is created with it as `proxyServer`).
 *
 * Why a proxy and not only request interception (`context.route`): interception, as Playwright and
 * the DevTools protocol offer it, does not see every connection a page makes. Checked on Chromium 156
 * (docs/crawl.md, "Browser rendering"): the redirect hops of a routed request are continued without
 * the route handler, WebSockets are not intercepted, and speculation-rules prefetch/prerender run
 * outside the page's interception. A proxy sees all of them, because Chromium sends every HTTP(S)
 * and WebSocket connection of the context through it, loopback included (browser.ts puts
 * `<-loopback>` in the bypass list).
 *
 * It also closes the DNS time-of-check/time-of-use gap: Chromium sends host names to the proxy and
 * resolves nothing itself; the proxy resolves each name once, refuses it unless every address is
 * public (or allow-listed), and connects to exactly the addresses it checked (`AddressGuard.lookup`).
 *
 * - Plain HTTP (`GET http://host/path`, absolute form) is forwarded with node:http; a refused
 *   target gets `403` with `x-mella-blocked: <range>`, a failed one `502`/`504` with
 *   `x-mella-proxy-error: <reason>`, so the renderer can tell them from an origin's own answer.
 * - `CONNECT host:port` (HTTPS, WSS, WS) is tunnelled byte for byte; TLS stays end to end between
 *   Chromium and the origin (certificates are verified by Chromium). A refused tunnel is answered
 *   `403`; Chromium then fails the request with `net::ERR_TUNNEL_CONNECTION_FAILED`.
 * - Other upgrades (a WebSocket sent as a plain-HTTP upgrade) are refused: Chromium does not send
 *   them through an HTTP proxy.
 *
 * - Past `maxBytesFromOrigins` (the page's byte budget, counted on the wire), every origin
 *   connection is cut and new ones are refused (`503`, `x-mella-proxy-error: budget`).
 *
 * One proxy serves one page (one BrowserContext) and is closed with it, which destroys every socket
 * it holds (with a shared origin pool, `originAgent`: the origin connections its requests are
 * using). It listens on 127.0.0.1 only, and it connects only to addresses the guard lets through, so
 * another local process that found its port could reach nothing it could not reach directly.
 */
import http from 'node:http';
import net from 'node:net';
import { AddressGuard, BlockedAddressError } from '../shared/address-guard';

export interface GuardProxyOptions {
  /** DNS + TCP connect to the origin, per connection (default 10,000 ms). */
  connectTimeoutMs?: number;
  /** A connection or tunnel idle this long is closed (default 30,000 ms). */
  idleTimeoutMs?: number;
  /** At most this many refusals are kept in `events` (the rest are only counted; default 1,000). */
  maxEvents?: number;
  /**
   * Bytes from origins (all connections together) after which the proxy cuts every origin
   * connection and refuses new ones (`budget`): the page's byte budget, enforced on the wire.
   * Default: no limit.
   */
  maxBytesFromOrigins?: number;
  /** Called once when `maxBytesFromOrigins` is passed. */
  onBudgetExceeded?: () => void;
  /**
   * The keep-alive pool for plain-HTTP origin connections, shared by the proxies of one renderer
   * (`originAgent()`), so that the pages of one site do not each open their own connections to it.
   * The proxy holds a pooled connection only while one of its requests uses it: the budget cut and
   * `close()` destroy the connections in use, never an idle one another page may take next. Default:
   * a pool of the proxy's own, destroyed with it.
   */
  agent?: http.Agent;
}

/**
 * A keep-alive pool for `GuardProxyOptions.agent`. Every connection in it was opened through some
 * proxy's `AddressGuard.lookup` (all proxies of a renderer share one guard) and stays connected to
 * the address that was checked. It carries no page state: cookies and credentials are headers that
 * each page's own browser context sends.
 */
export function originAgent(idleTimeoutMs = 30_000): http.Agent {
  return new http.Agent({ keepAlive: true, maxFreeSockets: 32, timeout: idleTimeoutMs });
}

export type ProxyRefusalReason = 'private_address' | 'dns_error' | 'connect_timeout' | 'network_error' | 'bad_request' | 'budget';

/** One connection the proxy refused or could not make. */
export interface ProxyEvent {
  kind: 'http' | 'connect' | 'upgrade';
  /** The absolute URL for plain HTTP (credentials removed); `host:port` for a tunnel. */
  target: string;
  /** `host:port` in every case (IPv6 hosts in brackets), for matching with failed requests. */
  hostPort: string;
  reason: ProxyRefusalReason;
  detail: string;
}

export interface GuardProxyStats {
  httpRequests: number;
  tunnels: number;
  /** Bytes received from origins (response bodies and headers, TLS records for tunnels). */
  bytesFromOrigins: number;
  bytesToOrigins: number;
  refused: Partial<Record<ProxyRefusalReason, number>>;
}

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade',
]);

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME', 'ENODATA']);

export class GuardProxy {
  readonly events: ProxyEvent[] = [];
  private readonly counters: GuardProxyStats = { httpRequests: 0, tunnels: 0, bytesFromOrigins: 0, bytesToOrigins: 0, refused: {} };
  private readonly sockets = new Set<net.Socket>();
  /** Origin-side sockets (tunnels and forwarded requests), cut when the byte budget is passed. */
  private readonly originSockets = new Set<net.Socket>();
  private overBudget = false;
  private maxBytes: number;
  private readonly onBudgetExceeded: (() => void) | undefined;
  private readonly agent: http.Agent;
  /** The agent was made for this proxy alone (no options.agent): destroyed with it. */
  private readonly ownsAgent: boolean;
  private readonly lookup: net.LookupFunction;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxEvents: number;
  private closed = false;

  private constructor(
    private readonly server: http.Server,
    private readonly guard: AddressGuard,
    options: GuardProxyOptions,
  ) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.maxEvents = options.maxEvents ?? 1_000;
    this.maxBytes = options.maxBytesFromOrigins ?? Number.POSITIVE_INFINITY;
    this.onBudgetExceeded = options.onBudgetExceeded;
    this.lookup = guard.lookup();
    // Keep-alive to origins: a keyed socket was connected through the guard's lookup.
    this.ownsAgent = options.agent === undefined;
    this.agent = options.agent ?? new http.Agent({ keepAlive: true, maxSockets: 8, timeout: this.idleTimeoutMs });
  }

  /** Starts a proxy on 127.0.0.1 (an ephemeral port). */
  static async start(guard: AddressGuard, options: GuardProxyOptions = {}): Promise<GuardProxy> {
    const server = http.createServer();
    const proxy = new GuardProxy(server, guard, options);
    server.on('connection', (socket: net.Socket) => proxy.track(socket));
    server.on('request', (req, res) => proxy.onRequest(req, res));
    server.on('connect', (req, socket: net.Socket, head: Buffer) => proxy.onConnect(req, socket, head));
    server.on('upgrade', (req, socket: net.Socket) => proxy.onUpgrade(req, socket));
    server.on('clientError', (_err, socket: net.Socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  /** `http://127.0.0.1:<port>`, for `newContext({ proxy: { server } })`. */
  get url(): string {
    const address = this.server.address() as net.AddressInfo;
    return `http://127.0.0.1:${address.port}`;
  }

  stats(): GuardProxyStats {
    return { ...this.counters, refused: { ...this.counters.refused } };
  }

  /** Stops listening and destroys every connection (browser side and origin side). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (this.ownsAgent) this.agent.destroy();
    await done;
  }

  private track(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.sockets.has(socket)) return; // a keep-alive socket reused for another request
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Sets the byte budget (`maxBytesFromOrigins`) of a proxy started ahead of its page. */
  setMaxBytesFromOrigins(n: number): void {
    this.maxBytes = n;
    if (!this.overBudget && this.counters.bytesFromOrigins > n) this.received(0);
  }

  /** Whether the budget is spent. */
  get budgetExceeded(): boolean {
    return this.overBudget;
  }

  /** Counts bytes from an origin; past the budget, cuts every origin connection. */
  private received(n: number): void {
    this.counters.bytesFromOrigins += n;
    if (this.overBudget || this.counters.bytesFromOrigins <= this.maxBytes) return;
    this.spendBudget();
    try {
      this.onBudgetExceeded?.();
    } catch {
      // a listener's problem is not the proxy's
    }
  }

  /**
   * Ends the page's budget now (the renderer calls it when its decoded byte count runs out first):
   * every origin connection is cut and new ones are refused, as when the wire count passes it.
   */
  spendBudget(): void {
    if (this.overBudget) return;
    this.overBudget = true;
    for (const s of this.originSockets) s.destroy();
    this.originSockets.clear();
  }

  private trackOrigin(socket: net.Socket): void {
    this.track(socket);
    if (this.overBudget) {
      socket.destroy();
      return;
    }
    if (this.originSockets.has(socket)) return;
    this.originSockets.add(socket);
    socket.once('close', () => this.originSockets.delete(socket));
  }

  /**
   * A pooled origin connection, held for one request: cut with this page's budget or close, and given
   * back (untracked) when the request is done, since another page's proxy may take it next when the
   * agent is shared. Listeners go on the request, not on the socket, which outlives it.
   */
  private lendOrigin(socket: net.Socket, request: http.ClientRequest): void {
    if (this.closed || this.overBudget) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.originSockets.add(socket);
    request.once('close', () => {
      this.sockets.delete(socket);
      this.originSockets.delete(socket);
    });
  }

  private refuse(event: ProxyEvent): void {
    this.counters.refused[event.reason] = (this.counters.refused[event.reason] ?? 0) + 1;
    if (this.events.length < this.maxEvents) this.events.push(event);
  }

  /** Plain HTTP in absolute form: `GET http://host:port/path HTTP/1.1`. */
  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.counters.httpRequests++;
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      url = new URL('http://invalid.invalid/');
    }
    if (url.protocol !== 'http:' || !url.hostname) {
      this.refuse({ kind: 'http', target: truncate(req.url ?? ''), hostPort: '', reason: 'bad_request', detail: 'not an absolute http URL' });
      res.writeHead(400, { 'x-mella-proxy-error': 'bad_request', 'content-type': 'text/plain' }).end('bad proxy request');
      return;
    }
    url.username = '';
    url.password = '';
    const host = bareHost(url.hostname);
    const port = url.port === '' ? 80 : Number(url.port);
    const hostPort = joinHostPort(host, port);
    const target = truncate(url.href);

    if (this.overBudget) {
      this.refuse({ kind: 'http', target, hostPort, reason: 'budget', detail: 'the page\'s byte budget is spent' });
      res.writeHead(503, { 'x-mella-proxy-error': 'budget', 'content-type': 'text/plain' }).end('byte budget spent');
      req.resume();
      return;
    }
    if (net.isIP(host)) {
      const range = this.guard.blockedRange(host);
      if (range !== null) {
        this.refuse({ kind: 'http', target, hostPort, reason: 'private_address', detail: `${host} is not a public address (${range})` });
        res.writeHead(403, { 'x-mella-blocked': range, 'content-type': 'text/plain' }).end('blocked by the crawler: not a public address');
        req.resume();
        return;
      }
    }

    const headers: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, req.rawHeaders[i + 1]!);
    }
    let settled = false;
    const upstream = http.request({
      host,
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      agent: this.agent,
      lookup: this.lookup,
      setHost: false,
    });
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT_CONNECT' })), this.connectTimeoutMs);
    upstream.on('socket', (socket: net.Socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once('connect', () => clearTimeout(connectTimer));
      this.lendOrigin(socket, upstream);
    });
    upstream.setTimeout(this.idleTimeoutMs, () => upstream.destroy(Object.assign(new Error('idle timeout'), { code: 'ETIMEDOUT' })));
    upstream.on('response', (up) => {
      settled = true;
      clearTimeout(connectTimer);
      const out: string[] = [];
      for (let i = 0; i + 1 < up.rawHeaders.length; i += 2) {
        const name = up.rawHeaders[i]!;
        const lower = name.toLowerCase();
        if (!HOP_BY_HOP.has(lower) && lower !== 'transfer-encoding') out.push(name, up.rawHeaders[i + 1]!);
      }
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      up.on('data', (chunk: Buffer) => this.received(chunk.length));
      up.on('error', () => res.destroy());
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      clearTimeout(connectTimer);
      if (settled || res.headersSent) {
        res.destroy();
        return;
      }
      settled = true;
      const { reason, detail, status } = classify(err, host);
      this.refuse({ kind: 'http', target, hostPort, reason, detail });
      const extra: Record<string, string> = reason === 'private_address' ? { 'x-mella-blocked': (err as BlockedAddressError).range } : { 'x-mella-proxy-error': reason };
      res.writeHead(status, { ...extra, 'content-type': 'text/plain' }).end(`crawler proxy: ${detail}`);
    });
    res.on('close', () => {
      clearTimeout(connectTimer);
      if (!res.writableFinished) upstream.destroy();
    });
    req.on('data', (chunk: Buffer) => {
      this.counters.bytesToOrigins += chunk.length;
    });
    req.pipe(upstream);
  }

  /** `CONNECT host:port`: a byte tunnel once the guard let the address through. */
  private onConnect(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
    this.counters.tunnels++;
    this.track(client);
    client.on('error', () => client.destroy());
    const parsed = parseHostPort(req.url ?? '');
    if (!parsed) {
      this.refuse({ kind: 'connect', target: truncate(req.url ?? ''), hostPort: '', reason: 'bad_request', detail: 'malformed CONNECT target' });
      client.end('HTTP/1.1 400 Bad Request\r\nx-mella-proxy-error: bad_request\r\n\r\n');
      return;
    }
    const { host, port } = parsed;
    const hostPort = joinHostPort(host, port);
    const answer = (status: string, header: string): void => {
      if (!client.destroyed) client.end(`HTTP/1.1 ${status}\r\n${header}\r\ncontent-length: 0\r\n\r\n`);
    };
    if (this.overBudget) {
      this.refuse({ kind: 'connect', target: hostPort, hostPort, reason: 'budget', detail: 'the page\'s byte budget is spent' });
      answer('503 Service Unavailable', 'x-mella-proxy-error: budget');
      return;
    }
    if (net.isIP(host)) {
      const range = this.guard.blockedRange(host);
      if (range !== null) {
        this.refuse({ kind: 'connect', target: hostPort, hostPort, reason: 'private_address', detail: `${host} is not a public address (${range})` });
        answer('403 Forbidden', `x-mella-blocked: ${range}`);
        return;
      }
    }
    const origin = net.connect({ host, port, lookup: this.lookup });
    this.trackOrigin(origin);
    const connectTimer = setTimeout(() => origin.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT_CONNECT' })), this.connectTimeoutMs);
    let open = false;
    origin.once('connect', () => {
      clearTimeout(connectTimer);
      open = true;
      if (client.destroyed) {
        origin.destroy();
        return;
      }
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) origin.write(head);
      origin.setTimeout(this.idleTimeoutMs, () => origin.destroy());
      client.setTimeout(this.idleTimeoutMs, () => client.destroy());
      origin.on('data', (chunk: Buffer) => this.received(chunk.length));
      client.on('data', (chunk: Buffer) => {
        this.counters.bytesToOrigins += chunk.length;
      });
      origin.pipe(client);
      client.pipe(origin);
    });
    origin.on('error', (err) => {
      clearTimeout(connectTimer);
      if (open) {
        client.destroy();
        return;
      }
      const { reason, detail, status } = classify(err, host);
      this.refuse({ kind: 'connect', target: hostPort, hostPort, reason, detail });
      answer(
        status === 403 ? '403 Forbidden' : status === 504 ? '504 Gateway Timeout' : '502 Bad Gateway',
        reason === 'private_address' ? `x-mella-blocked: ${(err as BlockedAddressError).range}` : `x-mella-proxy-error: ${reason}`,
      );
    });
    origin.on('close', () => client.destroy());
    client.on('close', () => {
      clearTimeout(connectTimer);
      origin.destroy();
    });
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket): void {
    this.track(socket);
    let hostPort = '';
    try {
      const u = new URL(req.url ?? '');
      hostPort = joinHostPort(bareHost(u.hostname), u.port === '' ? 80 : Number(u.port));
    } catch {
      // keep empty
    }
    this.refuse({ kind: 'upgrade', target: truncate(req.url ?? ''), hostPort, reason: 'bad_request', detail: 'upgrade through the proxy is not supported' });
    socket.end('HTTP/1.1 403 Forbidden\r\nx-mella-proxy-error: bad_request\r\ncontent-length: 0\r\n\r\n');
  }
}

function classify(err: unknown, host: string): { reason: ProxyRefusalReason; detail: string; status: number } {
  if (err instanceof BlockedAddressError) return { reason: 'private_address', detail: err.message, status: 403 };
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  if (DNS_CODES.has(code) || e?.syscall === 'getaddrinfo') return { reason: 'dns_error', detail: `${host}: ${code || 'lookup failed'}`, status: 502 };
  if (code === 'ETIMEDOUT_CONNECT') return { reason: 'connect_timeout', detail: `${host}: no connection in time`, status: 504 };
  return { reason: 'network_error', detail: `${host}: ${code || e?.message || 'error'}`, status: 502 };
}

/** `[::1]` → `::1`. */
function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** `host:port`, IPv6 in brackets, host lower-cased. */
export function joinHostPort(host: string, port: number): string {
  const h = host.toLowerCase();
  return net.isIPv6(h) ? `[${h}]:${port}` : `${h}:${port}`;
}

/** Parses a CONNECT target (`example.com:443`, `[::1]:8443`); null when malformed. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  const host = (m[1] ?? m[2] ?? '').toLowerCase();
  if (m[1] !== undefined && !net.isIPv6(host)) return null;
  return { host, port };
}

function truncate(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
