/**
 * Our metrics against the reference Python implementations from PyPI (sacrebleu, rouge-score,
 * pycocoevalcap; Meteor 1.5's jar inside pycocoevalcap when Java is present) on seeded random
 * multilingual corpora (Latin with diacritics, Cyrillic, Arabic, Hangul, Thai, Vietnamese, CJK, emoji,
 * odd whitespace, punctuation, HTML entities). The references run in one Python process per metric.
 * Skipped, with the reason, when the venv `.venv-metrics/` cannot be set up (no python3, no PyPI).
 */
import { describe, expect, it } from 'vitest';
import {
  Bleu,
  Chrf,
  Meteor,
  ciderD,
  addMeteorStats,
  emptyMeteorStats,
  meteorFromStats,
  meteorStats,
  cocoBleu,
  cocoRougeL,
  rougeLMulti,
  rougeLTokens,
  rougeLsum,
  rougeN,
  rougeL,
  wordTokens,
  type BleuOptions,
  type ChrfOptions,
  type MeteorStats,
  type RougeScore,
} from '../activities/evaluate/metrics';
import { haveJava, randomCorpus, referencePython, runPythonBatch } from './support/python-reference';

const ref = referencePython();
if (!ref.python) console.warn(`metrics reference comparison skipped: ${ref.reason}`);
const python = ref.python ?? '';
const JAVA = ref.python ? haveJava() : false;
if (ref.python && !JAVA) console.warn('METEOR reference comparison skipped: no java on PATH (Meteor 1.5 is a jar)');

const N = 300;
const corpus = randomCorpus(20250805, N);
const refsOf = (i: number) => corpus.refs.map((s) => s[i]).filter((r): r is string => r != null);

/** Largest |a − b| over pairs, with the index where it occurs. */
function maxDiff(a: readonly number[], b: readonly number[]): { diff: number; at: number } {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let at = -1;
  a.forEach((x, i) => {
    const d = Math.abs(x - b[i]!);
    if (!(d <= diff)) [diff, at] = [d, i];
  });
  return { diff, at };
}
function expectClose(ours: readonly number[], theirs: readonly number[], tol: number, what: string) {
  const { diff, at } = maxDiff(ours, theirs);
  expect(diff, `${what}: max diff ${diff} at ${at} (ours ${ours[at]}, reference ${theirs[at]}; hyp ${JSON.stringify(corpus.hyps[at])})`).toBeLessThanOrEqual(tol);
}
/** Our signature without `seg:` and `version:` equals sacrebleu's without `version:`. */
const sigCore = (s: string) => s.split('|').filter((p) => !p.startsWith('seg:') && !p.startsWith('version:')).join('|');

