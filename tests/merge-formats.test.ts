/**
 * The merge stage's export, format by format: each file is checked against the format's documented
 * schema and loaded back (JSON.parse and Python's json for the sharegpt arrays, our tar reader, GNU tar
 * and Python's tarfile for the WebDataset shards, sha256sum for SHA256SUMS); the `<image>` check; the
 * split leak guard; atomic publishing; and byte-identical output for the same input.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExportExistsError, exportDataset, SplitLeakError, type ExportResult } from '../activities/merge/export';
import {
  checkImageTokens,
  datasetInfoSchema,
  ImageTokenError,
  LlamaFactoryWriter,
  llamaFactoryRecordSchema,
  validateSharegptFile,
} from '../activities/merge/llamafactory';
import { manifestLineSchema, readManifest, type ManifestLine } from '../activities/merge/manifest';
import { mixKeeps, planMix } from '../activities/merge/mix';
import type { Sample, SplitName } from '../activities/merge/sample';
import { findSplitLeaks, splitOf } from '../activities/merge/split';
import { makeSyntheticImages, syntheticSamples, type SyntheticImage } from '../activities/merge/synthetic';
import { readTar, TarWriter } from '../activities/merge/tar';
import { FileSink } from '../activities/merge/sink';
import { webdatasetJsonSchema } from '../activities/merge/webdataset';

const SPLIT_NAMES: SplitName[] = ['train', 'validation', 'test'];
let root: string;
let images: SyntheticImage[];
let samples: Sample[];
let result: ExportResult;
let dir: string;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const readJsonl = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);

/** Every file under dir (relative path -> sha256). */
function hashTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), sha256(fs.readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

/** Samples the export must refuse, one per reason. */
function badSamples(good: Sample): Sample[] {
  return [
    { ...good, id: 'know:th:bad-token', answer: 'ภาพ <image> ซ้อน' },
    { ...good, id: 'know:th:bad-missing', imagePath: path.join(root, 'nowhere.jpg'), imageSha256: 'f'.repeat(64), groupKey: 'f'.repeat(64) },
    { ...good, id: 'know:th:bad-hash', imageSha256: 'e'.repeat(64), groupKey: 'e'.repeat(64) },
    { ...good, id: 'know:th:bad-format', imageFormat: 'gif' },
    { ...good, id: 'know:th:bad-empty', answer: '   ' },
  ];
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-merge-formats-'));
  images = await makeSyntheticImages(path.join(root, 'blobs'), 24);
  const good = [...syntheticSamples(600, images, { langs: ['th', 'vi', 'ar', 'cs', 'sr-Latn'] })];
  samples = [...good.slice(0, 300), ...badSamples(good[0]!), ...good.slice(300)];
  dir = path.join(root, 'exports', 'v1');
  result = await exportDataset(samples, { dir, shardSize: 100, card: false });
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('export result', () => {
  it('counts what it wrote and records every refused sample with its reason', () => {
    expect(result.seen).toBe(605);
    expect(result.counts.total).toBe(600);
    expect(result.counts.bySplit.train + result.counts.bySplit.validation + result.counts.bySplit.test).toBe(600);
    expect(result.counts.bySplit.validation).toBeGreaterThan(0);
    expect(result.counts.bySplit.test).toBeGreaterThan(0);
    expect(result.rejected).toEqual({ reserved_token_in_text: 1, image_missing: 1, image_hash_mismatch: 1, unsupported_image_format: 1, empty_answer: 1 });
    const rejected = readJsonl(path.join(dir, 'rejected.jsonl')) as { id: string; reason: string }[];
    expect(rejected.map((r) => [r.id, r.reason])).toEqual([
      ['know:th:bad-token', 'reserved_token_in_text'],
      ['know:th:bad-missing', 'image_missing'],
      ['know:th:bad-hash', 'image_hash_mismatch'],
      ['know:th:bad-format', 'unsupported_image_format'],
      ['know:th:bad-empty', 'empty_answer'],
    ]);
    expect(result.images.count).toBe(new Set(samples.slice(0, 300).concat(samples.slice(305)).map((s) => s.imageSha256)).size);
    expect(result.images.linked + result.images.copied).toBe(result.images.count);
    // no image with the wrong bytes was left behind
    expect(fs.existsSync(path.join(dir, 'images', 'ee'))).toBe(false);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'export.json'), 'utf8')) as { counts: unknown; rejected: unknown };
    expect(summary.counts).toEqual(JSON.parse(JSON.stringify(result.counts)));
    expect(summary.rejected).toEqual(result.rejected);
  });

  it('lists every file in SHA256SUMS (sha256sum -c passes) and uses its hash as the content id', () => {
    const out = execFileSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    const listed = fs.readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(out.trim().split('\n').every((l) => l.endsWith(': OK'))).toBe(true);
    expect(listed.length).toBe(hashTree(dir).size - 1); // all but SHA256SUMS itself
    expect(result.contentId).toBe(sha256(fs.readFileSync(path.join(dir, 'SHA256SUMS'))));
    for (const f of result.files) expect(sha256(fs.readFileSync(path.join(dir, f.path))), f.path).toBe(f.sha256);
  });

  it('publishes atomically: no temporary directory is left beside the export', () => {
    expect(fs.readdirSync(path.dirname(dir))).toEqual(['v1']);
  });
});

