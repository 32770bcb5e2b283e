/**
 * The OpenAI wire format the stand-in speaks: error bodies, ids and token counts.
 *
 * Tokens are counted deterministically, not with a real tokenizer: a text costs ceil(characters / 4)
 * tokens (code points), every chat message 4 more, every image `IMAGE_TOKENS` (OpenAI's price of a
 * low-detail image), a completion ceil(characters / 4).
 */
import crypto from 'node:crypto';

export const IMAGE_TOKENS = 85;
export const MESSAGE_TOKENS = 4;

export function textTokens(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return Math.ceil(n / 4);
}

/** An error the way OpenAI's API reports it (the `openai` client reads `error.message`, `type`, `code`, `param`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', code, param);

/** A short deterministic hex digest (for ids derived from a request). */
export function digest(...parts: (string | Buffer)[]): string {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}
