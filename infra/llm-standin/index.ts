/** The LLM stand-in's public surface (docs/llm-standin.md). */
export { startLlmStandin, DEFAULT_MODELS, type LlmStandin, type LlmStandinOptions } from './server';
export {
  FAULT_HEADER,
  STANDIN_FINGERPRINT,
  STANDIN_HEADER,
  STANDIN_KIND_HEADER,
  STANDIN_MARKER,
  altTextLine,
  parseAltText,
  parseStandinMarker,
  parseTargetLanguage,
  pseudoMarker,
  targetLanguageLine,
  type AnswerKind,
} from './conventions';
export { FAULT_KINDS, parseFaultSpec, type FaultKind, type FaultPlan, type FaultRule } from './faults';
export { REFUSAL_TEXT } from './chat';
export { RENDERED_LANGUAGES } from './phrases';
export type { Outcome, RequestRecord, StandinStats } from './stats';
