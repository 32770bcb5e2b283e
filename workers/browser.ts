// Worker entry for the mella-browser task queue (one process per queue in a deployment).
import { runWorkers } from './run-workers';

await runWorkers(['mella-browser']);
