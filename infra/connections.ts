import { readStackRecord } from './stack/control';
import { stateDir } from './paths';

export interface Connections {
  temporalAddress: string;
  namespace: string;
  databaseUrl: string;
  /** Temporal Web UI base URL, when known. */
  uiUrl?: string;
  /** Where the values came from, for messages. */
  source: 'environment' | 'embedded stack';
}

export class StackNotUpError extends Error {
  override name = 'StackNotUpError';
}

/**
 * Where Temporal and PostgreSQL are: `TEMPORAL_ADDRESS` / `DATABASE_URL` (external services) or the
 * embedded stack started by `mella dev up` (its <state>/stack.json).
 */
export function resolveConnections(): Connections {
  const envTemporal = process.env.TEMPORAL_ADDRESS;
  const envDb = process.env.DATABASE_URL;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  const record = envTemporal && envDb ? undefined : readStackRecord(stateDir());
  const temporalAddress = envTemporal ?? (record?.state === 'ready' ? record.temporalAddress : undefined);
  const databaseUrl = envDb ?? (record?.state === 'ready' ? record.databaseUrl : undefined);
  if (!temporalAddress || !databaseUrl) {
    throw new StackNotUpError(
      `no ${!temporalAddress ? 'Temporal' : 'PostgreSQL'} to talk to: start the embedded stack with "mella dev up" ` +
        `(state dir ${stateDir()}), or set TEMPORAL_ADDRESS and DATABASE_URL for external services`,
    );
  }
  return {
    temporalAddress,
    namespace,
    databaseUrl,
    uiUrl: process.env.TEMPORAL_UI_URL ?? (envTemporal ? undefined : record?.temporalUiUrl),
    source: envTemporal && envDb ? 'environment' : 'embedded stack',
  };
}

/** Link to a workflow in the Temporal Web UI. */
export function workflowUiLink(c: Connections, workflowId: string): string | undefined {
  return c.uiUrl ? `${c.uiUrl}/namespaces/${encodeURIComponent(c.namespace)}/workflows/${encodeURIComponent(workflowId)}` : undefined;
}
