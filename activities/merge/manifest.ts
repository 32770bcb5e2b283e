/**
 * The manifest: one JSON line per exported sample (`manifest.jsonl`), in export order, with everything
 * needed to trace it: its split and position in the split (the same position in every format: line
 * `index` of the split's sharegpt and jsonl files, key `index` in the WebDataset shards), the image file
 * and sha256, the group it was split by, the text, whether a stand-in model wrote it, and its full
 * lineage (page URL, crawl time, operators passed, models and prompt versions). Keys sorted.
 *
 *   {"answer":"...","groupKey":"...","id":"know:th:42","image":"images/3f/3f...c1.jpg","imageFormat":"jpeg","imageSha256":"3f...c1","index":17,"instruction":"...","lang":"th","lineage":{"pageUrl":"https://...","crawledAt":"...","operators":["normalize","..."]},"source":"know","split":"train","standin":false}
 */
import path from 'node:path';
import { z } from 'zod';
import { canonicalJson } from './json';
import { readLines } from './lines';
import { FileSink, type WrittenFile } from './sink';
import type { ExportRecord, FormatWriter } from './writer';

export const MANIFEST_FILE = 'manifest.jsonl';

export const manifestLineSchema = z
  .object({
    id: z.string().min(1),
    lang: z.string().min(1),
    source: z.enum(['know', 'ling', 'fused']),
    split: z.enum(['train', 'validation', 'test']),
    index: z.number().int().min(0),
    image: z.string().regex(/^images\/[0-9a-f]{2}\/[0-9a-f]{64}\.(jpg|webp|png|avif)$/),
    imageSha256: z.string().regex(/^[0-9a-f]{64}$/),
    imageFormat: z.enum(['jpeg', 'webp', 'png', 'avif']),
    groupKey: z.string().min(1),
    instruction: z.string().min(1),
    answer: z.string().min(1),
    standin: z.boolean(),
    lineage: z.record(z.string(), z.unknown()),
  })
  .strict();
export type ManifestLine = z.infer<typeof manifestLineSchema>;

export function manifestLine(r: ExportRecord): ManifestLine {
  const s = r.sample;
  return {
    id: s.id,
    lang: s.lang,
    source: s.source,
    split: r.split,
    index: r.index,
    image: r.imageRel,
    imageSha256: s.imageSha256,
    imageFormat: s.imageFormat as ManifestLine['imageFormat'],
    groupKey: s.groupKey,
    instruction: s.instruction,
    answer: s.answer,
    standin: s.standin === true,
    lineage: s.lineage,
  };
}

export class ManifestWriter implements FormatWriter {
  readonly format = 'manifest';
  private sink: FileSink | undefined;

  constructor(readonly root: string) {}

  async write(r: ExportRecord): Promise<void> {
    this.sink ??= await FileSink.open(this.root, MANIFEST_FILE);
    await this.sink.write(`${canonicalJson(manifestLine(r))}\n`);
  }

  async finish(): Promise<WrittenFile[]> {
    this.sink ??= await FileSink.open(this.root, MANIFEST_FILE);
    return [await this.sink.close()];
  }

  async abort() {
    await this.sink?.abort();
  }
}

/** The manifest of an export directory (or a manifest file), line by line; `validate` checks the schema. */
export async function* readManifest(dirOrFile: string, options: { validate?: boolean } = {}): AsyncGenerator<ManifestLine> {
  const file = dirOrFile.endsWith('.jsonl') ? dirOrFile : path.join(dirOrFile, MANIFEST_FILE);
  let n = 0;
  for await (const line of readLines(file)) {
    n++;
    if (line === '') continue;
    const value = JSON.parse(line) as unknown;
    if (options.validate) {
      const parsed = manifestLineSchema.safeParse(value);
      if (!parsed.success) throw new Error(`${file}:${n}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join(', ')}`);
      yield parsed.data;
    } else {
      yield value as ManifestLine;
    }
  }
}

export type { WrittenFile };
