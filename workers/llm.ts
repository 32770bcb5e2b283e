// Worker entry for the mella-llm task queue (one process per queue in a deployment).
import { runWorkers } from './run-workers';

await runWorkers(['mella-llm']);
