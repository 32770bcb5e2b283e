/**
 * The SSRF guard shared by every stage that connects to addresses taken from the web: the ingest
 * stage's image downloader (activities/ingest/fetch-image.ts) and the crawl stage's browser proxy
 * (activities/crawl/guard-proxy.ts).
 *
 * `AddressGuard` decides whether an IP address may be connected to: only public unicast addresses
 * pass, unless a configured CIDR exempts them (tests allow-list 127.0.0.1/32). Its `lookup()` is a
 * drop-in `lookup` for `http.request` / `net.connect`: it resolves every address of a name, refuses
 * the connection unless all of them pass, and the socket then connects only to the addresses it
 * checked, so a name cannot be re-resolved to something else between the check and the connect.
 * A literal IP never reaches `lookup` (Node skips DNS for it): callers check it with `blockedRange`.
 */
import dns from 'node:dns';
import type net from 'node:net';
import ipaddr from 'ipaddr.js';

type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/** Global unicast IPv6 space (2000::/3). Anything outside it is unallocated or special-purpose. */
const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

/** Thrown from `AddressGuard.lookup()` and recognised when the connection fails. */
export class BlockedAddressError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
    readonly range: string,
  ) {
    super(`${host} resolves to ${address} (${range}), which is not a public address`);
    this.name = 'BlockedAddressError';
  }
}

export class AddressGuard {
  private readonly allowed: Array<[IpAddress, number]>;

  /** @throws TypeError for an entry that is neither an IP nor a CIDR (a configuration error). */
  constructor(allowPrivateNetworks: readonly string[]) {
    this.allowed = allowPrivateNetworks.map((entry) => {
      const text = entry.trim();
      if (ipaddr.isValidCIDR(text)) return ipaddr.parseCIDR(text);
      if (ipaddr.isValid(text)) {
        const addr = ipaddr.parse(text);
        return [addr, addr.kind() === 'ipv4' ? 32 : 128];
      }
      throw new TypeError(`allowPrivateNetworks: "${entry}" is not an IP address or CIDR`);
    });
  }

  /** Returns null when the address may be connected to, else the name of the range that blocks it. */
  blockedRange(address: string): string | null {
    let addr: IpAddress;
    try {
      addr = ipaddr.parse(address);
    } catch {
      return 'unparseable';
    }
    // An IPv4-mapped IPv6 address (::ffff:10.0.0.1) reaches the IPv4 host: judge that host.
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
      addr = (addr as ipaddr.IPv6).toIPv4Address();
    }
    if (this.isAllowListed(addr)) return null;
    const range = addr.range();
    if (range !== 'unicast') return range;
    // ipaddr.js calls everything it has no name for "unicast", including IPv4-compatible
    // (::a.b.c.d) and unallocated IPv6 space; only global unicast 2000::/3 is really public.
    // NAT64 (64:ff9b::/96, range "rfc6052") is blocked too: it would need its own embedded-IPv4 check.
    if (addr.kind() === 'ipv6' && !addr.match(IPV6_GLOBAL_UNICAST)) return 'nonGlobalIPv6';
    return null;
  }

  private isAllowListed(addr: IpAddress): boolean {
    return this.allowed.some(([net, bits]) => {
      if (net.kind() !== addr.kind()) return false;
      return addr.match(net, bits);
    });
  }

  /**
   * A `lookup` for http.request: resolves every address of the name and refuses the connection
   * unless all of them pass. The socket then connects only to addresses returned here, so a name
   * cannot be re-resolved to something else between the check and the connect.
   */
  lookup(): net.LookupFunction {
    return (hostname, options, callback) => {
      dns.lookup(hostname, { family: options.family ?? 0, hints: options.hints, all: true }, (err, addresses) => {
        if (err) {
          callback(err, '', 0);
          return;
        }
        if (addresses.length === 0) {
          const noData: NodeJS.ErrnoException = new Error(`no addresses for ${hostname}`);
          noData.code = 'ENOTFOUND';
          callback(noData, '', 0);
          return;
        }
        for (const { address } of addresses) {
          const range = this.blockedRange(address);
          if (range !== null) {
            callback(new BlockedAddressError(hostname, address, range), '', 0);
            return;
          }
        }
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      });
    };
  }
}
