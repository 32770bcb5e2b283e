// All-in-one worker for development: every queue (or those named in argv) in one process.
import { runWorkers } from './run-workers';
import { parseQueue, QUEUE_NAMES } from './queue-names';

const named = process.argv.slice(2).flatMap((a) => a.split(',')).filter(Boolean);
await runWorkers(named.length ? named.map(parseQueue) : QUEUE_NAMES);
