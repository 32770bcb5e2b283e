/**
 * LLaMA-Factory export: the sharegpt format with OpenAI-style `messages` and an `images` column, one
 * JSON array per split (`llamafactory/<name>_<split>.json`), registered in `dataset_info.json` at the
 * export root. LLaMA-Factory loads `file_name` relative to `dataset_dir` through `datasets` (json and
 * jsonl both work) and joins each image path with `media_dir`, which defaults to `dataset_dir`; so
 * with `dataset_dir: <export>` the relative `images/..` paths resolve. Every user turn starts with
 * `<image>`, and the number of `<image>` tokens in a sample equals `len(images)` (LLaMA-Factory's
 * multimodal plugins fail on a mismatch): checked on every record written and again, over the written
 * files, before the export is published.
 *
 *   [
 *   {"images":["images/3f/3f...c1.jpg"],"messages":[{"content":"<image>ภาพนี้แสดงอะไร","role":"user"},{"content":"วัดพระแก้ว","role":"assistant"}]},
 *   ...
 *   ]
 *
 * One record per line inside the array (no pretty printing): the file is written and validated as a
 * stream, and stays valid JSON for `json.load` and `datasets`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { canonicalJson } from './json';
import { readLines } from './lines';
import { SPLITS, type SplitName } from './sample';
import { FileSink, type WrittenFile } from './sink';
import type { ExportRecord, FormatWriter } from './writer';

export const IMAGE_TOKEN = '<image>';
export const LLAMAFACTORY_DIR = 'llamafactory';

export const sharegptMessageSchema = z.object({ role: z.enum(['user', 'assistant']), content: z.string().min(1) }).strict();
export const llamaFactoryRecordSchema = z
  .object({
    messages: z.array(sharegptMessageSchema).min(2),
    images: z.array(z.string().regex(/^images\/[0-9a-f]{2}\/[0-9a-f]{64}\.(jpg|webp|png|avif)$/)).min(1),
  })
  .strict();
export type LlamaFactoryRecord = z.infer<typeof llamaFactoryRecordSchema>;

/** One entry of `dataset_info.json` (the keys LLaMA-Factory's parser reads for this export). */
export const datasetInfoEntrySchema = z
  .object({
    file_name: z.string(),
    formatting: z.literal('sharegpt'),
    columns: z.object({ messages: z.literal('messages'), images: z.literal('images') }).strict(),
    tags: z
      .object({ role_tag: z.literal('role'), content_tag: z.literal('content'), user_tag: z.literal('user'), assistant_tag: z.literal('assistant') })
      .strict(),
  })
  .strict();
export const datasetInfoSchema = z.record(z.string(), datasetInfoEntrySchema);

export function llamaFactoryRecord(r: Pick<ExportRecord, 'sample' | 'imageRel'>): LlamaFactoryRecord {
  return {
    messages: [
      { role: 'user', content: `${IMAGE_TOKEN}${r.sample.instruction}` },
      { role: 'assistant', content: r.sample.answer },
    ],
    images: [r.imageRel],
  };
}

const countToken = (text: string, token: string) => text.split(token).length - 1;

/**
 * What is wrong with a sharegpt record for a multimodal trainer, or undefined: roles alternate
 * user/assistant starting with the user, and the `<image>` tokens of all turns equal `len(images)`.
 */
export function checkImageTokens(record: { messages: { role: string; content: string }[]; images: string[] }): string | undefined {
  const { messages, images } = record;
  if (messages.length === 0 || messages.length % 2 !== 0) return `expected user/assistant pairs, got ${messages.length} messages`;
  for (let i = 0; i < messages.length; i++) {
    const want = i % 2 === 0 ? 'user' : 'assistant';
    if (messages[i]!.role !== want) return `message ${i} has role ${messages[i]!.role}, expected ${want}`;
  }
  const tokens = messages.reduce((n, m) => n + countToken(m.content, IMAGE_TOKEN), 0);
  if (tokens !== images.length) return `${tokens} ${IMAGE_TOKEN} tokens for ${images.length} images`;
  if (!messages[0]!.content.startsWith(IMAGE_TOKEN)) return `the first user turn does not start with ${IMAGE_TOKEN}`;
  return undefined;
}

export class ImageTokenError extends Error {}

export const llamaFactoryFile = (name: string, split: SplitName) => `${LLAMAFACTORY_DIR}/${name}_${split}.json`;

export class LlamaFactoryWriter implements FormatWriter {
  readonly format = 'llamafactory';
  private readonly sinks = new Map<SplitName, FileSink>();
  private readonly counts: Record<SplitName, number> = { train: 0, validation: 0, test: 0 };

