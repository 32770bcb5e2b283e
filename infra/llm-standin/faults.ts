/**
 * Fault injection: what a real endpoint does to its callers, on purpose and deterministically.
 *
 * Kinds:
 * - `latency` (`ms`): the answer comes `ms` later (adds to the server's `latencyMs`);
 * - `429` (`retryAfterSeconds`, default 1): rate limited, with a `Retry-After` header in seconds;
 * - `500`, `503` (`retryAfterSeconds` optional): server errors;
 * - `401`: the key is refused (`invalid_api_key`), whatever it is;
 * - `hang`: the request is read and never answered (the client's timeout must fire; `close()` ends it);
 * - `malformed-json`: status 200, `content-type: application/json`, a body cut off mid-object;
 * - `empty`: a normal completion whose content is "" (chat only);
 * - `refusal`: a normal completion whose content is "I'm sorry, I can't help with that." (chat only).
 *
 * A server-wide plan is a list of rules; a rule applies to every request of its routes (default: chat
 * and embeddings) and models (default: all), or only to the `first` N of them, or to `every` Nth
 * (the Nth, 2Nth, ...), counting the requests that match the rule since start or `reset()`.
 *
 * One request can ask for faults with the header `x-standin-fault`: a comma-separated list of specs
 * `kind[=value]`, where the value is the delay for `latency` and the Retry-After seconds for `429`/`503`:
 * `x-standin-fault: 429=2`, `x-standin-fault: latency=300, 500`, `x-standin-fault: hang`.
 * The CLI's `--fault` takes the same spec plus `@first=N` or `@every=N`: `--fault 500@first=2`.
 *
 * When several faults apply, the latencies add up and the first failure wins: the header's, then the
 * plan's in order.
 */
import { invalidRequest } from './protocol';

export const FAULT_KINDS = ['latency', '429', '500', '503', '401', 'hang', 'malformed-json', 'empty', 'refusal'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type Failure = Exclude<FaultKind, 'latency'>;
export const ROUTES = ['chat', 'embeddings', 'models'] as const;
export type StandinRoute = (typeof ROUTES)[number];

export interface FaultRule {
  fault: FaultKind;
  /** `latency`: the delay in milliseconds (default 1000). */
  ms?: number;
  /** `429` (default 1) and `503`: the Retry-After header, in seconds. */
  retryAfterSeconds?: number;
  /** Only the first N matching requests. */
  first?: number;
  /** Only every Nth matching request (the Nth, 2Nth, ...). */
  every?: number;
  /** Routes the rule applies to (default chat and embeddings; `empty` and `refusal` act on chat only). */
  routes?: StandinRoute[];
  /** Models the rule applies to (default all). */
  models?: string[];
}
export type FaultPlan = FaultRule[];

export interface Decision {
  latencyMs: number;
  failure?: { kind: Failure; retryAfterSeconds?: number; source: 'header' | 'plan' };
  /** Every fault that applied (for the stats), e.g. ["latency", "429"]. */
  applied: FaultKind[];
}

function isFaultKind(s: string): s is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(s);
}

