import { inject } from 'vitest';

// Every test file talks to the suite's stack, never to a developer's `mella dev up` stack.
const stack = inject('stack');
process.env.TEMPORAL_ADDRESS = stack.temporalAddress;
process.env.DATABASE_URL = stack.databaseUrl;
process.env.MELLA_STATE_DIR = stack.stateDir;
process.env.MELLA_BLOB_DIR = stack.blobDir;
process.env.MELLA_LOG_LEVEL ??= 'WARN';
