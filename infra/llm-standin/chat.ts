/**
 * `POST /v1/chat/completions`: validates the request (the subset of OpenAI's schema the stand-in
 * answers: text and `image_url` parts, non-streaming), decides what was asked (conventions.ts) and builds
 * the completion: an English caption of the images, a target-language description (fused with the alt
 * text when given), a translation of the stand-in's own caption, a marked pseudo-translation, or an
 * acknowledgement of a text-only request.
 */
import { z } from 'zod';
import { STANDIN_FINGERPRINT, STANDIN_MARKER, parseAltText, parseTargetLanguage, type AnswerKind } from './conventions';
import { ImageDecodeError, imageFacts, type ImageFacts } from './image-facts';
import { IMAGE_TOKENS, MESSAGE_TOKENS, digest, invalidRequest, textTokens } from './protocol';
import { describe, translate, type Answer } from './translate';

export const REFUSAL_TEXT = "I'm sorry, I can't help with that.";

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() }),
});
const part = z.discriminatedUnion('type', [textPart, imagePart]);
const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(part), z.null()]).optional(),
});
export const chatRequestSchema = z.looseObject({
  model: z.string().min(1, 'you must provide a model parameter'),
  messages: z.array(message).min(1, "'messages' must contain at least one message"),
  stream: z.boolean().nullish(),
  n: z.number().int().min(1).max(8).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;
type Message = ChatRequest['messages'][number];

/** Validates a parsed JSON body. @throws ApiError (400) */
export function parseChatRequest(body: unknown): ChatRequest {
  const r = chatRequestSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
    throw invalidRequest(`Invalid request: ${param === '' ? '' : `'${param}': `}${issue.message}`, param === '' ? null : param);
  }
  if (r.data.stream === true) {
    throw invalidRequest('stream: true is not supported by the MELLA LLM stand-in; send non-streaming requests.', 'stream', 'unsupported_parameter');
  }
  return r.data;
}

const texts = (m: Message): string[] =>
  m.content == null ? [] : typeof m.content === 'string' ? [m.content] : m.content.flatMap((p) => (p.type === 'text' ? [p.text] : []));
const imageUrls = (m: Message): string[] =>
  m.content == null || typeof m.content === 'string' ? [] : m.content.flatMap((p) => (p.type === 'image_url' ? [p.image_url.url] : []));

/** The bytes of a `data:` URL image. @throws ApiError (400) for remote URLs and malformed data URLs */
export function dataUrlBytes(url: string): Buffer {
  if (/^https?:/i.test(url)) {
    throw invalidRequest(
      'The MELLA LLM stand-in reaches no network: send images inline as data: URLs (data:image/jpeg;base64,...).',
      'messages.content.image_url.url',
      'invalid_image_url',
    );
  }
  const m = /^data:([^,]*?)(;base64)?,(.*)$/is.exec(url);
  if (m === null) throw invalidRequest('Invalid image URL: expected a data: URL.', 'messages.content.image_url.url', 'invalid_image_url');
  const bytes = m[2] !== undefined ? Buffer.from(m[3]!, 'base64') : Buffer.from(decodeURIComponent(m[3]!), 'latin1');
  if (bytes.length === 0) throw invalidRequest('Invalid image: the data URL is empty.', 'messages.content.image_url.url', 'invalid_image_format');
  return bytes;
}

const CONVENTION_LINE = /^[ \t]*(?:Target language|Alt text):.*$/gim;

/** What the request asks, by the conventions: target language, alt text, images, the text to translate. */
export function readRequest(req: ChatRequest): { target?: string; alt?: string; images: string[]; source: string } {
  const instructions = req.messages.filter((m) => m.role === 'system' || m.role === 'developer').flatMap(texts).join('\n');
  const users = req.messages.filter((m) => m.role === 'user');
  const lastUser = users[users.length - 1];
  const userText = lastUser === undefined ? '' : texts(lastUser).join('\n');
  const target = parseTargetLanguage(instructions) ?? parseTargetLanguage(userText);
  const alt = parseAltText(userText) ?? parseAltText(instructions);
  const images = users.flatMap(imageUrls);
  const source = userText.replace(CONVENTION_LINE, '').trim();
  return { ...(target === undefined ? {} : { target }), ...(alt === undefined ? {} : { alt }), images, source };
}

export function promptTokens(req: ChatRequest): number {
  let n = 3;
  for (const m of req.messages) {
    n += MESSAGE_TOKENS;
    for (const t of texts(m)) n += textTokens(t);
    n += imageUrls(m).length * IMAGE_TOKENS;
  }
  return n;
}

/** The answer the request asks for (images decoded with sharp). @throws ApiError (400) */
export async function answer(req: ChatRequest): Promise<Answer> {
  const { target, alt, images, source } = readRequest(req);
  if (images.length > 0) {
    const facts: ImageFacts[] = [];
    for (const url of images) {
      try {
        facts.push(await imageFacts(dataUrlBytes(url)));
      } catch (err) {
        if (err instanceof ImageDecodeError) {
          throw invalidRequest(`Invalid image: ${err.message}`, 'messages.content.image_url.url', 'invalid_image_format');
        }
        throw err;
      }
    }
    return describe(facts, target, alt);
  }
  if (target !== undefined) return translate(source, target);
  return {
    kind: 'text',
    content:
      `${STANDIN_MARKER} The MELLA LLM stand-in received a text-only request (${[...source].length} characters) without a ` +
      '"Target language:" line; it describes images and translates its own captions (docs/llm-standin.md).',
  };
}

export interface ChatCompletionBody {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string; refusal: null; annotations: [] };
    logprobs: null;
    finish_reason: 'stop' | 'length';
  }[];
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    prompt_tokens_details: { cached_tokens: number };
    completion_tokens_details: { reasoning_tokens: number };
  };
}

/** Cuts `content` to the request's token limit (finish_reason "length"), by the stand-in's token count. */
function limitTokens(content: string, limit: number | undefined): { content: string; finish: 'stop' | 'length' } {
  if (limit === undefined || textTokens(content) <= limit) return { content, finish: 'stop' };
  return { content: [...content].slice(0, limit * 4).join(''), finish: 'length' };
}

/**
 * The completion for `req`; `fault` replaces the content the way a model fails: "" (empty) or a refusal.
 * The id is derived from the request, so the same request gets the same completion (bar `created`).
 */
export async function chatCompletion(
  req: ChatRequest,
  requestBody: string,
  fault?: 'empty' | 'refusal',
): Promise<{ kind: AnswerKind; body: ChatCompletionBody }> {
  const ans: Answer =
    fault === 'empty' ? { kind: 'empty', content: '' } : fault === 'refusal' ? { kind: 'refusal', content: REFUSAL_TEXT } : await answer(req);
  const { content, finish } = limitTokens(ans.content, req.max_completion_tokens ?? req.max_tokens ?? undefined);
  const n = req.n ?? 1;
  const completion = textTokens(content) * n;
  const prompt = promptTokens(req);
  return {
    kind: ans.kind,
    body: {
      id: `chatcmpl-${digest(requestBody, fault ?? '').slice(0, 29)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: req.model,
      system_fingerprint: STANDIN_FINGERPRINT,
      choices: Array.from({ length: n }, (_, index) => ({
        index,
        message: { role: 'assistant' as const, content, refusal: null, annotations: [] as [] },
        logprobs: null,
        finish_reason: finish,
      })),
      usage: {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: { cached_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    },
  };
}
