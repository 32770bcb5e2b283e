/**
 * Instruction templates: the user turn of every sample, in the target language. Several per language
 * and source, so a model does not learn one fixed prompt; which one a sample gets is chosen by hashing
 * its id, so the same sample always gets the same instruction (re-runs and re-exports are identical).
 *
 * - know (D_know): the question a native speaker asks about a picture ("What does this image show?");
 *   the answer is the native alt text, short and naming things.
 * - ling (D_ling): a request for a detailed description ("Describe this image in detail."); the answer is
 *   the translated detailed caption.
 * - fused: both at once ("What does this image show? Describe it in detail.").
 *
 * Languages with templates here: ar, cs, hu, ko, ru, sr (Cyrillic, the official script; `sr-Latn` has
 * its own Latin set), th, vi, and en. Any other language falls back to the English templates
 * (`fallback: true` in the result), which keeps a configured language working until someone adds its
 * templates; a `templates` argument adds or replaces languages without touching this file.
 * Lookup order for a tag: the exact tag, language-script (`sr-Latn-RS` -> `sr-Latn`), the language
 * (`vi-VN` -> `vi`), then English.
 */
import { createHash } from 'node:crypto';
import type { SampleSource } from './sample';

/** Goes into each sample's lineage; bump it when a template changes. */
export const INSTRUCTION_TEMPLATES_VERSION = 'merge-instructions-v1';

export type InstructionTemplates = Record<string, Record<SampleSource, readonly string[]>>;

