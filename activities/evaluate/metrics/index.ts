/**
 * Evaluation metrics of the evaluate stage (issue 8): pure functions, no I/O.
 * See docs/metrics.md for definitions, tokenization per language, signatures and verification.
 */
export * from './text';
export * from './segment';
export * from './tokenize';
export * from './ngrams';
export * from './signature';
export * from './bleu';
export * from './bleu-coco';
export * from './chrf';
export * from './rouge';
export * from './meteor';
export * from './cider';
export * from './function-words';
export * from './keywords';