  constructor(
    readonly root: string,
    readonly name: string,
  ) {}

  private async sink(split: SplitName) {
    let s = this.sinks.get(split);
    if (s === undefined) {
      s = await FileSink.open(this.root, llamaFactoryFile(this.name, split));
      this.sinks.set(split, s);
    }
    return s;
  }

  async write(r: ExportRecord): Promise<void> {
    const record = llamaFactoryRecord(r);
    const problem = checkImageTokens(record);
    if (problem) throw new ImageTokenError(`sample ${r.sample.id}: ${problem}`);
    const sink = await this.sink(r.split);
    await sink.write(`${this.counts[r.split]++ === 0 ? '[\n' : ',\n'}${canonicalJson(record)}`);
  }

  async finish(): Promise<WrittenFile[]> {
    const files: WrittenFile[] = [];
    for (const split of SPLITS) {
      const sink = await this.sink(split);
      await sink.write(this.counts[split] === 0 ? '[]\n' : '\n]\n');
      files.push(await sink.close());
    }
    const info: Record<string, unknown> = {};
    for (const split of SPLITS) {
      if (this.counts[split] === 0) continue; // datasets cannot load an empty array
      info[`${this.name}_${split}`] = {
        file_name: llamaFactoryFile(this.name, split),
        formatting: 'sharegpt',
        columns: { messages: 'messages', images: 'images' },
        tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
      };
    }
    const sink = await FileSink.open(this.root, 'dataset_info.json');
    await sink.write(`${JSON.stringify(JSON.parse(canonicalJson(info)), null, 2)}\n`);
    files.push(await sink.close());
    return files;
  }

  async abort() {
    for (const s of this.sinks.values()) await s.abort();
  }
}

export interface ValidationProblem {
  file: string;
  line: number;
  problem: string;
}

export class ExportValidationError extends Error {
  constructor(readonly problems: ValidationProblem[]) {
    super(`export validation failed: ${problems.slice(0, 5).map((p) => `${p.file}:${p.line}: ${p.problem}`).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
  }
}

/**
 * Validates one written sharegpt file as a stream: a JSON array with one record per line, each record
 * matching the schema, with as many `<image>` tokens as images, and (with `checkImages`) every image
 * present in the export. Returns the number of records and the problems (at most `maxProblems`).
 */
export async function validateSharegptFile(
  root: string,
  relPath: string,
  options: { layout: 'json-array' | 'jsonl'; checkImages?: boolean; maxProblems?: number },
): Promise<{ records: number; problems: ValidationProblem[] }> {
  const problems: ValidationProblem[] = [];
  const max = options.maxProblems ?? 100;
  const add = (line: number, problem: string) => problems.length < max && problems.push({ file: relPath, line, problem });
  let records = 0;
  let lineNo = 0;
  let closed = false;
  let opened = options.layout === 'jsonl';
  let prevComma = false;
  const present = new Set<string>(); // recently confirmed images (bounded)
  for await (const raw of readLines(path.join(root, relPath))) {
    lineNo++;
    if (options.layout === 'json-array') {
      if (lineNo === 1) {
        if (raw === '[]') {
          opened = true;
          closed = true;
          continue;
        }
        if (raw !== '[') add(lineNo, 'expected "[" on the first line');
        opened = true;
        continue;
      }
      if (raw === ']') {
        if (prevComma) add(lineNo, 'trailing comma before "]"');
        closed = true;
        continue;
      }
      if (closed) {
        if (raw !== '') add(lineNo, 'content after the closing "]"');
        continue;
      }
    } else if (raw === '') {
      continue;
    }
    if (options.layout === 'json-array') {
      if (records > 0 && !prevComma) add(lineNo, 'missing comma between records');
      prevComma = raw.endsWith(',');
    }
    const text = options.layout === 'json-array' && raw.endsWith(',') ? raw.slice(0, -1) : raw;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      add(lineNo, `not JSON: ${(err as Error).message}`);
      continue;
    }
    records++;
    const parsed = llamaFactoryRecordSchema.safeParse(value);
    if (!parsed.success) {
      add(lineNo, `schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join(', ')}`);
      continue;
    }
    const problem = checkImageTokens(parsed.data);
    if (problem) add(lineNo, problem);
    if (options.checkImages) {
      for (const img of parsed.data.images) {
        if (present.has(img)) continue;
        try {
          await fs.access(path.join(root, img));
          if (present.size >= 4096) present.clear();
          present.add(img);
        } catch {
          add(lineNo, `image not in the export: ${img}`);
        }
      }
    }
  }
  if (options.layout === 'json-array' && (!opened || !closed)) add(lineNo, 'the JSON array is not closed');
  return { records, problems };
}
