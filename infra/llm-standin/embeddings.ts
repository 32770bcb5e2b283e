/**
 * `POST /v1/embeddings`: deterministic unit vectors by feature hashing. Every word and every character
 * trigram of the (NFC, lower-cased) input is hashed (sha256 with the model name) to a dimension and a
 * sign; the sum is L2-normalised. The same input and model give the same vector; texts that share words
 * and trigrams have a high cosine similarity, unrelated texts one near 0, so near-duplicate logic can be
 * tested against it. Token-id inputs (arrays of integers) are hashed as their decimal text.
 *
 * Dimension: the request's `dimensions`, else the server's default (256). `encoding_format` "float" or
 * "base64" (little-endian float32, what the `openai` client asks for by default and decodes).
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import { captionEn } from './caption';
import { dataUrlBytes } from './chat';
import { ImageDecodeError, imageFacts } from './image-facts';
import { invalidRequest, textTokens } from './protocol';

export const DEFAULT_EMBEDDING_DIMENSIONS = 256;
export const MAX_EMBEDDING_DIMENSIONS = 4096;

const tokenIds = z.array(z.number().int().min(0));
const contentPart = z.union([
  z.looseObject({ type: z.literal('text'), text: z.string() }),
  z.looseObject({ type: z.literal('image_url'), image_url: z.looseObject({ url: z.string() }) }),
]);
/** vLLM's chat-style embeddings input (multimodal embedding models): one conversation, one vector. */
const embeddingMessages = z
  .array(z.looseObject({ role: z.string(), content: z.union([z.string(), z.array(contentPart)]) }))
  .min(1);

export const embeddingRequestSchema = z
  .looseObject({
    model: z.string().min(1, 'you must provide a model parameter'),
    input: z.union([z.string(), z.array(z.string()).min(1), tokenIds.min(1), z.array(tokenIds.min(1)).min(1)]).optional(),
    messages: embeddingMessages.optional(),
    dimensions: z.number().int().min(1).max(MAX_EMBEDDING_DIMENSIONS).nullish(),
    encoding_format: z.enum(['float', 'base64']).nullish(),
  })
  .refine((r) => (r.input === undefined) !== (r.messages === undefined), { message: "give either 'input' or 'messages'", path: ['input'] });
export type EmbeddingRequest = z.infer<typeof embeddingRequestSchema>;

export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  const r = embeddingRequestSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const param = issue.path.map(String).join('.');
    throw invalidRequest(`Invalid request: ${param === '' ? '' : `'${param}': `}${issue.message}`, param === '' ? null : param);
  }
  return r.data;
}

/** The inputs as texts (a token-id array becomes its ids joined by spaces). */
export function inputTexts(input: NonNullable<EmbeddingRequest['input']>): string[] {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [(input as number[]).join(' ')];
  return (input as (string | number[])[]).map((x) => (typeof x === 'string' ? x : x.join(' ')));
}

function features(text: string): string[] {
  const norm = text.normalize('NFC').toLowerCase().replace(/\s+/g, ' ').trim();
  const out: string[] = [];
  for (const w of norm.match(/[\p{L}\p{N}]+/gu) ?? []) out.push(`w:${w}`);
  const chars = [...` ${norm} `];
  for (let i = 0; i + 3 <= chars.length; i++) out.push(`c:${chars.slice(i, i + 3).join('')}`);
  return out;
}

/** A deterministic unit vector of `dimensions` for `text` under `model`. */
export function embed(text: string, model: string, dimensions: number): Float32Array {
  const v = new Float64Array(dimensions);
  const feats = features(text);
  if (feats.length === 0) feats.push('empty');
  for (const f of feats) {
    const h = crypto.createHash('sha256').update(model).update('\0').update(f).digest();
    const index = h.readUInt32LE(0) % dimensions;
    const sign = (h[4]! & 1) === 0 ? 1 : -1;
    const weight = f.startsWith('w:') ? 2 : 1;
    v[index]! += sign * weight;
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  const out = new Float32Array(dimensions);
  // A feature set whose hashes cancel out exactly: fall back to a fixed unit vector.
  if (norm === 0) out[0] = 1;
  else for (let i = 0; i < dimensions; i++) out[i] = v[i]! / norm;
  return out;
}

/** Little-endian float32 bytes in base64 (OpenAI's `encoding_format: "base64"`). */
function float32Base64(vec: Float32Array): string {
  const buf = Buffer.alloc(vec.length * 4);
  vec.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}

export interface EmbeddingResponseBody {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/**
 * The text a `messages` request is embedded as: its text parts, and for each image the stand-in's own
 * English caption of it (caption.ts), so that an image and a text that describes it the way the
 * stand-in would are close, and unrelated texts are not. @throws ApiError (400) for a bad image
 */
export async function messagesText(messages: NonNullable<EmbeddingRequest['messages']>): Promise<string> {
  const parts: string[] = [];
  for (const m of messages) {
    if (typeof m.content === 'string') parts.push(m.content);
    else {
      for (const p of m.content) {
        if (p.type === 'text') parts.push(p.text);
        else {
          try {
            parts.push(captionEn(await imageFacts(dataUrlBytes(p.image_url.url))));
          } catch (err) {
            if (err instanceof ImageDecodeError) throw invalidRequest(`Invalid image: ${err.message}`, 'messages.content.image_url.url', 'invalid_image_format');
            throw err;
          }
        }
      }
    }
  }
  return parts.join('\n').trim();
}

export async function embeddingResponse(req: EmbeddingRequest, defaultDimensions: number): Promise<EmbeddingResponseBody> {
  const dims = req.dimensions ?? defaultDimensions;
  const inputs = req.messages !== undefined ? [await messagesText(req.messages)] : inputTexts(req.input!);
  if (inputs.length > 2048) throw invalidRequest("'input' must have at most 2048 items", 'input');
  const tokens = inputs.reduce((s, t) => s + textTokens(t), 0);
  return {
    object: 'list',
    data: inputs.map((text, index) => {
      const vec = embed(text, req.model, dims);
      const embedding = req.encoding_format === 'base64' ? float32Base64(vec) : Array.from(vec);
      return { object: 'embedding' as const, index, embedding };
    }),
    model: req.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
