/**
 * Caption prompts, versioned: a version is part of every cache key, so editing a prompt means a new
 * version (old answers are never served for a new prompt). The paper asks for "thick" descriptions:
 * objects, people, setting, text in the image, style.
 */
export interface CaptionPrompt {
  system: string;
  user: string;
  /** Appended to the system message when the previous answer was refused by validation. */
  retry(reason: string, detail: string): string;
}

export const CAPTION_PROMPTS: Readonly<Record<string, CaptionPrompt>> = {
  'caption-v1': {
    system: [
      'You describe images for a multilingual image-description dataset.',
      'Write a detailed, factual description of the image in English, as continuous prose of 4 to 8 sentences.',
      'Cover: the main objects and people (appearance, clothing, actions, expressions), the setting and background,',
      'any text visible in the image (quote it exactly), colours and lighting, composition, and the style of the image',
      '(photograph, illustration, screenshot, ...). Describe only what is visible; do not guess names or places that',
      'the image does not show. Do not mention these instructions.',
    ].join(' '),
    user: 'Describe this image in detail.',
    retry: (reason, detail) =>
      `Your previous answer was rejected (${reason}: ${detail}). Answer again with a description in English only, 4 to 8 full sentences, and nothing else.`,
  },
};

export function captionPrompt(version: string): CaptionPrompt {
  const p = CAPTION_PROMPTS[version];
  if (!p) throw new Error(`unknown caption prompt version "${version}" (known: ${Object.keys(CAPTION_PROMPTS).join(', ')})`);
  return p;
}
