import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stateDir } from '../../infra/paths';

/**
 * Content-addressed blob store. Keys are `sha256/<hex>`; a put of the same bytes twice is one blob.
 * The local filesystem implementation is the default; an S3-compatible one plugs in behind this interface.
 */
export interface BlobStore {
  put(bytes: Buffer): Promise<{ key: string; sha256: string; created: boolean }>;
  get(key: string): Promise<Buffer>;
  has(key: string): Promise<boolean>;
  /** Where a blob lives, for humans and exports (a file path or an s3:// URL). */
  locate(key: string): string;
}

export const sha256Hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export class LocalBlobStore implements BlobStore {
  constructor(readonly root: string) {}

  locate(key: string): string {
    const [kind, hex] = key.split('/');
    if (kind !== 'sha256' || !hex || !/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a blob key: ${key}`);
    return path.join(this.root, kind, hex.slice(0, 2), hex.slice(2, 4), hex);
  }

  async put(bytes: Buffer) {
    const sha256 = sha256Hex(bytes);
    const key = `sha256/${sha256}`;
    const file = this.locate(key);
    if (await this.has(key)) return { key, sha256, created: false };
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Write then rename: a crash never leaves a half-written blob under its final name.
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
    return { key, sha256, created: true };
  }

  get(key: string) {
    return fs.readFile(this.locate(key));
  }

  async has(key: string) {
    try {
      await fs.access(this.locate(key));
      return true;
    } catch {
      return false;
    }
  }
}

let store: BlobStore | undefined;

/** The process-wide blob store: `MELLA_BLOB_DIR` or `<state dir>/blobs`. */
export function blobs(): BlobStore {
  store ??= new LocalBlobStore(path.resolve(process.env.MELLA_BLOB_DIR ?? path.join(stateDir(), 'blobs')));
  return store;
}
