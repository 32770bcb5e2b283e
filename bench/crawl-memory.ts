/**
 * The memory sampler of bench/crawl-child.ts, on a worker thread: it reads /proc for the child's whole
 * process tree (Node and every Chromium process) every 200 ms. Reading `smaps_rollup` of Chromium's
 * processes costs tens of milliseconds of system time a sample; on the child's main thread that blocked
 * the event loop the measured crawler runs on (20% of it in a 200-page run of ours), so the sampler
 * perturbed what it measured. Here it costs CPU only.
 *
 * Messages in: { sample: true } samples now; { mark: pages } records a mark (RSS/PSS now, and peaks since the previous mark);
 * { stop: true } answers { peakRss, peakPss, marks } and ends the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { processTreeMemory } from '../activities/crawl/chromium-process';
import type { Mark } from './crawl';

const rootPid = (workerData as { pid: number }).pid;
let peakRss = 0;
let peakPss = 0;
let windowRss = 0;
let windowPss = 0;
const marks: Mark[] = [];

function sample() {
  const m = processTreeMemory(rootPid);
  peakRss = Math.max(peakRss, m.rssBytes);
  peakPss = Math.max(peakPss, m.pssBytes);
  windowRss = Math.max(windowRss, m.rssBytes);
  windowPss = Math.max(windowPss, m.pssBytes);
  return m;
}

const timer = setInterval(sample, 200);
sample();
parentPort!.on('message', (msg: { mark?: number; sample?: boolean; stop?: boolean }) => {
  if (msg.sample) sample();
  if (msg.mark !== undefined) {
    const m = sample();
    marks.push({ pages: msg.mark, rss: m.rssBytes, pss: m.pssBytes, peakRss: windowRss, peakPss: windowPss });
    windowRss = 0;
    windowPss = 0;
  }
  if (msg.stop) {
    clearInterval(timer);
    sample();
    parentPort!.postMessage({ peakRss, peakPss, marks });
    parentPort!.close();
  }
});
