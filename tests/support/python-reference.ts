/**
 * The Python reference implementations of the metrics (sacrebleu, rouge-score, pycocoevalcap), installed
 * from PyPI into a project-local venv `.venv-metrics/` on first use, and a way to run one batch script.
 *
 * `referencePython()` returns the venv's python, or `undefined` with a reason when Python, venv or pip is
 * not available (no network to PyPI, no python3): tests then skip with that message.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../infra/paths';

export const METRICS_VENV = path.join(PROJECT_ROOT, '.venv-metrics');
/** Pinned so that reference numbers do not move under the tests. */
export const REFERENCE_PACKAGES = ['sacrebleu==2.6.0', 'rouge-score==0.1.2', 'pycocoevalcap==1.2'];
const IMPORT_CHECK = 'import sacrebleu, rouge_score.rouge_scorer, pycocoevalcap.cider.cider_scorer';

export interface ReferencePython {
  python?: string;
  /** Why there is none. */
  reason?: string;
}

let cached: ReferencePython | undefined;

function venvPython(): string {
  return process.platform === 'win32' ? path.join(METRICS_VENV, 'Scripts', 'python.exe') : path.join(METRICS_VENV, 'bin', 'python');
}

function works(python: string): boolean {
  const r = spawnSync(python, ['-c', IMPORT_CHECK], { cwd: os.tmpdir(), encoding: 'utf8', timeout: 60_000 });
  return r.status === 0;
}

function tail(s: string | null | undefined): string {
  const lines = (s ?? '').split('\n').filter((l) => l.trim() && !l.includes('is ignored: it is neither a file nor a directory'));
  return lines.slice(-3).join(' / ');
}

/** The venv's python with the reference packages importable (creating/installing them if needed). */
export function referencePython(): ReferencePython {
  if (cached) return cached;
  cached = locate();
  return cached;
}