describe('LLaMA-Factory (sharegpt)', () => {
  it('registers each non-empty split in dataset_info.json with the sharegpt columns and tags', () => {
    const info = datasetInfoSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'dataset_info.json'), 'utf8')));
    expect(Object.keys(info).sort()).toEqual(['mella_test', 'mella_train', 'mella_validation']);
    for (const [key, entry] of Object.entries(info)) {
      expect(entry.file_name).toBe(`llamafactory/${key}.json`);
      expect(entry).toMatchObject({ formatting: 'sharegpt', columns: { messages: 'messages', images: 'images' }, tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' } });
    }
  });

  it('writes JSON arrays that load back (Node and Python) with one <image> per image and images relative to dataset_dir', () => {
    for (const split of SPLIT_NAMES) {
      const file = path.join(dir, 'llamafactory', `mella_${split}.json`);
      const records = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown[];
      expect(records.length).toBe(result.counts.bySplit[split]);
      for (const raw of records) {
        const r = llamaFactoryRecordSchema.parse(raw);
        expect(checkImageTokens(r)).toBeUndefined();
        expect(r.messages[0]!.content.startsWith('<image>')).toBe(true);
        expect(r.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
        // LLaMA-Factory joins media_dir (default: dataset_dir, the export root) with the path
        expect(fs.existsSync(path.join(dir, r.images[0]!))).toBe(true);
      }
      const py = execFileSync('python3', ['-c', 'import json,sys; d=json.load(open(sys.argv[1], encoding="utf-8")); print(len(d), sum(m["content"].count("<image>") for r in d for m in r["messages"]), sum(len(r["images"]) for r in d))', file], { encoding: 'utf8' });
      const [n, tokens, imgs] = py.trim().split(' ').map(Number);
      expect(n).toBe(result.counts.bySplit[split]);
      expect(tokens).toBe(imgs);
    }
  });

  it('validates the written files as streams and reports a broken one', async () => {
    for (const split of SPLIT_NAMES) {
      const v = await validateSharegptFile(dir, `llamafactory/mella_${split}.json`, { layout: 'json-array', checkImages: true });
      expect(v.problems).toEqual([]);
      expect(v.records).toBe(result.counts.bySplit[split]);
    }
    const bad = path.join(root, 'bad');
    fs.mkdirSync(bad, { recursive: true });
    const img = `images/aa/${'a'.repeat(64)}.jpg`;
    fs.writeFileSync(
      path.join(bad, 'x.json'),
      [
        '[',
        `{"images":["${img}"],"messages":[{"content":"<image><image>two","role":"user"},{"content":"a","role":"assistant"}]},`,
        `{"images":["${img}"],"messages":[{"content":"no token","role":"user"},{"content":"a","role":"assistant"}]},`,
        `{"images":["${img}"],"messages":[{"content":"<image>q","role":"assistant"},{"content":"a","role":"user"}]}`,
        `{"images":["${img}"],"messages":[{"content":"<image>q","role":"user"},{"content":"a","role":"assistant"}]}`,
        ']',
      ].join('\n'),
    );
    const v = await validateSharegptFile(bad, 'x.json', { layout: 'json-array', checkImages: true });
    const byLine = v.problems.map((p) => `${p.line}: ${p.problem}`);
    expect(byLine).toContain('2: 2 <image> tokens for 1 images');
    expect(byLine).toContain('3: 0 <image> tokens for 1 images');
    expect(byLine).toContain('4: message 0 has role assistant, expected user');
    expect(byLine).toContain('5: missing comma between records');
    expect(byLine.filter((l) => l.includes('image not in the export')).length).toBe(4);
  });

  it('the <image> check rejects a bad sample: in the export (rejected.jsonl) and in the writer', async () => {
    expect(checkImageTokens({ messages: [{ role: 'user', content: '<image>a <image>' }, { role: 'assistant', content: 'b' }], images: ['x'] })).toBe('2 <image> tokens for 1 images');
    expect(checkImageTokens({ messages: [{ role: 'user', content: '<image>a' }, { role: 'assistant', content: 'b' }], images: ['x'] })).toBeUndefined();
    const all = fs.readFileSync(path.join(dir, 'llamafactory', 'mella_train.json'), 'utf8') + fs.readFileSync(path.join(dir, 'llamafactory', 'mella_test.json'), 'utf8');
    expect(all).not.toContain('ซ้อน');
    const w = new LlamaFactoryWriter(path.join(root, 'writer'), 'x');
    const s = { ...samples[0]!, answer: 'two <image> tokens' };
    await expect(w.write({ sample: s, split: 'train', index: 0, imageRel: `images/aa/${'a'.repeat(64)}.jpg`, imageFile: '/dev/null' })).rejects.toThrow(ImageTokenError);
    await w.abort();
  });
});

