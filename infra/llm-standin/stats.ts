/**
 * What the stand-in served: requests by route, model, outcome and injected fault, token totals,
 * concurrency, and a bounded log of recent requests (start and end times), so that tests can count
 * requests ("a re-run makes zero new requests") and measure rates and concurrency at the endpoint.
 */
import type { FaultKind, StandinRoute } from './faults';

/** How a request ended. */
export type Outcome =
  | 'ok' // a normal answer (including a marked pseudo-translation)
  | 'empty' // fault: content ""
  | 'refusal' // fault: a refusal
  | 'malformed-json' // fault: a cut-off body
  | 'hang' // fault: never answered (counted when the request arrives at the fault)
  | 'rate-limited' // 429 (fault or maxInFlight)
  | 'server-error' // 500/503 (fault)
  | 'unauthorized' // 401 (wrong key or fault)
  | 'bad-request' // 400, 413
  | 'not-found' // 404, 405
  | 'aborted'; // the client went away before the answer

export interface RequestRecord {
  route: StandinRoute | 'other';
  model?: string;
  outcome: Outcome;
  status: number;
  startedAt: number;
  endedAt: number;
}

export interface StandinStats {
  /** Every request received, whatever its outcome. */
  requests: number;
  byRoute: Record<string, number>;
  byModel: Record<string, number>;
  byOutcome: Partial<Record<Outcome, number>>;
  /** Requests each injected fault applied to (header or plan). */
  byFault: Partial<Record<FaultKind, number>>;
  tokens: { prompt: number; completion: number };
  inFlight: number;
  maxInFlight: number;
  /** The most recent requests (up to `logLimit`), oldest first. */
  log: RequestRecord[];
}

const inc = <K extends string>(rec: Partial<Record<K, number>>, key: K) => {
  rec[key] = (rec[key] ?? 0) + 1;
};

export class StatsRecorder {
  private s: StandinStats = StatsRecorder.empty();

  constructor(private readonly logLimit = 10_000) {}

  private static empty(): StandinStats {
    return { requests: 0, byRoute: {}, byModel: {}, byOutcome: {}, byFault: {}, tokens: { prompt: 0, completion: 0 }, inFlight: 0, maxInFlight: 0, log: [] };
  }

  started(): void {
    this.s.requests++;
    this.s.inFlight++;
    this.s.maxInFlight = Math.max(this.s.maxInFlight, this.s.inFlight);
  }

  faults(kinds: FaultKind[]): void {
    for (const k of kinds) inc(this.s.byFault, k);
  }

  tokens(prompt: number, completion: number): void {
    this.s.tokens.prompt += prompt;
    this.s.tokens.completion += completion;
  }

  ended(record: RequestRecord): void {
    this.s.inFlight--;
    inc(this.s.byRoute, record.route);
    if (record.model !== undefined) inc(this.s.byModel, record.model);
    inc(this.s.byOutcome, record.outcome);
    this.s.log.push(record);
    if (this.s.log.length > this.logLimit) this.s.log.splice(0, this.s.log.length - this.logLimit);
  }

  snapshot(): StandinStats {
    return structuredClone(this.s);
  }

  /** Zeroes everything but the requests still in flight. */
  reset(): void {
    const inFlight = this.s.inFlight;
    this.s = StatsRecorder.empty();
    this.s.inFlight = inFlight;
    this.s.maxInFlight = inFlight;
  }
}