export function validateRule(rule: FaultRule): FaultRule {
  if (!isFaultKind(rule.fault)) throw new Error(`unknown fault "${String(rule.fault)}" (one of ${FAULT_KINDS.join(', ')})`);
  for (const k of ['ms', 'retryAfterSeconds'] as const) {
    const v = rule[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new Error(`fault ${rule.fault}: ${k} must be a non-negative number`);
  }
  for (const k of ['first', 'every'] as const) {
    const v = rule[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new Error(`fault ${rule.fault}: ${k} must be a positive integer`);
  }
  if (rule.first !== undefined && rule.every !== undefined) throw new Error(`fault ${rule.fault}: give "first" or "every", not both`);
  for (const r of rule.routes ?? []) if (!(ROUTES as readonly string[]).includes(r)) throw new Error(`fault ${rule.fault}: unknown route "${r}"`);
  return rule;
}

/**
 * One spec: `kind[=value][@first=N|@every=N]`, e.g. `429=2`, `latency=250`, `500@first=3`, `hang@every=4`.
 * @throws Error with a readable message
 */
export function parseFaultSpec(spec: string): FaultRule {
  const m = /^\s*([a-z0-9-]+)\s*(?:=\s*([0-9.]+))?\s*(?:@\s*(first|every)\s*=\s*(\d+))?\s*$/i.exec(spec);
  if (m === null) throw new Error(`fault spec "${spec}": expected kind[=value][@first=N|@every=N]`);
  const kind = m[1]!.toLowerCase();
  if (!isFaultKind(kind)) throw new Error(`fault spec "${spec}": unknown fault "${kind}" (one of ${FAULT_KINDS.join(', ')})`);
  const rule: FaultRule = { fault: kind };
  if (m[2] !== undefined) {
    const value = Number(m[2]);
    if (kind === 'latency') rule.ms = value;
    else if (kind === '429' || kind === '503') rule.retryAfterSeconds = value;
    else throw new Error(`fault spec "${spec}": "${kind}" takes no value`);
  }
  if (m[3] !== undefined) rule[m[3].toLowerCase() as 'first' | 'every'] = Number(m[4]);
  return validateRule(rule);
}

/** The faults one request asks for in its `x-standin-fault` header. @throws ApiError (400) */
export function parseFaultHeader(value: string): FaultRule[] {
  try {
    return value
      .split(',')
      .filter((s) => s.trim() !== '')
      .map((s) => {
        const rule = parseFaultSpec(s);
        if (rule.first !== undefined || rule.every !== undefined) throw new Error(`fault spec "${s}": @first/@every belong in the server's plan`);
        return rule;
      });
  } catch (err) {
    throw invalidRequest(`x-standin-fault: ${(err as Error).message}`, null, 'invalid_fault_header');
  }
}

const appliesTo = (rule: FaultRule, route: StandinRoute): boolean => {
  if ((rule.fault === 'empty' || rule.fault === 'refusal') && route !== 'chat') return false;
  return (rule.routes ?? ['chat', 'embeddings']).includes(route);
};

/** The server's fault plan with its per-rule request counters. */
export class FaultInjector {
  private rules: FaultPlan = [];
  private counters: number[] = [];

  constructor(plan: FaultPlan = []) {
    this.setPlan(plan);
  }

  setPlan(plan: FaultPlan): void {
    this.rules = plan.map((r) => validateRule({ ...r }));
    this.counters = this.rules.map(() => 0);
  }

  /** Restarts the counting of `first` and `every`. */
  reset(): void {
    this.counters = this.rules.map(() => 0);
  }

  /** What happens to one request: counts it against the plan's rules and adds the header's faults. */
  decide(route: StandinRoute, model: string | undefined, headerRules: FaultRule[]): Decision {
    const decision: Decision = { latencyMs: 0, applied: [] };
    const apply = (rule: FaultRule, source: 'header' | 'plan') => {
      decision.applied.push(rule.fault);
      if (rule.fault === 'latency') decision.latencyMs += rule.ms ?? 1000;
      else if (decision.failure === undefined) {
        const retryAfterSeconds = rule.retryAfterSeconds ?? (rule.fault === '429' ? 1 : undefined);
        decision.failure = { kind: rule.fault, source, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
      }
    };
    for (const rule of headerRules) if ((rule.fault !== 'empty' && rule.fault !== 'refusal') || route === 'chat') apply(rule, 'header');
    this.rules.forEach((rule, i) => {
      if (!appliesTo(rule, route)) return;
      if (rule.models !== undefined && (model === undefined || !rule.models.includes(model))) return;
      const n = ++this.counters[i]!;
      if (rule.first !== undefined && n > rule.first) return;
      if (rule.every !== undefined && n % rule.every !== 0) return;
      apply(rule, 'plan');
    });
    return decision;
  }
}
