// Activities of the mella-llm task queue (paid endpoint calls; concurrency = the endpoint's limits).
export { captionShard } from './caption/stage';
export { translateShard } from './translate/stage';
export { evaluatePredictShard } from './evaluate/predict';
export { fuseShard } from './fuse/stage';
export { similarityFilter } from './filter/stage/similarity';