export const DEFAULT_INSTRUCTION_TEMPLATES: InstructionTemplates = {
  en: {
    know: [
      'What does this image show?',
      'What is in this picture?',
      'What can you see in this photo?',
      'Briefly describe what this image shows.',
      'What is this picture about?',
    ],
    ling: [
      'Describe this image in detail.',
      'Give a detailed description of this picture.',
      'Describe everything you can see in this photo.',
      'Describe the image in detail, including the main objects, their colours and the setting.',
      'Write a detailed description of this image.',
    ],
    fused: [
      'What does this image show? Describe it in detail.',
      'Describe this image in detail and say what or who it shows.',
      'Tell me what this photo shows and describe it in detail.',
      'Identify what is in this picture and give a detailed description of it.',
    ],
  },
  ar: {
    know: [
      'ماذا تُظهر هذه الصورة؟',
      'ما الذي يظهر في هذه الصورة؟',
      'ماذا ترى في هذه الصورة؟',
      'صِف باختصار ما تُظهره هذه الصورة.',
      'ما موضوع هذه الصورة؟',
    ],
    ling: [
      'صِف هذه الصورة بالتفصيل.',
      'قدّم وصفًا مفصّلًا لهذه الصورة.',
      'صِف كل ما تراه في هذه الصورة.',
      'صِف الصورة بالتفصيل، بما في ذلك العناصر الرئيسية وألوانها والمكان.',
      'اكتب وصفًا مفصّلًا لهذه الصورة.',
    ],
    fused: [
      'ماذا تُظهر هذه الصورة؟ صِفها بالتفصيل.',
      'صِف هذه الصورة بالتفصيل، واذكر ما تُظهره أو من تُظهره.',
      'أخبرني بما تُظهره هذه الصورة وصِفها بالتفصيل.',
      'حدّد ما في هذه الصورة وقدّم وصفًا مفصّلًا لها.',
    ],
  },
  cs: {
    know: [
      'Co je na tomto obrázku?',
      'Co zobrazuje tento obrázek?',
      'Co vidíte na této fotografii?',
      'Stručně popište, co je na obrázku.',
      'Co zachycuje tento snímek?',
    ],
    ling: [
      'Popište podrobně tento obrázek.',
      'Podejte podrobný popis této fotografie.',
      'Popište vše, co na tomto snímku vidíte.',
      'Podrobně popište obrázek včetně hlavních objektů, jejich barev a prostředí.',
      'Napište podrobný popis tohoto obrázku.',
    ],
    fused: [
      'Co je na tomto obrázku? Popište ho podrobně.',
      'Podrobně popište tento obrázek a uveďte, co nebo koho zachycuje.',
      'Řekněte mi, co tato fotografie zachycuje, a podrobně ji popište.',
      'Určete, co je na snímku, a podejte jeho podrobný popis.',
    ],
  },
  hu: {
    know: [
      'Mit ábrázol ez a kép?',
      'Mi látható ezen a képen?',
      'Mit lát ezen a fényképen?',
      'Röviden írja le, mi látható a képen.',
      'Miről szól ez a kép?',
    ],
    ling: [
      'Írja le részletesen ezt a képet.',
      'Adjon részletes leírást erről a fényképről.',
      'Írjon le mindent, amit ezen a képen lát.',
      'Írja le részletesen a képet, beleértve a fő tárgyakat, azok színeit és a környezetet.',
      'Készítsen részletes leírást erről a képről.',
    ],
    fused: [
      'Mit ábrázol ez a kép? Írja le részletesen.',
      'Írja le részletesen ezt a képet, és nevezze meg, mit vagy kit ábrázol.',
      'Mondja el, mi látható ezen a fényképen, és írja le részletesen.',
      'Határozza meg, mi van a képen, és adjon róla részletes leírást.',
    ],
  },
  ko: {
    know: [
      '이 이미지는 무엇을 보여 주나요?',
      '이 사진에는 무엇이 있나요?',
      '이 사진에서 무엇을 볼 수 있나요?',
      '이 이미지에 나온 것을 간단히 설명해 주세요.',
      '이 사진은 무엇에 관한 것인가요?',
    ],
    ling: [
      '이 이미지를 자세히 설명해 주세요.',
      '이 사진을 상세하게 묘사해 주세요.',
      '이 사진에서 보이는 모든 것을 설명해 주세요.',
      '주요 사물과 색상, 배경을 포함하여 이미지를 자세히 설명해 주세요.',
      '이 이미지에 대한 자세한 설명을 작성해 주세요.',
    ],
    fused: [
      '이 이미지는 무엇을 보여 주나요? 자세히 설명해 주세요.',
      '이 이미지를 자세히 설명하고, 무엇 또는 누구를 보여 주는지 말해 주세요.',
      '이 사진이 무엇을 보여 주는지 알려 주고 자세히 묘사해 주세요.',
      '사진 속에 무엇이 있는지 밝히고 자세히 설명해 주세요.',
    ],
  },
  ru: {
    know: [
      'Что изображено на этой картинке?',
      'Что показано на этом изображении?',
      'Что вы видите на этой фотографии?',
      'Кратко опишите, что изображено на снимке.',
      'О чём эта фотография?',
    ],
    ling: [
      'Подробно опишите это изображение.',
      'Дайте подробное описание этой фотографии.',
      'Опишите всё, что вы видите на этом снимке.',
      'Подробно опишите изображение: основные объекты, их цвета и обстановку.',
      'Составьте подробное описание этой картинки.',
    ],
    fused: [
      'Что изображено на этой картинке? Опишите подробно.',
      'Подробно опишите это изображение и скажите, что или кто на нём изображён.',
      'Расскажите, что показано на этой фотографии, и подробно опишите её.',
      'Определите, что изображено на снимке, и дайте его подробное описание.',
    ],
  },
  sr: {
    know: [
      'Шта приказује ова слика?',
      'Шта се види на овој слици?',
      'Шта видите на овој фотографији?',
      'Укратко опишите шта је на слици.',
      'Шта је на овој фотографији?',
    ],
    ling: [
      'Детаљно опишите ову слику.',
      'Дајте детаљан опис ове фотографије.',
      'Опишите све што видите на овој фотографији.',
      'Детаљно опишите слику, укључујући главне предмете, њихове боје и окружење.',
      'Напишите детаљан опис ове слике.',
    ],
    fused: [
      'Шта приказује ова слика? Опишите је детаљно.',
      'Детаљно опишите ову слику и реците шта или кога приказује.',
      'Реците ми шта приказује ова фотографија и детаљно је опишите.',
      'Утврдите шта је на слици и дајте њен детаљан опис.',
    ],
  },
  'sr-Latn': {
    know: [
      'Šta prikazuje ova slika?',
      'Šta se vidi na ovoj slici?',
      'Šta vidite na ovoj fotografiji?',
      'Ukratko opišite šta je na slici.',
      'Šta je na ovoj fotografiji?',
    ],
    ling: [
      'Detaljno opišite ovu sliku.',
      'Dajte detaljan opis ove fotografije.',
      'Opišite sve što vidite na ovoj fotografiji.',
      'Detaljno opišite sliku, uključujući glavne predmete, njihove boje i okruženje.',
      'Napišite detaljan opis ove slike.',
    ],
    fused: [
      'Šta prikazuje ova slika? Opišite je detaljno.',
      'Detaljno opišite ovu sliku i recite šta ili koga prikazuje.',
      'Recite mi šta prikazuje ova fotografija i detaljno je opišite.',
      'Utvrdite šta je na slici i dajte njen detaljan opis.',
    ],
  },
  th: {
    know: [
      'ภาพนี้แสดงอะไร',
      'ในภาพนี้มีอะไรบ้าง',
      'คุณเห็นอะไรในรูปนี้',
      'ช่วยอธิบายสั้น ๆ ว่าภาพนี้แสดงอะไร',
      'รูปนี้เกี่ยวกับอะไร',
    ],
    ling: [
      'อธิบายภาพนี้อย่างละเอียด',
      'ช่วยบรรยายรายละเอียดของภาพนี้',
      'อธิบายทุกสิ่งที่คุณเห็นในรูปนี้',
      'อธิบายภาพนี้อย่างละเอียด รวมถึงวัตถุหลัก สีสัน และสภาพแวดล้อม',
      'เขียนคำบรรยายภาพนี้อย่างละเอียด',
    ],
    fused: [
      'ภาพนี้แสดงอะไร ช่วยอธิบายอย่างละเอียด',
      'อธิบายภาพนี้อย่างละเอียด และบอกว่าภาพแสดงอะไรหรือใคร',
      'บอกหน่อยว่ารูปนี้แสดงอะไร แล้วบรรยายอย่างละเอียด',
      'ระบุว่าในภาพมีอะไร และให้คำอธิบายโดยละเอียด',
    ],
  },
  vi: {
    know: [
      'Hình ảnh này cho thấy gì?',
      'Trong bức ảnh này có gì?',
      'Bạn thấy gì trong bức ảnh này?',
      'Hãy mô tả ngắn gọn nội dung của hình ảnh này.',
      'Bức ảnh này nói về điều gì?',
    ],
    ling: [
      'Hãy mô tả chi tiết hình ảnh này.',
      'Hãy đưa ra mô tả chi tiết về bức ảnh này.',
      'Hãy mô tả mọi thứ bạn nhìn thấy trong bức ảnh này.',
      'Hãy mô tả chi tiết hình ảnh, bao gồm các đối tượng chính, màu sắc và bối cảnh.',
      'Viết một đoạn mô tả chi tiết về hình ảnh này.',
    ],
    fused: [
      'Hình ảnh này cho thấy gì? Hãy mô tả chi tiết.',
      'Hãy mô tả chi tiết hình ảnh này và cho biết nó thể hiện điều gì hoặc ai.',
      'Hãy cho tôi biết bức ảnh này thể hiện gì và mô tả chi tiết.',
      'Hãy xác định nội dung trong bức ảnh và mô tả chi tiết.',
    ],
  },
};

