/**
 * bench:metrics: corpus BLEU (13a, exp smoothing) and corpus chrF (sacrebleu defaults) on N seeded random
 * multilingual sentence pairs, computed by our TypeScript implementation and by sacrebleu (from PyPI, in
 * the project's `.venv-metrics/`) in the same run, on the same pairs. Each side is timed in-process
 * (Python: around `corpus_score` only, after imports and JSON loading; TypeScript: around `corpusScore`,
 * after a warm-up round), best of R rounds, a fresh metric object every round (so sacrebleu's tokenizer
 * LRU cache never carries over a round). The scores must agree to 1e-9.
 * Last line: RESULT metrics ratio=<min over BLEU, chrF of (our pairs/s / sacrebleu's pairs/s)> goal=>=1.0
 *
 * Env: BENCH_PAIRS (default 10000), BENCH_ROUNDS (3), BENCH_SEED (8).
 */
import { performance } from 'node:perf_hooks';
import { Bleu, Chrf } from '../activities/evaluate/metrics';
import { randomCorpus, referencePython, runPythonBatch } from '../tests/support/python-reference';

const PAIRS = Number(process.env.BENCH_PAIRS ?? 10_000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const SEED = Number(process.env.BENCH_SEED ?? 8);

const log = (m: string) => console.log(m);

interface Side {
  bleu: number;
  chrf: number;
  bleuSeconds: number;
  chrfSeconds: number;
}

function ours(hyps: string[], refs: string[][]): Side {
  const timeBest = (f: () => number): [number, number] => {
    f(); // warm-up (JIT)
    let best = Infinity;
    let score = NaN;
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      score = f();
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return [score, best];
  };
  const [bleu, bleuSeconds] = timeBest(() => new Bleu().corpusScore(hyps, refs).score);
  const [chrf, chrfSeconds] = timeBest(() => new Chrf().corpusScore(hyps, refs).score);
  return { bleu, chrf, bleuSeconds, chrfSeconds };
}

const SACREBLEU = `
import json, sys, time, logging
logging.disable(logging.WARNING)
from sacrebleu.metrics import BLEU, CHRF
import sacrebleu
d = json.load(open(sys.argv[1], encoding='utf-8'))
hyps, refs, rounds = d['hyps'], d['refs'], d['rounds']
def best(make):
    t, score = float('inf'), None
    for _ in range(rounds):
        m = make()
        t0 = time.perf_counter(); score = m.corpus_score(hyps, refs).score; t = min(t, time.perf_counter() - t0)
    return score, t
bleu, bt = best(BLEU)
chrf, ct = best(CHRF)
print(json.dumps(dict(bleu=bleu, chrf=chrf, bleuSeconds=bt, chrfSeconds=ct, version=sacrebleu.__version__, python=sys.version.split()[0])))
`;

function main() {
  const corpus = randomCorpus(SEED, PAIRS);
  const hyps = corpus.hyps;
  const refs = [corpus.refs[0]!.map((r) => r ?? '')];
  const words = refs[0]!.reduce((a, r) => a + r.split(/\s+/).filter(Boolean).length, 0);
  log(`bench:metrics — ${PAIRS} multilingual sentence pairs (seed ${SEED}, ${words} reference words), best of ${ROUNDS} rounds`);

  const py = referencePython();
  if (!py.python) {
    log(`sacrebleu unavailable: ${py.reason}`);
    const o = ours(hyps, refs);
    log(`ours: BLEU ${o.bleu.toFixed(4)} in ${o.bleuSeconds.toFixed(3)} s, chrF ${o.chrf.toFixed(4)} in ${o.chrfSeconds.toFixed(3)} s`);
    log('RESULT metrics ratio=n/a goal=>=1.0');
    process.exitCode = 1;
    return;
  }
  const theirs = runPythonBatch<Side & { version: string; python: string }>(py.python, SACREBLEU, { hyps, refs, rounds: ROUNDS });
  const o = ours(hyps, refs);

  const row = (name: string, ourScore: number, ourS: number, theirScore: number, theirS: number) => {
    const ourRate = PAIRS / ourS;
    const theirRate = PAIRS / theirS;
    const same = Math.abs(ourScore - theirScore) <= 1e-9;
    log(
      `${name.padEnd(5)} ours ${ourScore.toFixed(6)} ${ourRate.toFixed(0).padStart(8)} pairs/s (${ourS.toFixed(3)} s) | ` +
        `sacrebleu ${theirScore.toFixed(6)} ${theirRate.toFixed(0).padStart(8)} pairs/s (${theirS.toFixed(3)} s) | ` +
        `ratio ${(ourRate / theirRate).toFixed(2)} | same score: ${same ? 'yes' : `NO (diff ${Math.abs(ourScore - theirScore)})`}`,
    );
    return { ratio: ourRate / theirRate, same };
  };
  log(`node ${process.versions.node}, ICU ${process.versions.icu}; sacrebleu ${theirs.version} on Python ${theirs.python}`);
  const b = row('BLEU', o.bleu, o.bleuSeconds, theirs.bleu, theirs.bleuSeconds);
  const c = row('chrF', o.chrf, o.chrfSeconds, theirs.chrf, theirs.chrfSeconds);
  const both = (PAIRS * 2) / (o.bleuSeconds + o.chrfSeconds) / ((PAIRS * 2) / (theirs.bleuSeconds + theirs.chrfSeconds));
  log(`both metrics together: ratio ${both.toFixed(2)}`);
  if (!b.same || !c.same) {
    log('scores differ from sacrebleu: the speed comparison is void');
    process.exitCode = 1;
  }
  log(`RESULT metrics ratio=${Math.min(b.ratio, c.ratio).toFixed(2)} goal=>=1.0`);
}

main();
