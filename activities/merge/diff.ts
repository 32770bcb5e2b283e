/**
 * What changed between two exports (two versions of the dataset): the sample ids added, removed and
 * changed, per language and source, exactly. "Changed" is the same id with another instruction, answer,
 * image or split; a lineage-only change (a re-crawl time) is not a change of the training data.
 *
 * Exact in bounded memory: when the manifests are small (under `partitionBytes` together, 64 MiB by
 * default) the old one's ids are held in memory; otherwise both are first spread over temporary
 * partition files by a hash of the id, and each partition pair is compared in memory. Only the result
 * (the changed ids) grows with the size of the change.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { canonicalJson } from './json';
import { readLines } from './lines';
import { MANIFEST_FILE, type ManifestLine } from './manifest';
import type { SampleSource } from './sample';

export type IdsByLangSource = Record<string, Partial<Record<SampleSource, string[]>>>;

export interface ManifestDiff {
  added: IdsByLangSource;
  removed: IdsByLangSource;
  changed: IdsByLangSource;
  counts: {
    added: number;
    removed: number;
    changed: number;
    unchanged: number;
    /** language -> source -> { added, removed, changed } */
    byLang: Record<string, Partial<Record<SampleSource, { added: number; removed: number; changed: number }>>>;
  };
}

interface Entry {
  id: string;
  lang: string;
  source: SampleSource;
  /** Hash of what a trainer sees: instruction, answer, image, split. */
  content: string;
}

function entryOf(line: ManifestLine): Entry {
  const content = createHash('sha256')
    .update(canonicalJson({ instruction: line.instruction, answer: line.answer, imageSha256: line.imageSha256, split: line.split }))
    .digest('hex')
    .slice(0, 32);
  return { id: line.id, lang: line.lang, source: line.source, content };
}

async function* entries(file: string): AsyncGenerator<Entry> {
  for await (const line of readLines(file)) if (line !== '') yield entryOf(JSON.parse(line) as ManifestLine);
}

const manifestPath = (p: string) => (p.endsWith('.jsonl') ? p : path.join(p, MANIFEST_FILE));

class DiffBuilder {
  readonly diff: ManifestDiff = { added: {}, removed: {}, changed: {}, counts: { added: 0, removed: 0, changed: 0, unchanged: 0, byLang: {} } };

  note(kind: 'added' | 'removed' | 'changed', e: Entry) {
    const ids = ((this.diff[kind][e.lang] ??= {})[e.source] ??= []);
    ids.push(e.id);
    this.diff.counts[kind]++;
    const c = ((this.diff.counts.byLang[e.lang] ??= {})[e.source] ??= { added: 0, removed: 0, changed: 0 });
    c[kind]++;
  }

  /** Compares one old/new pair in memory. */
  async compare(oldEntries: AsyncIterable<Entry>, newEntries: AsyncIterable<Entry>) {
    const old = new Map<string, Entry>();
    for await (const e of oldEntries) old.set(e.id, e);
    for await (const e of newEntries) {
      const o = old.get(e.id);
      if (o === undefined) this.note('added', e);
      else {
        old.delete(e.id);
        if (o.content !== e.content || o.lang !== e.lang || o.source !== e.source) this.note('changed', e);
        else this.diff.counts.unchanged++;
      }
    }
    for (const e of old.values()) this.note('removed', e);
  }

  result(): ManifestDiff {
    const sortIds = (x: IdsByLangSource) => {
      const out: IdsByLangSource = {};
      for (const lang of Object.keys(x).sort()) {
        out[lang] = {};
        for (const source of Object.keys(x[lang]!).sort() as SampleSource[]) out[lang]![source] = x[lang]![source]!.sort();
      }
      return out;
    };
    const byLang: ManifestDiff['counts']['byLang'] = {};
    for (const lang of Object.keys(this.diff.counts.byLang).sort()) byLang[lang] = this.diff.counts.byLang[lang]!;
    return { added: sortIds(this.diff.added), removed: sortIds(this.diff.removed), changed: sortIds(this.diff.changed), counts: { ...this.diff.counts, byLang } };
  }
}

async function writeLine(ws: WriteStream, text: string) {
  if (!ws.write(text)) await new Promise<void>((resolve) => ws.once('drain', resolve));
}

async function closeStream(ws: WriteStream) {
  await new Promise<void>((resolve, reject) => ws.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

async function partition(file: string, dir: string, tag: string, parts: number) {
  const streams = Array.from({ length: parts }, (_, i) => createWriteStream(path.join(dir, `${tag}-${i}.jsonl`)));
  try {
    for await (const e of entries(file)) {
      const p = createHash('sha256').update(e.id).digest().readUInt32BE(0) % parts;
      await writeLine(streams[p]!, `${JSON.stringify([e.id, e.lang, e.source, e.content])}\n`);
    }
  } finally {
    for (const s of streams) await closeStream(s);
  }
}

async function* partitionEntries(file: string): AsyncGenerator<Entry> {
  for await (const line of readLines(file)) {
    if (line === '') continue;
    const [id, lang, source, content] = JSON.parse(line) as [string, string, SampleSource, string];
    yield { id, lang, source, content };
  }
}

/** Diff of two manifests (export directories or manifest.jsonl files): `older` -> `newer`. */
export async function diffManifests(older: string, newer: string, options: { partitionBytes?: number; tmpDir?: string } = {}): Promise<ManifestDiff> {
  const a = manifestPath(older);
  const b = manifestPath(newer);
  const limit = options.partitionBytes ?? 64 * 2 ** 20;
  const size = (await fs.stat(a)).size + (await fs.stat(b)).size;
  const builder = new DiffBuilder();
  if (size <= limit) {
    await builder.compare(entries(a), entries(b));
    return builder.result();
  }
  const parts = Math.ceil(size / limit);
  const tmp = await fs.mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), `mella-diff-${randomBytes(3).toString('hex')}-`));
  try {
    await partition(a, tmp, 'old', parts);
    await partition(b, tmp, 'new', parts);
    for (let i = 0; i < parts; i++) await builder.compare(partitionEntries(path.join(tmp, `old-${i}.jsonl`)), partitionEntries(path.join(tmp, `new-${i}.jsonl`)));
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return builder.result();
}

/** Same as `diffManifests`, named for what callers usually hold: two export directories. */
export const diffExports = (olderDir: string, newerDir: string, options?: { partitionBytes?: number; tmpDir?: string }) => diffManifests(olderDir, newerDir, options);
