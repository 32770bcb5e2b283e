/**
 * A configured endpoint as a worker process sees it: base URL, key (from the worker's environment,
 * never from the config or a workflow input), one `openai` client, and the process-wide limits:
 * requests in flight (p-limit), requests per minute and tokens per minute (token buckets, `limiter`).
 */
import OpenAI from 'openai';
import pLimit from 'p-limit';
import { TokenBucket } from 'limiter';
import { ConfigError } from '../shared/config';
import type { EndpointConfig, LlmConfig } from './config';
import { httpFetch } from './http-fetch';

export interface Endpoint {
  readonly name: string;
  readonly baseUrl: string;
  readonly config: EndpointConfig;
  readonly client: OpenAI;
  /** Runs `fn` within the endpoint's concurrency after taking a request and `tokens` from the buckets. */
  limited<T>(tokens: number, fn: () => Promise<T>): Promise<T>;
}

const endpoints = new Map<string, Endpoint>();

/** The base URL an endpoint resolves to in this process (config, else OPENAI_BASE_URL). */
export function endpointBaseUrl(name: string, config: EndpointConfig): string {
  const url = config.baseUrl ?? process.env.OPENAI_BASE_URL;
  if (!url) {
    throw new ConfigError(
      `LLM endpoint "${name}" has no base URL: set llm.endpoints.${name}.baseUrl in the config or OPENAI_BASE_URL in the llm workers' environment`,
    );
  }
  return url.replace(/\/+$/, '');
}

export function resolveEndpoint(llm: LlmConfig, name: string): Endpoint {
  const config = llm.endpoints[name];
  if (!config) throw new ConfigError(`unknown LLM endpoint "${name}" (configured: ${Object.keys(llm.endpoints).join(', ') || 'none'})`);
  const baseUrl = endpointBaseUrl(name, config);
  const key = JSON.stringify([name, baseUrl, config]);
  let e = endpoints.get(key);
  if (e) return e;
  const apiKey = process.env[config.apiKeyEnv];
  if (!apiKey && config.apiKeyEnv !== 'OPENAI_API_KEY') {
    throw new ConfigError(`LLM endpoint "${name}": ${config.apiKeyEnv} is not set in the llm workers' environment`);
  }
  // A local server (vLLM, Ollama, the stand-in) often needs no key; the client insists on one.
  // `fetch`: node:http with keep-alive instead of undici's fetch (http-fetch.ts), a millisecond of CPU less a call.
  const client = new OpenAI({ baseURL: baseUrl, apiKey: apiKey || 'no-key', maxRetries: 0, timeout: config.timeoutMs, fetch: httpFetch });
  const concurrency = pLimit(config.concurrency);
  const requests = new TokenBucket({ bucketSize: config.requestsPerMinute, tokensPerInterval: config.requestsPerMinute, interval: 'minute' });
  const tokens = new TokenBucket({ bucketSize: config.tokensPerMinute, tokensPerInterval: config.tokensPerMinute, interval: 'minute' });
  // limiter's buckets start empty: a fresh worker may use its first minute's budget at once.
  requests.content = requests.bucketSize;
  tokens.content = tokens.bucketSize;
  e = {
    name,
    baseUrl,
    config,
    client,
    limited: (n, fn) =>
      concurrency(async () => {
        await requests.removeTokens(1);
        await tokens.removeTokens(Math.min(Math.max(1, Math.ceil(n)), config.tokensPerMinute));
        return fn();
      }),
  };
  endpoints.set(key, e);
  return e;
}
