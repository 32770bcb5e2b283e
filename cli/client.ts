import { Client, Connection } from '@temporalio/client';
import { resolveConnections, type Connections } from '../infra/connections';

export interface CliClient {
  client: Client;
  connections: Connections;
  close(): Promise<void>;
}

/** Connects to Temporal with a clear message when nothing listens. */
export async function connectClient(): Promise<CliClient> {
  const connections = resolveConnections();
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: connections.temporalAddress, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${connections.temporalAddress} (${connections.source}): ${(err as Error).message}. ` +
        (connections.source === 'embedded stack' ? 'Is the stack up? Try "mella dev status" / "mella dev up".' : 'Check TEMPORAL_ADDRESS.'),
    );
  }
  return {
    client: new Client({ connection, namespace: connections.namespace }),
    connections,
    close: () => connection.close(),
  };
}
