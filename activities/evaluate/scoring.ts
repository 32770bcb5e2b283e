/**
 * Which metrics score which source, with the per-language choices of docs/metrics.md (pure; the score
 * activity feeds it from PostgreSQL):
 *
 * - D_know (`know`): keyword accuracy (the mean over samples with keywords; `keyword_micro` beside it);
 * - D_ling (`ling`): corpus BLEU (sacrebleu's, tokenizer `13a`, plus ICU word segmentation for languages
 *   written without spaces, e.g. `th`: `defaultSegmentation(lang)`), chrF (sacrebleu's chrF2), ROUGE-L
 *   (rouge-score's, multilingual tokenizer with ICU segmentation), METEOR (exact module; the language's
 *   parameters and function words);
 * - `fused` answers hold both the native alt and a description: both sets.
 *
 * Scales as the library gives them: BLEU and chrF 0-100, the others 0-1. Every score keeps its signature.
 */
import {
  corpusBleu,
  corpusChrf,
  corpusMeteor,
  corpusRougeL,
  defaultSegmentation,
  keywordAccuracy,
} from './metrics/index';

export const METRICS = ['keyword_accuracy', 'keyword_micro', 'bleu', 'chrf', 'rouge_l', 'meteor'] as const;
export type MetricName = (typeof METRICS)[number];

/** Scale of each metric, for tables and charts. */
export const METRIC_SCALE: Readonly<Record<MetricName, number>> = { keyword_accuracy: 1, keyword_micro: 1, bleu: 100, chrf: 100, rouge_l: 1, meteor: 1 };
export const METRIC_LABEL: Readonly<Record<MetricName, string>> = {
  keyword_accuracy: 'keyword accuracy',
  keyword_micro: 'keyword accuracy (micro)',
  bleu: 'BLEU',
  chrf: 'chrF',
  rouge_l: 'ROUGE-L',
  meteor: 'METEOR',
};

export interface GroupScore {
  metric: MetricName;
  value: number;
  signature: string;
  /** Samples that count in the value (keyword accuracy: samples with at least one keyword). */
  n: number;
}

export function metricsFor(source: string): MetricName[] {
  if (source === 'know') return ['keyword_accuracy', 'keyword_micro'];
  if (source === 'ling') return ['bleu', 'chrf', 'rouge_l', 'meteor'];
  return ['keyword_accuracy', 'keyword_micro', 'bleu', 'chrf', 'rouge_l', 'meteor'];
}

/** The scores of one model's predictions of one language and source (`references[i]` answers `predictions[i]`). */
export function scoreGroup(lang: string, source: string, predictions: readonly string[], references: readonly string[]): GroupScore[] {
  if (predictions.length !== references.length) throw new Error(`${predictions.length} predictions for ${references.length} references`);
  const n = predictions.length;
  const wanted = new Set(metricsFor(source));
  const out: GroupScore[] = [];
  if (n === 0) return out;
  if (wanted.has('keyword_accuracy')) {
    const k = keywordAccuracy(predictions.map((prediction, i) => ({ prediction, reference: references[i]!, lang })));
    out.push({ metric: 'keyword_accuracy', value: k.accuracy, signature: k.signature.replace('<lang>', lang), n: k.evaluated });
    out.push({ metric: 'keyword_micro', value: k.micro, signature: k.signature.replace('<lang>', lang), n: k.evaluated });
  }
  if (wanted.has('bleu')) {
    const b = corpusBleu(predictions, [references], { tokenize: '13a', segment: defaultSegmentation(lang) });
    out.push({ metric: 'bleu', value: b.score, signature: b.signature, n });
    const c = corpusChrf(predictions, [references]);
    out.push({ metric: 'chrf', value: c.score, signature: c.signature, n });
    const refs = references.map((r) => [r]);
    const r = corpusRougeL(predictions, refs);
    out.push({ metric: 'rouge_l', value: r.fmeasure, signature: r.signature, n });
    const m = corpusMeteor(predictions, refs, { lang });
    out.push({ metric: 'meteor', value: m.score, signature: m.signature, n });
  }
  return out;
}
