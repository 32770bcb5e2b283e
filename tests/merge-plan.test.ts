/**
 * The merge stage's planning pieces, no I/O: instruction templates (per language and source, chosen by
 * a hash of the sample id), the group split (stable, no group on two sides, fractions honoured, leaks
 * found) and the mixing ratios (exact quotas, deterministic hash-ordered selection in two passes).
 */
import { describe, expect, it } from 'vitest';
import { chooseInstruction, DEFAULT_INSTRUCTION_TEMPLATES, templatesFor } from '../activities/merge/instructions';
import { mixKeeps, mixQuotas, mixSelectionKey, planMix, type MixKey } from '../activities/merge/mix';
import { SAMPLE_SOURCES, type SampleSource } from '../activities/merge/sample';
import { DEFAULT_SPLIT_CONFIG, findSplitLeaks, hashUnit, splitConfigSchema, splitOf, type SplitEntry } from '../activities/merge/split';

const DEFAULT_LANGS = ['ar', 'cs', 'hu', 'ko', 'ru', 'sr', 'th', 'vi'];

/** Small deterministic PRNG (mulberry32) for the property tests. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('instruction templates', () => {
  it('has at least 4 distinct templates per source for each default language, in its own script', () => {
    const scripts: Record<string, RegExp> = {
      ar: /\p{Script=Arabic}/u,
      cs: /[áčďéěíňóřšťúůýž]/i,
      hu: /[áéíóöőúüű]/i,
      ko: /\p{Script=Hangul}/u,
      ru: /\p{Script=Cyrillic}/u,
      sr: /\p{Script=Cyrillic}/u,
      th: /\p{Script=Thai}/u,
      vi: /[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]/i,
    };
    for (const lang of DEFAULT_LANGS) {
      const set = DEFAULT_INSTRUCTION_TEMPLATES[lang]!;
      expect(set, lang).toBeDefined();
      for (const source of SAMPLE_SOURCES) {
        const list = set[source];
        expect(list.length, `${lang}/${source}`).toBeGreaterThanOrEqual(4);
        expect(new Set(list).size, `${lang}/${source} distinct`).toBe(list.length);
        expect(list.every((t) => t.trim() === t && t.length > 5 && !t.includes('<image>')), `${lang}/${source}`).toBe(true);
        // most templates carry the language's own letters (Czech and Hungarian share Latin with English)
        expect(list.filter((t) => scripts[lang]!.test(t)).length, `${lang}/${source} script`).toBeGreaterThanOrEqual(Math.min(3, list.length));
      }
    }
  });

  it('chooses deterministically by the sample id and uses every template over many ids', () => {
    const a = chooseInstruction('know:th:123', 'th', 'know');
    expect(chooseInstruction('know:th:123', 'th', 'know')).toEqual(a);
    expect(a.fallback).toBe(false);
    expect(DEFAULT_INSTRUCTION_TEMPLATES.th!.know).toContain(a.text);
    expect(a.templateId).toMatch(/^th\/know\/\d$/);
    const used = new Set<string>();
    for (let i = 0; i < 400; i++) used.add(chooseInstruction(`ling:vi:${i}`, 'vi', 'ling').text);
    expect(used.size).toBe(DEFAULT_INSTRUCTION_TEMPLATES.vi!.ling.length);
  });

  it('resolves region and script subtags, and falls back to English for other languages', () => {
    expect(templatesFor('vi-VN')?.key).toBe('vi');
    expect(templatesFor('sr-Latn-RS')?.key).toBe('sr-Latn');
    expect(templatesFor('sr-Cyrl')?.key).toBe('sr');
    expect(templatesFor('sw')).toBeUndefined();
    const sw = chooseInstruction('know:sw:1', 'sw', 'know');
    expect(sw.fallback).toBe(true);
    expect(sw.templateLang).toBe('en');
    expect(DEFAULT_INSTRUCTION_TEMPLATES.en!.know).toContain(sw.text);
    const custom = chooseInstruction('know:sw:1', 'sw', 'know', { ...DEFAULT_INSTRUCTION_TEMPLATES, sw: { know: ['Picha hii inaonyesha nini?'], ling: ['Eleza picha hii kwa undani.'], fused: ['Picha hii inaonyesha nini? Ieleze kwa undani.'] } });
    expect(custom).toMatchObject({ text: 'Picha hii inaonyesha nini?', fallback: false, templateLang: 'sw' });
  });
});

describe('split', () => {
  it('puts no group on two sides (property test over random groups and configs)', async () => {
    const rand = rng(42);
    for (let round = 0; round < 20; round++) {
      const train = 0.5 + rand() * 0.45;
      const validation = (1 - train) * rand();
      const config = splitConfigSchema.parse({ salt: `salt-${round}`, fractions: { train, validation, test: 1 - train - validation } });
      const entries: SplitEntry[] = [];
      const groups = 200 + Math.floor(rand() * 300);
      for (let g = 0; g < groups; g++) {
        const groupKey = `group-${round}-${Math.floor(rand() * 1e9)}`;
        const members = 1 + Math.floor(rand() * 5);
        for (let m = 0; m < members; m++) {
          // images of a group, each with samples from several sources
          const imageSha256 = `${groupKey}-img-${m}`;
          for (const source of SAMPLE_SOURCES) entries.push({ id: `${source}:${imageSha256}`, groupKey, imageSha256, split: splitOf(groupKey, config) });
        }
      }
      // shuffled: order must not matter
      for (let i = entries.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [entries[i], entries[j]] = [entries[j]!, entries[i]!];
      }
      expect(await findSplitLeaks(entries)).toEqual([]);
    }
  });

  it('is stable across runs and honours the fractions (default 0.9 / 0.05 / 0.05)', () => {
    expect(DEFAULT_SPLIT_CONFIG.fractions).toEqual({ train: 0.9, validation: 0.05, test: 0.05 });
    const counts = { train: 0, validation: 0, test: 0 };
    const n = 40_000;
    for (let i = 0; i < n; i++) counts[splitOf(`g${i}`)]++;
    expect(counts.train / n).toBeCloseTo(0.9, 2);
    expect(counts.validation / n).toBeGreaterThan(0.045);
    expect(counts.validation / n).toBeLessThan(0.055);
    expect(counts.test / n).toBeGreaterThan(0.045);
    expect(counts.test / n).toBeLessThan(0.055);
    // pinned: the assignment of existing groups must never change silently between versions of the code
    const held = Array.from({ length: 40 }, (_, i) => `g${i}`).filter((g) => splitOf(g) !== 'train');
    expect(held.map((g) => [g, splitOf(g)])).toEqual([['g12', 'validation'], ['g15', 'test'], ['g24', 'test'], ['g25', 'validation'], ['g35', 'validation']]);
    expect(hashUnit('mella-split-v1', 'g0')).toBe(0.5966011382963727);
  });

  it('moves only boundary groups when the fractions change, and everything with another salt', () => {
    const a = splitConfigSchema.parse({ fractions: { train: 0.9, validation: 0.05, test: 0.05 } });
    const b = splitConfigSchema.parse({ fractions: { train: 0.8, validation: 0.1, test: 0.1 } });
    let movedToTrain = 0;
    for (let i = 0; i < 5000; i++) if (splitOf(`g${i}`, a) !== 'train' && splitOf(`g${i}`, b) === 'train') movedToTrain++;
    expect(movedToTrain).toBe(0); // a shrinking train side only gives groups away
    const salted = splitConfigSchema.parse({ salt: 'other' });
    let differ = 0;
    for (let i = 0; i < 2000; i++) if (splitOf(`g${i}`) !== splitOf(`g${i}`, salted)) differ++;
    expect(differ).toBeGreaterThan(100);
  });

  it('rejects fractions that do not add up to 1', () => {
    expect(() => splitConfigSchema.parse({ fractions: { train: 0.9, validation: 0.1, test: 0.1 } })).toThrow(/add up to 1/);
  });

  it('finds an image on two sides, and a group on two sides', async () => {
    const leaks = await findSplitLeaks([
      { id: 'know:th:1', groupKey: 'g1', imageSha256: 'img-a', split: 'train' },
      { id: 'ling:th:1', groupKey: 'img-a', imageSha256: 'img-a', split: 'test' },
      { id: 'know:th:2', groupKey: 'g2', imageSha256: 'img-b', split: 'validation' },
      { id: 'know:th:3', groupKey: 'g2', imageSha256: 'img-c', split: 'train' },
      { id: 'know:th:4', groupKey: 'g3', imageSha256: 'img-d', split: 'train' },
    ]);
    expect(leaks).toEqual([
      { kind: 'group', key: 'g2', splits: ['train', 'validation'], sampleIds: ['know:th:3', 'know:th:2'] },
      { kind: 'image', key: 'img-a', splits: ['train', 'test'], sampleIds: ['know:th:1', 'ling:th:1'] },
    ]);
  });
});

describe('mix', () => {
  it('computes quotas: the scarcest source for its weight is kept whole', () => {
    expect(mixQuotas({ know: 1000, ling: 5000, fused: 300 }, { know: 1, ling: 1, fused: 0.5 })).toEqual({ know: 600, ling: 600, fused: 300 });
    expect(mixQuotas({ know: 100, ling: 5000 }, { know: 1, ling: 2 })).toEqual({ know: 100, ling: 200, fused: 0 });
    // a source with no samples does not hold the others at zero
    expect(mixQuotas({ know: 100, ling: 50, fused: 0 }, { know: 1, ling: 1, fused: 1 })).toEqual({ know: 50, ling: 50, fused: 0 });
    // weight 0 or absent: left out
    expect(mixQuotas({ know: 100, ling: 50, fused: 70 }, { know: 1, ling: 0 })).toEqual({ know: 100, ling: 0, fused: 0 });
    // 1/3 weights: floating point must not lose the limiting source's last sample
    expect(mixQuotas({ know: 3, ling: 3 }, { know: 1 / 3, ling: 1 / 3 })).toEqual({ know: 3, ling: 3, fused: 0 });
  });

  it('selects exactly the planned number per language and source, the smallest hashes, deterministically', async () => {
    const keys: MixKey[] = [];
    const sizes: Record<string, Record<SampleSource, number>> = { th: { know: 700, ling: 3000, fused: 0 }, vi: { know: 40_000, ling: 900, fused: 555 } };
    for (const [lang, by] of Object.entries(sizes)) for (const s of SAMPLE_SOURCES) for (let i = 0; i < by[s]; i++) keys.push({ id: `${s}:${lang}:${i}`, lang, source: s });
    const ratios = { know: 1, ling: 1, fused: 0.5 };
    const plan = await planMix(() => keys, ratios);
    expect(plan.quotas.th).toMatchObject({ know: { available: 700, keep: 700 }, ling: { available: 3000, keep: 700 } });
    expect(plan.quotas.vi).toMatchObject({ know: { available: 40_000, keep: 900 }, ling: { available: 900, keep: 900 }, fused: { available: 555, keep: 450 } });
    const kept = new Map<string, string[]>();
    for (const k of keys) {
      if (!mixKeeps(plan, k)) continue;
      const list = kept.get(`${k.lang}/${k.source}`) ?? [];
      list.push(k.id);
      kept.set(`${k.lang}/${k.source}`, list);
    }
    expect(kept.get('th/know')!.length).toBe(700);
    expect(kept.get('th/ling')!.length).toBe(700);
    expect(kept.get('vi/know')!.length).toBe(900);
    expect(kept.get('vi/fused')!.length).toBe(450);
    // exactly the ids with the smallest selection keys
    const expected = keys
      .filter((k) => k.lang === 'vi' && k.source === 'know')
      .map((k) => k.id)
      .sort((a, b) => (mixSelectionKey(plan.salt, a) < mixSelectionKey(plan.salt, b) ? -1 : 1))
      .slice(0, 900)
      .sort();
    expect([...kept.get('vi/know')!].sort()).toEqual(expected);
    // the same plan from the keys in another order, and JSON round trip (it crosses activity boundaries)
    const reversed = await planMix(async function* () {
      for (let i = keys.length - 1; i >= 0; i--) yield keys[i]!;
    }, ratios);
    expect(reversed).toEqual(plan);
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });

  it('rejects ratios without a positive weight', async () => {
    await expect(planMix(() => [], { know: 0 })).rejects.toThrow(/above 0/);
  });
});