describe.skipIf(!ref.python)(`metrics vs the Python references (${ref.reason ?? 'sacrebleu, rouge-score, pycocoevalcap'})`, () => {
  it('BLEU = sacrebleu (corpus and sentence; 13a, intl, char, none; all smoothings; lowercase)', () => {
    const corpusConfigs: BleuOptions[] = [
      { tokenize: '13a' },
      { tokenize: 'intl' },
      { tokenize: 'char' },
      { tokenize: 'none' },
      { tokenize: '13a', lowercase: true },
      { tokenize: 'intl', lowercase: true },
      { tokenize: '13a', smoothMethod: 'none' },
      { tokenize: '13a', smoothMethod: 'floor', smoothValue: 0.1 },
      { tokenize: '13a', smoothMethod: 'add-k', smoothValue: 1 },
      { tokenize: 'intl', maxNgramOrder: 6, effectiveOrder: true },
    ];
    const sentenceConfigs: BleuOptions[] = [
      { tokenize: '13a', effectiveOrder: true },
      { tokenize: 'intl', effectiveOrder: true, lowercase: true },
      { tokenize: 'char', effectiveOrder: true },
      { tokenize: '13a', smoothMethod: 'floor', smoothValue: 0.5, effectiveOrder: true },
      { tokenize: '13a', smoothMethod: 'add-k', smoothValue: 2, effectiveOrder: true },
      { tokenize: '13a', smoothMethod: 'none', effectiveOrder: false },
    ];
    type CorpusOut = { score: number; counts: number[]; totals: number[]; sys_len: number; ref_len: number; sig: string };
    const theirs = runPythonBatch<{ corpus: CorpusOut[]; sentence: number[][] }>(
      python,
      `
import json, sys, logging
logging.disable(logging.WARNING)
from sacrebleu.metrics import BLEU
d = json.load(open(sys.argv[1], encoding='utf-8'))
hyps, refs = d['hyps'], d['refs']
def make(c):
    return BLEU(tokenize=c.get('tokenize', '13a'), lowercase=c.get('lowercase', False), smooth_method=c.get('smoothMethod', 'exp'),
                smooth_value=c.get('smoothValue'), max_ngram_order=c.get('maxNgramOrder', 4), effective_order=c.get('effectiveOrder', False))
corpus = []
for c in d['corpus']:
    m = make(c); s = m.corpus_score(hyps, refs)
    corpus.append(dict(score=s.score, counts=list(s.counts), totals=list(s.totals), sys_len=s.sys_len, ref_len=s.ref_len, sig=str(m.get_signature())))
sentence = []
for c in d['sentence']:
    m = make(c)
    sentence.append([m.sentence_score(h, [r[i] for r in refs if r[i] is not None]).score for i, h in enumerate(hyps)])
print(json.dumps(dict(corpus=corpus, sentence=sentence)))
`,
      { hyps: corpus.hyps, refs: corpus.refs, corpus: corpusConfigs, sentence: sentenceConfigs },
    );
    corpusConfigs.forEach((c, k) => {
      const ours = new Bleu(c).corpusScore(corpus.hyps, corpus.refs);
      const t = theirs.corpus[k]!;
      const what = `corpus ${JSON.stringify(c)}`;
      expect(Math.abs(ours.score - t.score), `${what}: ${ours.score} vs ${t.score}`).toBeLessThanOrEqual(1e-9);
      expect([ours.sysLen, ours.refLen, ...ours.counts, ...ours.totals], what).toEqual([t.sys_len, t.ref_len, ...t.counts, ...t.totals]);
      expect(sigCore(ours.signature), what).toBe(sigCore(t.sig));
    });
    sentenceConfigs.forEach((c, k) => {
      const bleu = new Bleu(c);
      const ours = corpus.hyps.map((h, i) => bleu.sentenceScore(h, refsOf(i)).score);
      expectClose(ours, theirs.sentence[k]!, 1e-9, `sentence ${JSON.stringify(c)}`);
    });
  });

  it('chrF and chrF++ = sacrebleu (corpus and sentence; ε-smoothing, lowercase, whitespace, β)', () => {
    const configs: ChrfOptions[] = [
      {},
      { wordOrder: 2 },
      { epsSmoothing: true },
      { wordOrder: 2, epsSmoothing: true },
      { lowercase: true, wordOrder: 1 },
      { whitespace: true },
      { beta: 3, charOrder: 4, wordOrder: 2 },
    ];
    const theirs = runPythonBatch<{ corpus: number[]; sig: string[]; sentence: number[][] }>(
      python,
      `
import json, sys
from sacrebleu.metrics import CHRF
d = json.load(open(sys.argv[1], encoding='utf-8'))
hyps, refs = d['hyps'], d['refs']
out = dict(corpus=[], sig=[], sentence=[])
for c in d['configs']:
    m = CHRF(char_order=c.get('charOrder', 6), word_order=c.get('wordOrder', 0), beta=c.get('beta', 2), lowercase=c.get('lowercase', False),
             whitespace=c.get('whitespace', False), eps_smoothing=c.get('epsSmoothing', False))
    out['corpus'].append(m.corpus_score(hyps, refs).score)
    out['sig'].append(str(m.get_signature()))
    out['sentence'].append([m.sentence_score(h, [r[i] for r in refs if r[i] is not None]).score for i, h in enumerate(hyps)])
print(json.dumps(out))
`,
      { hyps: corpus.hyps, refs: corpus.refs, configs },
    );
    configs.forEach((c, k) => {
      const chrf = new Chrf(c);
      const ours = chrf.corpusScore(corpus.hyps, corpus.refs);
      expect(Math.abs(ours.score - theirs.corpus[k]!), `corpus ${JSON.stringify(c)}: ${ours.score} vs ${theirs.corpus[k]}`).toBeLessThanOrEqual(1e-9);
      expect(sigCore(ours.signature)).toBe(sigCore(theirs.sig[k]!));
      const sent = corpus.hyps.map((h, i) => chrf.sentenceScore(h, refsOf(i)).score);
      expectClose(sent, theirs.sentence[k]!, 1e-9, `sentence ${JSON.stringify(c)}`);
    });
  });

  it('ROUGE = rouge-score: its default tokenizer (1, 2, L, Lsum, multi-target) and our multilingual tokens (L, Lsum)', () => {
    const targets = corpus.refs[0]!.map((r) => r ?? '');
    // Multilingual: our tokens, handed to rouge-score through a whitespace tokenizer, so that the scoring is compared.
    const tok = (s: string) => wordTokens(s).join(' ');
    const tokLines = (s: string) => s.split('\n').map(tok).join('\n');
    type S = [number, number, number];
    const theirs = runPythonBatch<{ def: Record<string, S>[]; multi: S[]; ml: S[]; mlsum: S[]; mlmulti: S[] }>(
      python,
      `
import json, sys
from rouge_score import rouge_scorer
d = json.load(open(sys.argv[1], encoding='utf-8'))
t3 = lambda s: [s.precision, s.recall, s.fmeasure]
types = ['rouge1', 'rouge2', 'rougeL', 'rougeLsum']
default = rouge_scorer.RougeScorer(types)
class WS:
    def tokenize(self, text): return text.split()
ml = rouge_scorer.RougeScorer(['rougeL', 'rougeLsum'], tokenizer=WS())
out = dict(def_=[], multi=[], ml=[], mlsum=[], mlmulti=[])
for h, t, t2 in zip(d['hyps'], d['targets'], d['targets2']):
    s = default.score(t, h); out['def_'].append({k: t3(s[k]) for k in types})
    out['multi'].append(t3(default.score_multi([t, t2], h)['rougeL']))
for h, t, t2, hl, tl in zip(d['mlHyps'], d['mlTargets'], d['mlTargets2'], d['mlHypLines'], d['mlTargetLines']):
    out['ml'].append(t3(ml.score(t, h)['rougeL']))
    out['mlsum'].append(t3(ml.score(tl, hl)['rougeLsum']))
    out['mlmulti'].append(t3(ml.score_multi([t, t2], h)['rougeL']))
out['def'] = out.pop('def_')
print(json.dumps(out))
`,
      {
        hyps: corpus.hyps,
        targets,
        targets2: corpus.refs[1]!.map((r, i) => r ?? targets[i]!),
        mlHyps: corpus.hyps.map(tok),
        mlTargets: targets.map(tok),
        mlTargets2: corpus.refs[1]!.map((r, i) => tok(r ?? targets[i]!)),
        mlHypLines: corpus.hyps.map(tokLines),
        mlTargetLines: targets.map(tokLines),
      },
    );
    const flat = (xs: RougeScore[]) => xs.flatMap((s) => [s.precision, s.recall, s.fmeasure]);
    const opts = { tokenizer: 'rouge-score' as const };
    const def = theirs.def;
    expectClose(flat(corpus.hyps.map((h, i) => rougeN(h, targets[i]!, 1, opts))), def.flatMap((d) => d.rouge1!), 1e-12, 'rouge1');
    expectClose(flat(corpus.hyps.map((h, i) => rougeN(h, targets[i]!, 2, opts))), def.flatMap((d) => d.rouge2!), 1e-12, 'rouge2');
    expectClose(flat(corpus.hyps.map((h, i) => rougeL(h, targets[i]!, opts))), def.flatMap((d) => d.rougeL!), 1e-12, 'rougeL');
    expectClose(flat(corpus.hyps.map((h, i) => rougeLsum(h, targets[i]!, opts))), def.flatMap((d) => d.rougeLsum!), 1e-12, 'rougeLsum');
    const t2 = corpus.refs[1]!.map((r, i) => r ?? targets[i]!);
    expectClose(flat(corpus.hyps.map((h, i) => rougeLMulti(h, [targets[i]!, t2[i]!], opts))), theirs.multi.flat(), 1e-12, 'rougeL multi');
    // Our multilingual tokenizer end to end vs rouge-score scoring our tokens.
    expectClose(flat(corpus.hyps.map((h, i) => rougeL(h, targets[i]!))), theirs.ml.flat(), 1e-12, 'multilingual rougeL');
    expectClose(flat(corpus.hyps.map((h, i) => rougeLsum(h, targets[i]!))), theirs.mlsum.flat(), 1e-12, 'multilingual rougeLsum');
    expectClose(flat(corpus.hyps.map((h, i) => rougeLMulti(h, [targets[i]!, t2[i]!]))), theirs.mlmulti.flat(), 1e-12, 'multilingual rougeL multi');
    // The tokenizer keeps every script: a Thai/Hangul/Arabic/Cyrillic hypothesis is never empty.
    for (const s of ['ต้มยำกุ้ง', '서울 한복', 'مسجد', 'Москва']) expect(rougeLTokens(wordTokens(s), wordTokens(s)).fmeasure).toBe(1);
  });

  it('CIDEr-D, coco BLEU and coco ROUGE-L = pycocoevalcap scorers on our multilingual tokens', () => {
    const tok = (s: string) => wordTokens(s).join(' ');
    const hyps = corpus.hyps.map(tok);
    const refs = corpus.hyps.map((_, i) => refsOf(i).map(tok));
    const theirs = runPythonBatch<{ cider: number; ciders: number[]; bleu: number[]; bleus: number[][]; rouge: number[] }>(
      python,
      `
import json, sys
from pycocoevalcap.cider.cider_scorer import CiderScorer
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.rouge.rouge import Rouge
d = json.load(open(sys.argv[1], encoding='utf-8'))
cs = CiderScorer(n=4, sigma=6.0); bs = BleuScorer(n=4)
for h, rs in zip(d['hyps'], d['refs']):
    cs += (h, rs); bs += (h, rs)
cider, ciders = cs.compute_score()
bleu, bleus = bs.compute_score(option='closest', verbose=0)
r = Rouge()
rouge = [r.calc_score([h], rs) for h, rs in zip(d['hyps'], d['refs'])]
print(json.dumps(dict(cider=float(cider), ciders=[float(x) for x in ciders], bleu=bleu, bleus=bleus, rouge=rouge)))
`,
      { hyps, refs },
    );
    const ours = ciderD(hyps, refs);
    expect(Math.abs(ours.score - theirs.cider), `CIDEr-D ${ours.score} vs ${theirs.cider}`).toBeLessThanOrEqual(1e-9);
    expectClose(ours.scores, theirs.ciders, 1e-9, 'CIDEr-D per segment');
    const b = cocoBleu(hyps, refs);
    expectClose(b.score, theirs.bleu, 1e-12, 'coco BLEU corpus');
    for (let k = 0; k < 4; k++) expectClose(b.scores[k]!, theirs.bleus[k]!, 1e-12, `coco BLEU-${k + 1} per segment`);
    expectClose(hyps.map((h, i) => cocoRougeL(h, refs[i]!)), theirs.rouge, 1e-12, 'coco ROUGE-L');
  });

  it.skipIf(!JAVA)('METEOR (exact module) vs the Meteor 1.5 jar with -m exact: scoring, best reference, corpus EVAL, alignment', () => {
    const meteorTok = new Meteor();
    const hyps = corpus.hyps.map((h) => meteorTok.tokens(h).join(' '));
    const refs = corpus.hyps.map((_, i) => refsOf(i).map((r) => meteorTok.tokens(r).join(' ')));
    const theirs = runPythonBatch<{ functionWords: string[]; perRef: string[][]; multi: string[]; segments: number[]; total: number }>(
      python,
      `
import json, os, subprocess, sys, zipfile
import pycocoevalcap.meteor.meteor as M
d = json.load(open(sys.argv[1], encoding='utf-8'))
jar = os.path.join(os.path.dirname(M.__file__), 'meteor-1.5.jar')
fw = zipfile.ZipFile(jar).read('function/english.words').decode('utf-8').split()
p = subprocess.Popen(['java', '-Xmx1G', '-jar', jar, '-', '-', '-stdio', '-l', 'en', '-m', 'exact', '-lower'],
                     cwd=os.path.dirname(jar), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
def ask(line):
    p.stdin.write((line + '\\n').encode('utf-8')); p.stdin.flush()
    return p.stdout.readline().decode('utf-8').strip()
per_ref = [[ask('SCORE ||| ' + r + ' ||| ' + h) for r in rs] for h, rs in zip(d['hyps'], d['refs'])]
multi = [ask('SCORE ||| ' + ' ||| '.join(rs) + ' ||| ' + h) for h, rs in zip(d['hyps'], d['refs'])]
p.stdin.write(('EVAL ||| ' + ' ||| '.join(multi) + '\\n').encode('utf-8')); p.stdin.flush()
segments = [float(p.stdout.readline()) for _ in multi]
total = float(p.stdout.readline())
p.stdin.close(); p.wait()
print(json.dumps(dict(functionWords=fw, perRef=per_ref, multi=multi, segments=segments, total=total)))
`,
      { hyps, refs },
    );
    /** Meteor's stats line (exact module's four numbers at 4..7; chunks and word matches last). */
    const parse = (line: string): MeteorStats => {
      const v = line.split(/\s+/).map(Number);
      return {
        testLength: v[0]!, refLength: v[1]!, testFunctionWords: v[2]!, refFunctionWords: v[3]!,
        testContentMatches: v[4]!, refContentMatches: v[5]!, testFunctionMatches: v[6]!, refFunctionMatches: v[7]!,
        chunks: v[v.length - 3]!, testWordMatches: v[v.length - 2]!, refWordMatches: v[v.length - 1]!,
      };
    };
    const meteor = new Meteor({ lang: 'en', functionWords: new Set(theirs.functionWords), tokenize: 'whitespace' });
    const P = meteor.params;

    // 1. Scoring: our formula on Meteor's statistics gives Meteor's segment scores and its corpus EVAL score.
    const multi = theirs.multi.map(parse);
    expectClose(multi.map((s) => meteorFromStats(s, P).score), theirs.segments, 1e-12, 'METEOR scoring of the jar statistics');
    const sum = multi.reduce((a, s) => addMeteorStats(a, s), emptyMeteorStats());
    expect(Math.abs(meteorFromStats(sum, P).score - theirs.total)).toBeLessThanOrEqual(1e-12);

    // 2. Several references: Meteor keeps the statistics of the best-scoring reference, as we do.
    theirs.perRef.forEach((lines, i) => {
      const scores = lines.map((l) => meteorFromStats(parse(l), P).score);
      const best = scores.indexOf(Math.max(...scores));
      expect(multi[i], `segment ${i}`).toEqual(parse(lines[best]!));
    });

    // 3. Alignment: the same lengths, function words and matches; our exhaustive search never has more
    //    chunks than Meteor's beam search, and where the chunk counts agree the scores are equal.
    let equal = 0;
    let pairs = 0;
    let maxGap = 0;
    theirs.perRef.forEach((lines, i) => {
      lines.forEach((line, k) => {
        const t = parse(line);
        const o = meteorStats(hyps[i]!.split(' ').filter(Boolean), refs[i]![k]!.split(' ').filter(Boolean), meteor.isFunction);
        expect({ ...o, chunks: 0 }, `segment ${i} ref ${k}`).toEqual({ ...t, chunks: 0 });
        expect(o.chunks, `segment ${i} ref ${k}: chunks`).toBeLessThanOrEqual(t.chunks);
        pairs++;
        if (o.chunks === t.chunks) equal++;
        maxGap = Math.max(maxGap, meteorFromStats(o, P).score - meteorFromStats(t, P).score);
      });
    });
    console.log(`METEOR vs Meteor 1.5 (-m exact): ${equal}/${pairs} pairs with the same alignment chunks (identical scores); elsewhere ours is higher by at most ${maxGap.toFixed(4)}`);
    expect(equal / pairs).toBeGreaterThan(0.9);
  });
});