export interface ChosenInstruction {
  text: string;
  /** `<templates language>/<source>/<index>`, for lineage. */
  templateId: string;
  /** The key of the template set used (`sr-Latn`, `vi`, `en`...). */
  templateLang: string;
  /** True when the language had no templates and English was used. */
  fallback: boolean;
}

/** The template set for a BCP-47 tag: exact, language-script, language, then undefined. */
export function templatesFor(lang: string, templates: InstructionTemplates = DEFAULT_INSTRUCTION_TEMPLATES): { key: string; set: Record<SampleSource, readonly string[]> } | undefined {
  const parts = lang.split(/[-_]/);
  const candidates = [lang];
  const base = parts[0]!.toLowerCase();
  const script = parts.slice(1).find((p) => /^[A-Za-z]{4}$/.test(p));
  if (script) candidates.push(`${base}-${script[0]!.toUpperCase()}${script.slice(1).toLowerCase()}`);
  candidates.push(base);
  for (const key of candidates) {
    const set = templates[key];
    if (set) return { key, set };
  }
  return undefined;
}

/**
 * The instruction for a sample: template number `uint32(sha256(id)[0..4]) mod count` of its language
 * and source (English when the language has none). Throws only on an empty template list.
 */
export function chooseInstruction(
  sampleId: string,
  lang: string,
  source: SampleSource,
  templates: InstructionTemplates = DEFAULT_INSTRUCTION_TEMPLATES,
): ChosenInstruction {
  const found = templatesFor(lang, templates);
  const english = found ?? (templates.en ? { key: 'en', set: templates.en } : { key: 'en', set: DEFAULT_INSTRUCTION_TEMPLATES.en! });
  const list = english.set[source];
  if (!list || list.length === 0) throw new Error(`no instruction templates for ${english.key}/${source}`);
  const index = createHash('sha256').update(sampleId).digest().readUInt32BE(0) % list.length;
  return { text: list[index]!, templateId: `${english.key}/${source}/${index}`, templateLang: english.key, fallback: found === undefined };
}