function locate(): ReferencePython {
  const py = venvPython();
  if (fs.existsSync(py) && works(py)) return { python: py };
  if (!fs.existsSync(py)) {
    const base = ['python3', 'python'].find((p) => spawnSync(p, ['--version'], { encoding: 'utf8' }).status === 0);
    if (!base) return { reason: 'no python3 on PATH' };
    const mk = spawnSync(base, ['-m', 'venv', METRICS_VENV], { encoding: 'utf8', timeout: 120_000 });
    if (mk.status !== 0) return { reason: `python3 -m venv failed: ${tail(mk.stderr)}` };
  }
  const pip = spawnSync(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...REFERENCE_PACKAGES], {
    cwd: os.tmpdir(),
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (pip.status !== 0) return { reason: `pip install ${REFERENCE_PACKAGES.join(' ')} failed: ${tail(pip.stderr) || `exit ${pip.status}`}` };
  if (!works(py)) return { reason: 'the reference packages were installed but do not import' };
  return { python: py };
}

/**
 * Runs `script` with the input as JSON in a temp file (path in `sys.argv[1]`); the script prints one JSON
 * document on stdout, which is returned. One process per batch, never one per sentence.
 */
export function runPythonBatch<T>(python: string, script: string, input: unknown): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-metrics-ref-'));
  try {
    const file = path.join(dir, 'input.json');
    fs.writeFileSync(file, JSON.stringify(input));
    const r = spawnSync(python, ['-c', script, file], {
      cwd: dir,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      timeout: 300_000,
      env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONHASHSEED: '0' },
    });
    if (r.status !== 0) throw new Error(`reference python failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout) as T;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** True when a `java` runs (Meteor 1.5, inside pycocoevalcap, is a jar). */
export function haveJava(): boolean {
  return spawnSync('java', ['-version'], { encoding: 'utf8', timeout: 30_000 }).status === 0;
}

// ---------------------------------------------------------------------------------------------------
// Random multilingual corpora (seeded), shared by the reference tests and bench/metrics.ts

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Word pools per script; Thai/CJK words are glued without spaces when a sentence is built. */
const POOLS: Record<string, string[]> = {
  en: 'the a of in on with and dog cat man woman street market red blue festival temple food river boat children old new city small people near at its'.split(' '),
  cs: 'příliš žluťoučký kůň úpěl ďábelské ódy Praha most řeka lidé ulice trh starý nový a v na se'.split(' '),
  hu: 'árvíztűrő tükörfúrógép Budapest ősz gyümölcs tűz híd folyó emberek piac régi új a az és egy'.split(' '),
  vi: 'Phở bò Hà Nội người thành phố chợ nổi Cần Thơ những chiếc thuyền và của là trên một'.split(' '),
  ru: 'Москва храм площадь люди улица праздник старый новый река мост и в на с Красной'.split(' '),
  sr: 'Београд ђак љубав њива џеп ћевапи Дунав мост људи улица и у на са Beograd ćevapi đak'.split(' '),
  ar: 'مسجد الشيخ زايد سوق المدينة القديمة ناس طعام نهر جسر في من على و'.split(' '),
  ko: '서울 한복 축제 사람들 시장 음식 전통 궁궐 서울에서 한국의 강 다리 그리고 이'.split(' '),
  th: 'ต้มยำกุ้ง ตลาดน้ำ วัดพระแก้ว กรุงเทพ อาหารไทย คน เรือ แม่น้ำ สะพาน และ ที่ ใน ของ'.split(' '),
  cjk: '北京 天安门 东京 寿司 桜 祭り 人们 市场 河 桥 的 和 カメラ ラーメン'.split(' '),
};
/** Tokens that exercise the tokenizers: punctuation, digits with separators, symbols, entities, astral code points. */
const EXTRAS = [
  '.', ',', '!', '?', ';', ':', '(', ')', '"', "'", '-', '—', '«', '»', '“', '”', '…', '/', '&amp;', '&quot;', '&lt;b&gt;', '<skipped>',
  '3.5', '1,000', '2019-2020', '12-', 'e-mail', "don't", 'x=y', '$5', '€', '%', '+', '#1', '😀', '👍🏽', '𝒜𝒷', '𠀋', 'cafe\u0301', '١٢٣', 'Ⅻ',
];
/** Separators: mostly a space, sometimes other characters Python's str.split() treats as whitespace. */
const SEPARATORS = [' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', '  ', '\u00a0', '\u3000', '\t', '\u2009', '\u0085', '\u001f', '\n'];
const GLUED = new Set(['th', 'cjk']);

export interface RandomCorpus {
  hyps: string[];
  /** Reference streams (sacrebleu layout): `refs[k][i]`, `null` where segment i has fewer references. */
  refs: (string | null)[][];
}

/**
 * `n` segments: each picks a language (sometimes mixing in another), builds a reference, a second
 * reference (missing for ~10% of segments) and a hypothesis by random edits of the first; some
 * hypotheses are empty, identical, or differ only in case or trailing whitespace.
 */
export function randomCorpus(seed: number, n: number, languages: readonly string[] = Object.keys(POOLS)): RandomCorpus {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const word = (lang: string) => (rnd() < 0.12 ? pick(EXTRAS) : pick(POOLS[lang]!));
  const join = (lang: string, words: string[]) => {
    let s = '';
    for (const [i, w] of words.entries()) s += i === 0 ? w : (GLUED.has(lang) && rnd() < 0.8 ? '' : pick(SEPARATORS)) + w;
    return s;
  };
  const edit = (lang: string, words: string[], rate: number) => {
    const out: string[] = [];
    for (const w of words) {
      const r = rnd();
      if (r < rate / 2) continue; // drop
      if (r < rate) out.push(word(lang)); // substitute
      else out.push(rnd() < 0.05 ? w.toUpperCase() : w);
      if (rnd() < rate / 3) out.push(word(lang)); // insert
    }
    if (out.length > 2 && rnd() < 0.2) {
      const i = Math.floor(rnd() * (out.length - 1));
      [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
    }
    return out;
  };
  const hyps: string[] = [];
  const r1: (string | null)[] = [];
  const r2: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const lang = pick(languages);
    const other = rnd() < 0.1 ? pick(languages) : lang;
    const len = 1 + Math.floor(rnd() * 22);
    const ref = Array.from({ length: len }, () => word(rnd() < 0.85 ? lang : other));
    const kind = rnd();
    let hyp: string;
    if (kind < 0.03) hyp = '';
    else if (kind < 0.07) hyp = join(lang, ref);
    else if (kind < 0.1) hyp = join(lang, ref).toLowerCase() + ' ';
    else hyp = join(lang, edit(lang, ref, 0.2 + rnd() * 0.5));
    hyps.push(hyp);
    r1.push(join(lang, ref));
    r2.push(rnd() < 0.1 ? null : join(lang, edit(lang, ref, 0.3)));
  }
  return { hyps, refs: [r1, r2] };
}
