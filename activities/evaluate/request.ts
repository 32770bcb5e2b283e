/**
 * The request a model under evaluation gets for one sample: the training instruction with the image,
 * as the exports present it (`<image>` first, then the instruction: the user turn of the sharegpt
 * record), the image resized like the caption stage sends it (longest side `imageMaxSide`, JPEG 85, as a
 * data URL). Optionally a system line `Target language: <lang>` (a model option, off by default).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import sharp from 'sharp';
import { targetLanguageLine } from '../../infra/llm-standin/conventions';

export interface EvalRequestItem {
  sampleId: string;
  lang: string;
  instruction: string;
  image: string;
  imageSha256: string;
}

export async function imageDataUrl(file: string, maxSide: number): Promise<string> {
  const jpeg = await sharp(await fs.readFile(file))
    .rotate()
    .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 85 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}

export async function buildEvalRequest(
  item: EvalRequestItem,
  exportDir: string,
  options: { imageMaxSide: number; targetLanguageHint: boolean },
): Promise<{ messages: ChatCompletionMessageParam[]; inputHash: string }> {
  const url = await imageDataUrl(path.join(exportDir, item.image), options.imageMaxSide);
  const messages: ChatCompletionMessageParam[] = [];
  if (options.targetLanguageHint) messages.push({ role: 'system', content: targetLanguageLine(item.lang) });
  messages.push({ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: item.instruction }] });
  // Same picture, same size, same instruction (and hint): same answer, whichever evaluation asks.
  const inputHash = createHash('sha256')
    .update(JSON.stringify([item.imageSha256, options.imageMaxSide, item.instruction, options.targetLanguageHint ? item.lang : null]))
    .digest('hex');
  return { messages, inputHash };
}
