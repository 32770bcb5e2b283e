/**
 * The benchmark's baseline: the ingest stage's own download-validate-store code (ingestOne) in a plain
 * in-process loop with a fixed concurrency, no Temporal, no PostgreSQL. Prints one JSON line.
 * argv: <list.jsonl> <concurrency> <fetch policy JSON>
 */
import fs from 'node:fs';
import readline from 'node:readline';
import pLimit from 'p-limit';
import { ImageFetcher, DEFAULT_FETCH_POLICY } from '../activities/ingest/fetch-image';
import { ingestOne } from '../activities/ingest/shard';

const [list, concurrency, policy] = process.argv.slice(2);
const urls: string[] = [];
for await (const line of readline.createInterface({ input: fs.createReadStream(list!) })) if (line.trim()) urls.push(JSON.parse(line).url);
const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_POLICY, ...JSON.parse(policy!) });
const limit = pLimit(Number(concurrency));
const started = performance.now();
let stored = 0;
await Promise.all(
  urls.map((url, i) =>
    limit(async () => {
      const o = await ingestOne(i, url, fetcher, 100_000_000);
      if (o.status === 'stored') stored++;
    }),
  ),
);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage();
console.log(JSON.stringify({ images: urls.length, stored, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
