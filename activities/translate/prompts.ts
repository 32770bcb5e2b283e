/**
 * Translation prompts, versioned like the caption prompts (the version is part of every cache key).
 * The `Target language: <code>` line is the convention the stand-in server reads
 * (infra/llm-standin/conventions.ts); a real model reads it as one more instruction.
 */
import { targetLanguageLine } from '../../infra/llm-standin/conventions';

export interface TranslatePrompt {
  system(lang: string, languageName: string, glossary: Readonly<Record<string, string>>): string;
  retry(reason: string, detail: string, languageName: string): string;
}

export const TRANSLATE_PROMPTS: Readonly<Record<string, TranslatePrompt>> = {
  'translate-v1': {
    system(lang, name, glossary) {
      const terms = Object.entries(glossary);
      return [
        `You are a professional translator. Translate the user's English image description into ${name}.`,
        'Keep every detail, number and quoted text; add nothing and leave nothing out.',
        `Write natural, fluent ${name} as a native speaker would, in the standard script of the language, and output only the translation.`,
        ...(terms.length ? ['Use these renderings:', ...terms.map(([en, t]) => `- "${en}" -> "${t}"`)] : []),
        targetLanguageLine(lang),
      ].join('\n');
    },
    retry: (reason, detail, name) =>
      `Your previous translation was rejected (${reason}: ${detail}). Translate again: output only ${name} text, leave no English words untranslated (product and format names such as JPEG may stay), and nothing else.`,
  },
};

export function translatePrompt(version: string): TranslatePrompt {
  const p = TRANSLATE_PROMPTS[version];
  if (!p) throw new Error(`unknown translate prompt version "${version}" (known: ${Object.keys(TRANSLATE_PROMPTS).join(', ')})`);
  return p;
}

/** English name of a language for prompts ("th" -> "Thai", "sr-Latn" -> "Serbian (Latin)"). */
export function languageName(lang: string): string {
  try {
    return new Intl.DisplayNames(['en'], { type: 'language' }).of(lang) ?? lang;
  } catch {
    return lang;
  }
}
