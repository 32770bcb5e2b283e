// Activities of the mella-browser task queue (Chromium pages): the crawl stage's batches.
export { crawlBatch } from './crawl/batch';
