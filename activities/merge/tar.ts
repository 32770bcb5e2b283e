/**
 * A small streaming POSIX tar (ustar) writer and reader, enough for WebDataset shards: regular files
 * only, names longer than 100 bytes (or not ASCII) and sizes of 8 GiB and more through pax extended
 * headers (POSIX.1-2001), fixed mode, owner and mtime so the same members give the same bytes.
 * The archive ends with two zero blocks and is padded to a 10,240-byte record, as GNU and BSD tar do.
 */
import fs from 'node:fs/promises';

const BLOCK = 512;
const RECORD = 20 * BLOCK;
const MAX_OCTAL_11 = 0o77777777777; // 11 octal digits: 8 GiB - 1

export interface TarEntryOptions {
  /** Seconds since the epoch; default the writer's (0 unless set). */
  mtime?: number;
  mode?: number;
}

function writeString(header: Buffer, offset: number, length: number, value: string) {
  header.write(value, offset, length, 'utf8');
}

function writeOctal(header: Buffer, offset: number, length: number, value: number) {
  // length-1 digits then NUL
  writeString(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body);
  // the length counts its own digits
  let len = bodyBytes + 1;
  for (let next = bodyBytes + String(len).length; next !== len; next = bodyBytes + String(len).length) len = next;
  return `${len}${body}`;
}

function ustarHeader(name: string, size: number, mtime: number, mode: number, type: '0' | 'x'): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  writeString(h, 156, 1, type);
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeOctal(h, 329, 8, 0); // devmajor
  writeOctal(h, 337, 8, 0); // devminor
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  writeString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

const padding = (size: number) => (size % BLOCK === 0 ? 0 : BLOCK - (size % BLOCK));

export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
}

export class TarWriter {
  private bytes = 0;
  private finished = false;

  constructor(
    private readonly sink: ByteSink,
    private readonly defaults: { mtime?: number; mode?: number } = {},
  ) {}

  private async put(chunk: Buffer) {
    this.bytes += chunk.length;
    await this.sink.write(chunk);
  }

  /** Adds one regular file. */
  async addFile(name: string, data: Buffer, options: TarEntryOptions = {}): Promise<void> {
    await this.addFiles([{ name, data, ...options }]);
  }

  /** Adds regular files in order, in one write to the sink (a sample's image and json together). */
  async addFiles(files: ({ name: string; data: Buffer } & TarEntryOptions)[]): Promise<void> {
    if (this.finished) throw new Error('tar: addFile after finish');
    const chunks: Buffer[] = [];
    for (const f of files) chunks.push(...this.member(f.name, f.data, f));
    await this.put(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  }

  private member(name: string, data: Buffer, options: TarEntryOptions): Buffer[] {
    if (name === '' || name.includes('\0')) throw new Error(`tar: bad member name ${JSON.stringify(name)}`);
    const out: Buffer[] = [];
    const mtime = options.mtime ?? this.defaults.mtime ?? 0;
    const mode = options.mode ?? this.defaults.mode ?? 0o644;
    const nameBytes = Buffer.byteLength(name);
    const needsPaxName = nameBytes > 100 || /[^\x20-\x7e]/.test(name);
    const needsPaxSize = data.length > MAX_OCTAL_11;
    if (needsPaxName || needsPaxSize) {
      let records = '';
      if (needsPaxName) records += paxRecord('path', name);
      if (needsPaxSize) records += paxRecord('size', String(data.length));
      const body = Buffer.from(records, 'utf8');
      const base = (name.split('/').pop() ?? 'member').replace(/[^\x20-\x7e]/g, '_');
      const paxName = Buffer.from(`PaxHeader/${base}`).subarray(0, 100).toString('latin1');
      out.push(ustarHeader(paxName, body.length, mtime, 0o644, 'x'), body, Buffer.alloc(padding(body.length)));
    }
    const plainName = needsPaxName ? Buffer.from(name.replace(/[^\x20-\x7e]/g, '_')).subarray(0, 100).toString('latin1') : name;
    out.push(ustarHeader(plainName, needsPaxSize ? 0 : data.length, mtime, mode, '0'), data, Buffer.alloc(padding(data.length)));
    return out;
  }

  /** Two zero blocks, then zeros up to a whole record. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    let end = this.bytes + 2 * BLOCK;
    end += (RECORD - (end % RECORD)) % RECORD;
    await this.put(Buffer.alloc(end - this.bytes));
  }
}

export interface TarMember {
  name: string;
  size: number;
  mtime: number;
  mode: number;
  type: string;
  data: Buffer;
}

function parseOctal(buf: Buffer, offset: number, length: number): number {
  const s = buf.toString('latin1', offset, offset + length).replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < body.length) {
    const space = body.indexOf(0x20, off);
    if (space < 0) break;
    const len = parseInt(body.toString('latin1', off, space), 10);
    if (!(len > 0)) throw new Error('tar: malformed pax record');
    const rec = body.toString('utf8', space + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

/**
 * Reads a tar file member by member (regular files; pax `x` headers applied, `g` headers skipped),
 * checking every header's checksum. Memory is one member.
 */
export async function* readTar(file: string): AsyncGenerator<TarMember> {
  const fh = await fs.open(file, 'r');
  try {
    let pos = 0;
    const read = async (n: number) => {
      const buf = Buffer.alloc(n);
      let got = 0;
      while (got < n) {
        const { bytesRead } = await fh.read(buf, got, n - got, pos + got);
        if (bytesRead === 0) throw new Error(`tar: truncated at byte ${pos + got} of ${file}`);
        got += bytesRead;
      }
      pos += n;
      return buf;
    };
    let pax: Record<string, string> = {};
    for (;;) {
      const h = await read(BLOCK);
      if (h.every((b) => b === 0)) return;
      const stored = parseOctal(h, 148, 8);
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
      if (sum !== stored) throw new Error(`tar: bad header checksum at byte ${pos - BLOCK} of ${file}`);
      const type = String.fromCharCode(h[156]!) || '0';
      let size = parseOctal(h, 124, 12);
      const prefix = h.toString('utf8', 345, 500).replace(/\0.*$/s, '');
      let name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      if (prefix && h.toString('latin1', 257, 262) === 'ustar') name = `${prefix}/${name}`;
      if (type === 'x' || type === 'g') {
        const body = await read(size + padding(size));
        if (type === 'x') pax = parsePax(body.subarray(0, size));
        continue;
      }
      if (pax.path !== undefined) name = pax.path;
      if (pax.size !== undefined) size = Number(pax.size);
      pax = {};
      const data = (await read(size + padding(size))).subarray(0, size);
      yield { name, size, mtime: parseOctal(h, 136, 12), mode: parseOctal(h, 100, 8), type: type === '\0' ? '0' : type, data };
    }
  } finally {
    await fh.close();
  }
}
