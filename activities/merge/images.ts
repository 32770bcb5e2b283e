/**
 * Puts a sample's image into an export: `images/<sha256[0:2]>/<sha256>.<ext>`, hard-linked from the
 * blob store when both are on one filesystem (no bytes copied; blobs are immutable), copied otherwise.
 * The file system itself remembers which images are already there (the link or copy fails with EEXIST),
 * so memory does not grow with the number of images. A newly placed image is hashed and compared with
 * the sample's sha256 when `verify` is on: an export never ships bytes other than the ones its manifest
 * names.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { imageRelPath } from './sample';

export type ImageMode = 'link' | 'copy';

const RECENT = 4096;

export interface PlacedImage {
  relPath: string;
  /** False when an earlier sample already placed it. */
  created: boolean;
  bytes: number;
  /** How it got there this time (undefined when it was already there). */
  how?: 'link' | 'copy';
}

export class ImageMismatchError extends Error {}
export class ImageMissingError extends Error {}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export class ImagePlacer {
  private readonly dirs = new Set<string>(); // at most 256 prefixes
  /** Recently placed images (bounded): skips the syscall for an image shared by consecutive samples. */
  private readonly recent = new Map<string, string>();
  private linkFailed = false;
  count = 0;
  bytes = 0;

  constructor(
    readonly root: string,
    readonly options: { mode: ImageMode; verify: boolean },
  ) {}

  async place(sha256: string, format: string, source: string): Promise<PlacedImage> {
    const known = this.recent.get(sha256);
    if (known !== undefined) return { relPath: known, created: false, bytes: 0 };
    const placed = await this.placeOnDisk(sha256, format, source);
    this.recent.set(sha256, placed.relPath);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
    return placed;
  }

  private async placeOnDisk(sha256: string, format: string, source: string): Promise<PlacedImage> {
    const relPath = imageRelPath(sha256, format);
    const dest = path.join(this.root, relPath);
    const dir = path.dirname(dest);
    if (!this.dirs.has(dir)) {
      await fs.mkdir(dir, { recursive: true });
      this.dirs.add(dir);
    }
    let how: 'link' | 'copy' | undefined;
    try {
      if (this.options.mode === 'link' && !this.linkFailed) {
        try {
          await fs.link(source, dest);
          how = 'link';
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EEXIST' || code === 'ENOENT') throw err;
          this.linkFailed = true; // EXDEV, EPERM, EMLINK...: copy from now on
        }
      }
      if (how === undefined) {
        await fs.copyFile(source, dest, fs.constants.COPYFILE_EXCL);
        how = 'copy';
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return { relPath, created: false, bytes: 0 };
      if (code === 'ENOENT') throw new ImageMissingError(`image file not found: ${source}`);
      throw err;
    }
    if (this.options.verify) {
      const actual = await sha256File(dest);
      if (actual !== sha256) {
        await fs.rm(dest, { force: true });
        // an empty prefix folder would be the only trace of the refused image
        await fs.rmdir(dir).then(() => this.dirs.delete(dir)).catch(() => undefined);
        throw new ImageMismatchError(`image ${source} has sha256 ${actual}, the sample says ${sha256}`);
      }
    }
    const { size } = await fs.stat(dest);
    this.count++;
    this.bytes += size;
    return { relPath, created: true, bytes: size, how };
  }
}
