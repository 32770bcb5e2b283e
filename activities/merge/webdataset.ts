/**
 * WebDataset export: POSIX tar shards per split, `webdataset/<name>-<split>-000000.tar`, `shardSize`
 * samples each (default 1,000). A sample is two consecutive members sharing a key: the image
 * (`<key>.jpg`, `.webp`, `.png` or `.avif`, by its format) and `<key>.json` with the text and its
 * lineage. The key is the sample's position in its split, nine digits (`000001234`): WebDataset cuts
 * the key at the first dot of the member name, so sample ids (with their colons and language tags)
 * stay inside the json. Members are written in export order, with mtime 0, mode 0644, owner 0:0.
 *
 *   000000000.jpg
 *   000000000.json  {"answer":"...","groupKey":"...","id":"know:th:42","imageSha256":"...","instruction":"...","lang":"th","lineage":{...},"source":"know","split":"train","standin":false}
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { canonicalJson } from './json';
import { IMAGE_EXTENSIONS, SPLITS, type SplitName } from './sample';
import { FileSink, type WrittenFile } from './sink';
import { TarWriter } from './tar';
import type { ExportRecord, FormatWriter } from './writer';

export const WEBDATASET_DIR = 'webdataset';
export const DEFAULT_SHARD_SIZE = 1000;

export const webdatasetJsonSchema = z
  .object({
    id: z.string().min(1),
    lang: z.string().min(1),
    source: z.enum(['know', 'ling', 'fused']),
    split: z.enum(['train', 'validation', 'test']),
    instruction: z.string().min(1),
    answer: z.string().min(1),
    imageSha256: z.string().regex(/^[0-9a-f]{64}$/),
    groupKey: z.string().min(1),
    standin: z.boolean(),
    lineage: z.record(z.string(), z.unknown()),
  })
  .strict();

export const webdatasetShardFile = (name: string, split: SplitName, shard: number) =>
  `${WEBDATASET_DIR}/${name}-${split}-${String(shard).padStart(6, '0')}.tar`;
export const webdatasetKey = (index: number) => String(index).padStart(9, '0');

export function webdatasetJson(r: ExportRecord) {
  const s = r.sample;
  return {
    id: s.id,
    lang: s.lang,
    source: s.source,
    split: r.split,
    instruction: s.instruction,
    answer: s.answer,
    imageSha256: s.imageSha256,
    groupKey: s.groupKey,
    standin: s.standin === true,
    lineage: s.lineage,
  };
}

interface OpenShard {
  number: number;
  count: number;
  sink: FileSink;
  tar: TarWriter;
}

export class WebDatasetWriter implements FormatWriter {
  readonly format = 'webdataset';
  private readonly open = new Map<SplitName, OpenShard>();
  private readonly next: Record<SplitName, number> = { train: 0, validation: 0, test: 0 };
  private readonly files: WrittenFile[] = [];

  constructor(
    readonly root: string,
    readonly name: string,
    readonly shardSize = DEFAULT_SHARD_SIZE,
  ) {
    if (!Number.isInteger(shardSize) || shardSize < 1) throw new Error(`webdataset: shardSize must be a positive integer, got ${shardSize}`);
  }

  private async close(split: SplitName) {
    const shard = this.open.get(split);
    if (!shard) return;
    this.open.delete(split);
    await shard.tar.finish();
    this.files.push(await shard.sink.close());
  }

  async write(r: ExportRecord): Promise<void> {
    let shard = this.open.get(r.split);
    if (shard && shard.count >= this.shardSize) {
      await this.close(r.split);
      shard = undefined;
    }
    if (!shard) {
      const number = this.next[r.split]++;
      const sink = await FileSink.open(this.root, webdatasetShardFile(this.name, r.split, number));
      shard = { number, count: 0, sink, tar: new TarWriter(sink, { mtime: 0, mode: 0o644 }) };
      this.open.set(r.split, shard);
    }
    const key = webdatasetKey(r.index);
    // Synchronous: a dataset image is small and usually in the page cache (the export just placed it);
    // fs.promises.readFile costs ten times as much per call in thread-pool hops.
    const image = readFileSync(r.imageFile);
    await shard.tar.addFiles([
      { name: `${key}.${IMAGE_EXTENSIONS[r.sample.imageFormat]}`, data: image },
      { name: `${key}.json`, data: Buffer.from(canonicalJson(webdatasetJson(r)), 'utf8') },
    ]);
    shard.count++;
  }

  async finish(): Promise<WrittenFile[]> {
    for (const split of SPLITS) await this.close(split);
    return this.files.sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  async abort() {
    for (const shard of this.open.values()) await shard.sink.abort();
    this.open.clear();
  }
}