describe('ms-swift (jsonl)', () => {
  it('writes one messages/images record per line per split', async () => {
    for (const split of SPLIT_NAMES) {
      const lines = readJsonl(path.join(dir, 'ms-swift', `${split}.jsonl`));
      expect(lines.length).toBe(result.counts.bySplit[split]);
      for (const raw of lines) {
        const r = llamaFactoryRecordSchema.parse(raw);
        expect(checkImageTokens(r)).toBeUndefined();
        expect(fs.existsSync(path.join(dir, r.images[0]!))).toBe(true);
      }
      expect((await validateSharegptFile(dir, `ms-swift/${split}.jsonl`, { layout: 'jsonl' })).problems).toEqual([]);
    }
  });
});

describe('WebDataset (tar shards)', () => {
  it('writes shards of shardSize samples, image + json per key, keys in order, readable by our reader, GNU tar and Python', async () => {
    const shardsDir = path.join(dir, 'webdataset');
    const manifest: ManifestLine[] = [];
    for await (const l of readManifest(dir)) manifest.push(l);
    for (const split of SPLIT_NAMES) {
      const shards = fs.readdirSync(shardsDir).filter((f) => f.startsWith(`mella-${split}-`)).sort();
      expect(shards.length).toBe(Math.ceil(result.counts.bySplit[split] / 100));
      shards.forEach((f, i) => expect(f).toBe(`mella-${split}-${String(i).padStart(6, '0')}.tar`));
      const bySplit = manifest.filter((l) => l.split === split);
      let next = 0;
      for (const [si, shard] of shards.entries()) {
        const file = path.join(shardsDir, shard);
        expect(fs.statSync(file).size % 10240).toBe(0);
        const members = [];
        for await (const m of readTar(file)) members.push(m);
        expect(members.length % 2).toBe(0);
        const samplesInShard = members.length / 2;
        if (si < shards.length - 1) expect(samplesInShard).toBe(100);
        for (let i = 0; i < members.length; i += 2) {
          const img = members[i]!;
          const json = members[i + 1]!;
          const key = String(next).padStart(9, '0');
          expect(img.name).toMatch(new RegExp(`^${key}\\.(jpg|png|webp)$`));
          expect(json.name).toBe(`${key}.json`);
          expect([img.mtime, img.mode, json.mtime]).toEqual([0, 0o644, 0]);
          const meta = webdatasetJsonSchema.parse(JSON.parse(json.data.toString('utf8')));
          expect(sha256(img.data)).toBe(meta.imageSha256);
          expect(meta.id).toBe(bySplit[next]!.id);
          expect(meta.split).toBe(split);
          next++;
        }
        const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' }).trim().split('\n');
        expect(listing.length).toBe(members.length);
        expect(listing[0]).toMatch(/^-rw-r--r-- 0\/0 .* 1970-01-01 00:00 000000\d{3}\.(jpg|png|webp)$/);
      }
      expect(next).toBe(result.counts.bySplit[split]);
      const py = execFileSync('python3', ['-c', 'import tarfile,sys; print(sum(len(tarfile.open(f).getmembers()) for f in sys.argv[1:]))', ...shards.map((f) => path.join(shardsDir, f))], { encoding: 'utf8' });
      expect(Number(py.trim())).toBe(2 * result.counts.bySplit[split]);
    }
  });

  it('round-trips long and non-ASCII member names through pax headers', async () => {
    const long = `${'d'.repeat(60)}/${'long-name-'.repeat(12)}.json`;
    const names = [long, 'ภาพ-ไทย.json', 'short.txt'];
    const sink = await FileSink.open(root, 'pax.tar');
    const tar = new TarWriter(sink);
    for (const n of names) await tar.addFile(n, Buffer.from(`content of ${n}`));
    await tar.finish();
    await sink.close();
    const file = path.join(root, 'pax.tar');
    const back = [];
    for await (const m of readTar(file)) back.push([m.name, m.data.toString()]);
    expect(back).toEqual(names.map((n) => [n, `content of ${n}`]));
    expect(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n')).toEqual(names);
    const py = execFileSync('python3', ['-c', 'import tarfile,sys,json; print(json.dumps([m.name for m in tarfile.open(sys.argv[1])]))', file], { encoding: 'utf8' });
    expect(JSON.parse(py)).toEqual(names);
  });
});

describe('manifest', () => {
  it('has one schema-valid line per sample with its split and the same position as in the other formats', async () => {
    const lines: ManifestLine[] = [];
    for await (const l of readManifest(dir, { validate: true })) lines.push(manifestLineSchema.parse(l));
    expect(lines.length).toBe(600);
    expect(new Set(lines.map((l) => l.id)).size).toBe(600);
    const lf = Object.fromEntries(SPLIT_NAMES.map((s) => [s, JSON.parse(fs.readFileSync(path.join(dir, 'llamafactory', `mella_${s}.json`), 'utf8')) as { images: string[]; messages: { content: string }[] }[]]));
    for (const l of lines) {
      expect(l.split).toBe(splitOf(l.groupKey));
      const rec = lf[l.split]![l.index]!;
      expect(rec.images[0]).toBe(l.image);
      expect(rec.messages[1]!.content).toBe(l.answer);
      expect(rec.messages[0]!.content).toBe(`<image>${l.instruction}`);
      expect(l.lineage.pageUrl).toMatch(/^https:\/\//);
    }
    expect(await findSplitLeaks(lines)).toEqual([]);
  });
});

describe('determinism and publishing', () => {
  it('exports the same input twice to byte-identical files (hard links in one, copies in the other)', async () => {
    const a = await exportDataset(samples, { dir: path.join(root, 'det', 'a'), shardSize: 100, imageMode: 'link' });
    const b = await exportDataset(samples, { dir: path.join(root, 'det', 'b'), shardSize: 100, imageMode: 'copy' });
    const ta = hashTree(a.dir);
    const tb = hashTree(b.dir);
    expect(ta.size).toBeGreaterThan(30);
    expect([...ta.keys()]).toEqual([...tb.keys()]);
    for (const [file, hash] of ta) expect(tb.get(file), file).toBe(hash);
    expect(a.contentId).toBe(b.contentId);
    expect(b.images.copied).toBe(b.images.count);
    expect(ta.has('card.html') && ta.has('card.md')).toBe(true);
  });

  it('refuses to overwrite an export and leaves nothing behind when the input fails', async () => {
    await expect(exportDataset(samples.slice(0, 5), { dir, card: false })).rejects.toThrow(ExportExistsError);
    const failing = (async function* () {
      yield* samples.slice(0, 50);
      throw new Error('database connection lost');
    })();
    const target = path.join(root, 'fail', 'v1');
    await expect(exportDataset(failing, { dir: target, card: false })).rejects.toThrow('database connection lost');
    expect(fs.readdirSync(path.join(root, 'fail'))).toEqual([]);
  });

  it('fails the export when one image lands on two sides of the split through different group keys', async () => {
    // two group keys that split differently, carried by two samples of one image
    let other = 0;
    while (splitOf(`g-${other}`) === 'train') other++;
    const base = samples[0]!;
    const leaky = [...samples.slice(305, 400), { ...base, id: 'know:th:leak-a', groupKey: 'g-train-side-' + findTrainKey() }, { ...base, id: 'ling:th:leak-b', source: 'ling' as const, groupKey: `g-${other}` }];
    const target = path.join(root, 'leak', 'v1');
    const err = await exportDataset(leaky, { dir: target, card: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SplitLeakError);
    expect((err as SplitLeakError).leaks).toEqual([{ sha256: base.imageSha256, splits: expect.arrayContaining(['train']), sampleIds: expect.arrayContaining(['know:th:leak-a', 'ling:th:leak-b']) }]);
    expect(fs.readdirSync(path.join(root, 'leak'))).toEqual([]);
  });

  it('applies a mixing plan: exactly the planned samples per language and source', async () => {
    const good = samples.filter((s) => !s.id.includes(':bad-'));
    const plan = await planMix(() => good, { know: 1, ling: 0.5, fused: 0.25 });
    const r = await exportDataset(good, { dir: path.join(root, 'mix', 'v1'), mix: plan, card: false });
    let kept = 0;
    for (const [lang, quotas] of Object.entries(plan.quotas)) {
      for (const [source, q] of Object.entries(quotas)) {
        const n = ['train', 'validation', 'test'].reduce((a, sp) => a + (r.counts.byLang[lang]![sp as SplitName][source as 'know'] ?? 0), 0);
        expect(n, `${lang}/${source}`).toBe(q!.keep);
        kept += q!.keep;
      }
    }
    expect(r.counts.total).toBe(kept);
    expect(r.mixedOut).toBe(good.length - kept);
    expect(good.filter((s) => mixKeeps(plan, s)).length).toBe(kept);
  });
});

function findTrainKey(): number {
  let k = 0;
  while (splitOf(`g-train-side-${k}`) !== 'train') k++;
  return k;
}
