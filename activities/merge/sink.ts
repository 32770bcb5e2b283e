/**
 * A file written front to back through one fixed buffer of its own, hashed as it is written: what every
 * export writer writes through. Chunks are copied into the buffer (never kept by reference: a small
 * Buffer or string view would pin the 8 KiB pool slab it came from, and a sink that fills slowly, such
 * as a 5% test split, would pin many), so a sink's memory is exactly its buffer, whatever the file's size.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface WrittenFile {
  /** Path relative to the export directory, with forward slashes. */
  path: string;
  bytes: number;
  sha256: string;
}

export class FileSink {
  private handle: fs.FileHandle | undefined;
  private readonly hash: Hash = createHash('sha256');
  private readonly buf: Buffer;
  private used = 0;
  private written = 0;
  private closed = false;

  private constructor(
    readonly root: string,
    readonly relPath: string,
    bufferBytes: number,
  ) {
    this.buf = Buffer.allocUnsafeSlow(bufferBytes);
  }

  /** Creates (truncates) `root/relPath`, making its folder. */
  static async open(root: string, relPath: string, bufferBytes = 256 * 1024): Promise<FileSink> {
    const sink = new FileSink(root, relPath, bufferBytes);
    const file = path.join(root, relPath);
    await fs.mkdir(path.dirname(file), { recursive: true });
    sink.handle = await fs.open(file, 'w');
    return sink;
  }

  get bytes() {
    return this.written + this.used;
  }

  async write(chunk: string | Buffer): Promise<void> {
    if (this.closed) throw new Error(`write after close: ${this.relPath}`);
    const free = this.buf.length - this.used;
    if (typeof chunk === 'string') {
      // at most 3 UTF-8 bytes per UTF-16 code unit: skip measuring when it surely fits
      const bytes = chunk.length * 3 <= free ? -1 : Buffer.byteLength(chunk, 'utf8');
      if (bytes > free) {
        await this.flush();
        if (bytes > this.buf.length) return this.writeThrough(Buffer.from(chunk, 'utf8'));
      }
      this.used += this.buf.write(chunk, this.used, 'utf8');
      return;
    }
    if (chunk.length > free) {
      await this.flush();
      if (chunk.length > this.buf.length) return this.writeThrough(chunk);
    }
    this.used += chunk.copy(this.buf, this.used);
  }

  private async writeThrough(data: Buffer) {
    this.hash.update(data);
    let off = 0;
    while (off < data.length) off += (await this.handle!.write(data, off, data.length - off)).bytesWritten;
    this.written += data.length;
  }

  private async flush() {
    if (this.used === 0) return;
    const n = this.used;
    this.used = 0;
    await this.writeThrough(this.buf.subarray(0, n));
  }

  async close(): Promise<WrittenFile> {
    if (this.closed) throw new Error(`closed twice: ${this.relPath}`);
    await this.flush();
    this.closed = true;
    await this.handle!.close();
    return { path: this.relPath.split(path.sep).join('/'), bytes: this.written, sha256: this.hash.digest('hex') };
  }

  /** Closes without caring about the content (an export that failed; its folder is removed). */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.used = 0;
    await this.handle?.close().catch(() => undefined);
  }
}
