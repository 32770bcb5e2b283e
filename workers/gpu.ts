// Worker entry for the mella-gpu task queue (one process per queue in a deployment).
import { runWorkers } from './run-workers';

await runWorkers(['mella-gpu']);
