/**
 * `boilerplate`: alt texts that say nothing about the picture. Checks, in order (each can be switched
 * off with `checks`); each has its own reason:
 *
 *  - latex       TeX markup (Wikipedia renders formulas as images whose alt is the TeX source)
 *  - template    an unrendered template placeholder: "${data.name}", "{{ title }}", "' + x.title + '"
 *  - file_name   an image file name or a camera's default name ("6_1398994809.jpg", "IMG_2041")
 *  - url         the whole alt is a URL or a bare domain ("vnexpress.net", "auto.iDNES.cz"), or URLs and
 *                domains with at most `maxContentWords` other words ("Рейтинг@Mail.ru")
 *  - number      only digits and punctuation ("190", "2018-05-01")
 *  - credit      only a photo credit ("Ảnh: Hoàng Phong", "Фото: ТАСС", "사진=연합뉴스", "Getty Images")
 *  - site_name   the site's name (og:site_name, a host name, or the short segment of the page title),
 *                or two or more consecutive words of it ("أخبار اليوم" on "بوابة أخبار اليوم")
 *  - page_title  the page title repeated (the headline of the article, not a description of the image)
 *  - generic     a label made of generic words: "logo", "Ilustrační foto", "أيقونة بوابة", "섬네일 이미지",
 *                "default user icon"; i.e. at least one generic word and at most `maxContentWords`
 *                other words (one-letter prepositions of alphabetic scripts are not counted)
 *
 * Generic words: "image, photo, picture, logo, icon, banner, thumbnail, avatar, illustration, button,
 * advertisement, video, gallery" and unambiguous page-furniture words ("share", "download", "zoom",
 * social network names) in English (on every site) and in the target language; the project's lists for
 * ar cs hu ko ru sr th vi are below (sr covers Cyrillic and Latin, with the Croatian and Bosnian
 * variants), and `extraWords` adds to them per language. Words are matched as whole tokens of
 * Intl.Segmenter in the target language (so Thai and multi-syllable Vietnamese phrases work),
 * case-insensitively, Arabic with alef/ta marbuta/yeh variants folded.
 */
import { z } from 'zod';
import { keep, reject, type ItemOperator, type OperatorResult, type TextItem } from '../operator';
import { baseLanguage, comparisonKey, words } from './segment';

export const BOILERPLATE_CHECKS = [
  'latex',
  'template',
  'file_name',
  'url',
  'number',
  'credit',
  'site_name',
  'page_title',
  'generic',
] as const;
export type BoilerplateCheck = (typeof BOILERPLATE_CHECKS)[number];

/** Generic words and phrases by language; 'en' applies on every site. */
export const GENERIC_WORDS: Readonly<Record<string, readonly string[]>> = {
  // A word is listed only where, in an alt of two words, it marks a label rather than a description:
  // page-furniture words that are also common nouns ("menu", "search", Arabic "السابق" = former,
  // Serbian "štampa" = the press, Vietnamese "đóng" = to build) are left out on purpose.
  en: [
    'image', 'images', 'img', 'picture', 'pictures', 'pic', 'pics', 'photo', 'photos', 'photograph', 'photography',
    'logo', 'logos', 'icon', 'icons', 'banner', 'banners', 'thumbnail', 'thumbnails', 'thumb', 'thumbs',
    'avatar', 'avatars', 'illustration', 'illustrative', 'graphic', 'graphics', 'button', 'btn', 'preview',
    'spacer', 'placeholder', 'ad', 'ads', 'advert', 'advertisement', 'sponsored', 'gallery', 'video', 'default',
    'untitled', 'null', 'undefined', 'alt', 'header', 'footer', 'loading', 'loader', 'print', 'share', 'email',
    'e-mail', 'next', 'previous', 'prev', 'zoom', 'login', 'logout', 'download', 'facebook', 'twitter', 'instagram',
    'youtube', 'pinterest', 'google', 'linkedin', 'whatsapp', 'telegram', 'rss', 'tiktok', 'vk', 'viber', 'me2day',
    'cyworld', 'naver', 'kakao', 'kakaotalk', 'zalo', 'featured image', 'stock photo', 'profile picture', 'user',
    'app store', 'google play',
  ],
  ar: [
    'صورة', 'الصورة', 'صور', 'الصور', 'شعار', 'الشعار', 'لوغو', 'لوجو', 'أيقونة', 'الأيقونة', 'بانر', 'بنر', 'البانر',
    'إعلان', 'الإعلان', 'مصغرة', 'صورة مصغرة', 'الصورة الرمزية', 'رسم توضيحي', 'توضيحية', 'صورة تعبيرية', 'تعبيرية',
    'أرشيفية', 'صورة أرشيفية', 'فيديو', 'الفيديو', 'معاينة', 'معرض الصور', 'المزيد',
  ],
  cs: [
    'obrázek', 'obrázky', 'obrázku', 'obr', 'foto', 'fotka', 'fotky', 'fotografie', 'fotogalerie', 'galerie',
    'snímek', 'snímku', 'ilustrační', 'ilustrace', 'logo', 'loga', 'logem', 'ikona', 'ikonka', 'ikony', 'banner',
    'bannery', 'baner', 'reklama', 'reklamní', 'náhled', 'nahled', 'náhledový', 'miniatura', 'avatar', 'profilový',
    'tlačítko', 'video', 'zavřít', 'vytisknout', 'sdílet', 'předchozí', 'zvětšit', 'stáhnout', 'přehrát',
  ],
  hu: [
    'kép', 'képek', 'képe', 'fotó', 'fotók', 'fotója', 'fénykép', 'fényképe', 'illusztráció', 'illusztrációs',
    'logó', 'logo', 'logója', 'ikon', 'ikonja', 'banner', 'bélyegkép', 'előnézet', 'avatar', 'profilkép', 'gomb',
    'hirdetés', 'reklám', 'videó', 'galéria', 'fotógaléria', 'bezár', 'bezárás', 'megosztás', 'következő', 'előző',
    'nagyítás', 'letöltés',
  ],
  ko: [
    '이미지', '사진', '그림', '포토', '로고', '아이콘', '배너', '썸네일', '섬네일', '미리보기', '아바타', '프로필',
    '버튼', '광고', '동영상', '영상', '자료사진', '일러스트', '닫기', '공유하기', '더보기', '바로가기', '다운로드',
  ],
  ru: [
    'изображение', 'изображения', 'картинка', 'картинки', 'фото', 'фотография', 'фотографии', 'фотка', 'снимок',
    'лого', 'логотип', 'иконка', 'значок', 'пиктограмма', 'баннер', 'реклама', 'миниатюра', 'превью', 'аватар',
    'аватарка', 'иллюстрация', 'иллюстративное', 'кнопка', 'видео', 'галерея', 'фотогалерея', 'закрыть',
    'распечатать', 'поделиться', 'далее', 'подробнее', 'увеличить', 'скачать', 'архивное фото', 'фотоархив',
  ],
  sr: [
    'слика', 'слике', 'фотографија', 'фото', 'лого', 'логотип', 'икона', 'иконица', 'банер', 'реклама', 'сличица',
    'минијатура', 'аватар', 'илустрација', 'илустративна', 'дугме', 'видео', 'галерија', 'затвори', 'штампај',
    'подели', 'подијели', 'увећај', 'повећај', 'преузми',
    'slika', 'slike', 'fotografija', 'foto', 'logo', 'logotip', 'ikona', 'ikonica', 'baner', 'banner', 'reklama',
    'sličica', 'minijatura', 'avatar', 'ilustracija', 'ilustrativna', 'dugme', 'gumb', 'video', 'galerija',
    'zatvori', 'štampaj', 'podeli', 'podijeli', 'uvećaj', 'povećaj', 'preuzmi',
  ],
  th: [
    'รูป', 'รูปภาพ', 'ภาพ', 'ภาพถ่าย', 'รูปถ่าย', 'ภาพประกอบ', 'โลโก้', 'ไอคอน', 'แบนเนอร์', 'ภาพขนาดย่อ', 'รูปย่อ',
    'อวตาร', 'ปุ่ม', 'โฆษณา', 'วิดีโอ', 'แกลเลอรี่', 'แกลเลอรี', 'แชร์', 'ถัดไป', 'ก่อนหน้า', 'ดาวน์โหลด',
  ],
  vi: [
    'ảnh', 'hình ảnh', 'ảnh minh họa', 'ảnh minh hoạ', 'minh họa', 'minh hoạ', 'logo', 'biểu tượng', 'icon',
    'banner', 'ảnh thu nhỏ', 'ảnh đại diện', 'hình đại diện', 'quảng cáo', 'video', 'thư viện ảnh', 'chia sẻ',
    'xem thêm', 'tìm kiếm', 'phóng to', 'tải về', 'bài viết',
  ],
};
// Serbian lists serve Croatian, Bosnian and Montenegrin targets too (one pluricentric language).
const GENERIC_ALIASES: Readonly<Record<string, string>> = { hr: 'sr', bs: 'sr', cnr: 'sr', sh: 'sr' };

/**
 * Words that introduce a photo credit ("Foto: ...", "Ảnh: ...", "사진=..."). On news sites "Photo: <a few
 * words>" is a credit; "Image:" and "Picture:" more often introduce a caption, so they are not here.
 */
const CREDIT_LEADS = [
  'photo', 'photos', 'foto', 'fotó', 'фото', 'ảnh', '사진', 'صورة', 'ภาพ', 'slika', 'слика', 'snímek', 'zdroj',
  'source', 'nguồn', '출처', 'المصدر', 'источник', 'forrás', 'izvor', 'извор', 'ที่มา', 'credit', 'credits',
  'фотография', 'fotografija', 'фотографија', 'autor', 'автор',
];

/** Picture agencies and stock libraries: an alt that is only one of these is a credit. */
const AGENCIES = [
  'getty images', 'getty', 'reuters', 'afp', 'ap', 'ap photo', 'epa', 'shutterstock', 'istock', 'depositphotos',
  'alamy', 'pixabay', 'unsplash', 'freepik', 'profimedia', 'isifa', 'čtk', 'mti', 'тасс', 'риа новости', 'ria novosti',
  'интерфакс', 'yonhap', '연합뉴스', '뉴시스', '뉴스1', 'ttxvn', 'vna', 'tanjug', 'танјуг', 'fena', 'mena', 'wam', 'spa',
  'رويترز', 'أ ف ب', 'وام', 'ممنوع النسخ',
];

function foldArabic(s: string): string {
  return s.replace(/[أإآٱ]/g, 'ا').replace(/ة/g, 'ه').replace(/ى/g, 'ي').replace(/[\u064B-\u065F\u0670\u0640]/g, '');
}

function matchForm(token: string): string {
  return foldArabic(token.normalize('NFC').toLowerCase());
}

/** Splits camelCase and snake/kebab names ("topBanner", "user_avatar") into words first. */
function splitIdentifiers(text: string): string[] {
  return text.replace(/(\p{Ll})(\p{Lu})/gu, '$1 $2').replace(/(?<=\p{L})[_-]+(?=\p{L})/gu, ' ').split(' ');
}

interface PhraseTable {
  /** Phrases as token sequences, longest first. */
  readonly phrases: readonly (readonly string[])[];
}

const phraseTables = new Map<string, PhraseTable>();

function phraseTable(lang: string, extra: readonly string[]): PhraseTable {
  const base = baseLanguage(lang);
  const key = `${lang}\u0000${extra.join('\u0001')}`;
  let table = phraseTables.get(key);
  if (table === undefined) {
    const list = [...(GENERIC_WORDS.en ?? []), ...(GENERIC_WORDS[GENERIC_ALIASES[base] ?? base] ?? []), ...extra];
    const phrases = new Map<string, string[]>();
    for (const p of list) {
      const toks = words(p, lang).map(matchForm);
      if (toks.length > 0) phrases.set(toks.join(' '), toks);
    }
    table = { phrases: [...phrases.values()].sort((a, b) => b.length - a.length) };
    phraseTables.set(key, table);
  }
  return table;
}

const ALPHABETIC_SINGLE = /^[\p{Script=Latin}\p{Script=Cyrillic}\p{Script=Greek}]$/u;
const NUMERIC_TOKEN = /^[\p{N}]+([.,:x×/-][\p{N}]+)*$/u;

export interface GenericAnalysis {
  readonly generic: string[];
  readonly content: string[];
  readonly numbers: number;
}

/** Splits an alt into generic words/phrases, numbers and the remaining content words. */
export function analyzeGeneric(text: string, lang: string, extraWords: readonly string[] = []): GenericAnalysis {
  const tokens = splitIdentifiers(text).flatMap((part) => words(part, lang));
  const forms = tokens.map(matchForm);
  const { phrases } = phraseTable(lang, extraWords);
  const generic: string[] = [];
  const content: string[] = [];
  let numbers = 0;
  for (let i = 0; i < forms.length; ) {
    const phrase = phrases.find((p) => p.every((t, k) => forms[i + k] === t));
    if (phrase !== undefined) {
      generic.push(tokens.slice(i, i + phrase.length).join(' '));
      i += phrase.length;
      continue;
    }
    const token = tokens[i]!;
    if (NUMERIC_TOKEN.test(token)) numbers++;
    else if (!ALPHABETIC_SINGLE.test(token)) content.push(token);
    i++;
  }
  return { generic, content, numbers };
}

const TEMPLATE = [
  /\$\{[^}]{0,200}\}/, // ${data.UserName}
  /\{\{[^}]{0,200}\}\}/, // {{ title }}
  /<%[\s\S]{0,200}%>/, // <%= name %>
  /['"]\s*\+\s*[\w$.]+(?:\([^)]*\))?\s*\+\s*['"]/, // ' + BBX.htmlencode(data.title) + '
  /#\{[^}]{0,200}\}/, // #{name}
];
const LATEX = /\\[A-Za-z]{2,}|[_^]\{|\\[,;!{}]/;
const URL_ONLY = /^(?:(?:https?|ftp):\/\/|www\.)\S+$/i;
const URL_IN_TEXT = /(?:(?:https?|ftp):\/\/|www\.)\S+/giu;
const DOMAIN_IN_TEXT = /(?<![\p{L}\p{N}.-])(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?\.)+\p{L}{2,24}(?:\/\S*)?(?![\p{L}\p{N}])/gu;
const DOMAIN_ONLY = /^(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?\.)+\p{L}{2,24}\.?(?:\/\S*)?$/u;
const IMAGE_FILE = /^[^\s/\\]{0,200}\.(?:jpe?g|jfif|png|apng|gif|webp|avif|bmp|svg|tiff?|heic|heif|ico|jxl)(?:\?\S*)?$/i;
const SPACED_IMAGE_FILE = /^[\p{L}\p{N}_\-.()[\] ]{1,200}\.(?:jpe?g|png|gif|webp|avif|bmp|svg|tiff?|heic)$/iu;
const CAMERA_NAME = /^(?:img|dsc|dscn|dscf|dcim|pict|pxl|mvimg|wp|image|photo|screenshot|capture|scan)[_\- ]?\d{2,}[\w-]*$/i;
const NUMBER_ONLY = /^[\p{N}\p{P}\p{S}\s]+$/u;
const DIGIT = /\p{N}/u;

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const CREDIT_LEAD = new RegExp(`^(?:${CREDIT_LEADS.map(escapeRegex).join('|')})\\s*[:：=|]\\s*(\\S.*)$`, 'iu');
const COPYRIGHT = /^(?:©|\(c\)\s|copyright\b)/iu;
const AGENCY_KEYS = new Set(AGENCIES.map((a) => comparisonKey(foldArabic(a))));
/** Longest credit (in words after the lead) that is still only a name. */
const CREDIT_MAX_WORDS = 4;

/** Separators between the headline and the site name in page titles. */
const TITLE_SEPARATORS = /\s+(?:[|\-–—·•»«:]|::)\s+/u;

function titleSegments(title: string): string[] {
  return title
    .split(TITLE_SEPARATORS)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Host forms a site key can take: "www.vnexpress.net" -> vnexpress.net, vnexpress. */
function hostForms(site: string): string[] {
  const host = site.replace(/^[a-z]+:\/\//i, '').replace(/[/:].*$/, '').replace(/^www\./i, '');
  const first = host.split('.')[0] ?? host;
  return [host, first].filter((h) => h.length >= 3);
}

export const boilerplateConfigSchema = z
  .object({
    /** Which checks run; all by default. */
    checks: z.array(z.enum(BOILERPLATE_CHECKS)).default([...BOILERPLATE_CHECKS]),
    /** Generic label: at least one generic word and at most this many other words. */
    maxContentWords: z.number().int().min(0).default(1),
    /** More generic words or phrases per language (BCP-47 base code, e.g. "th"). */
    extraWords: z.record(z.string(), z.array(z.string().min(1))).default({}),
  })
  .strict();
export type BoilerplateConfig = z.infer<typeof boilerplateConfigSchema>;

const truncate = (s: string, n = 120): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Runs the enabled checks on a normalized alt; the first that matches decides. */
export function detectBoilerplate(item: TextItem, config: BoilerplateConfig): OperatorResult {
  const text = item.text;
  const enabled = new Set(config.checks);
  const key = comparisonKey(foldArabic(text));

  if (enabled.has('latex')) {
    const m = LATEX.exec(text);
    if (m) return reject('boilerplate_latex', m[0], 'no TeX markup', 'formula source, not a description');
  }
  if (enabled.has('template')) {
    for (const re of TEMPLATE) {
      const m = re.exec(text);
      if (m) return reject('boilerplate_template', truncate(m[0]), 'no template placeholder', 'unrendered template code');
    }
  }
  if (enabled.has('file_name') && (IMAGE_FILE.test(text) || SPACED_IMAGE_FILE.test(text) || CAMERA_NAME.test(text))) {
    return reject('boilerplate_file_name', truncate(text), 'not a file name');
  }
  if (enabled.has('url')) {
    if (URL_ONLY.test(text) || DOMAIN_ONLY.test(text)) return reject('boilerplate_url', truncate(text), 'not a URL or a domain');
    const rest = text.replace(URL_IN_TEXT, ' ').replace(DOMAIN_IN_TEXT, ' ');
    if (rest !== text && words(rest, item.lang).length <= config.maxContentWords) {
      return reject('boilerplate_url', truncate(text), 'not a URL or a domain', `at most ${config.maxContentWords} word(s) besides URLs and domains`);
    }
  }
  if (enabled.has('number') && NUMBER_ONLY.test(text) && DIGIT.test(text)) {
    return reject('boilerplate_number', truncate(text), 'not only digits and punctuation');
  }
  if (enabled.has('credit')) {
    const lead = CREDIT_LEAD.exec(text);
    const credited = lead !== null && words(lead[1]!, item.lang).length <= CREDIT_MAX_WORDS;
    if (credited || COPYRIGHT.test(text) || AGENCY_KEYS.has(key)) {
      return reject('boilerplate_credit', truncate(text), 'not only a photo credit');
    }
  }
  if (enabled.has('site_name') || enabled.has('page_title')) {
    const siteNames = new Set<string>();
    if (item.siteName !== undefined) {
      siteNames.add(comparisonKey(foldArabic(item.siteName)));
      for (const s of titleSegments(item.siteName)) siteNames.add(comparisonKey(foldArabic(s)));
    }
    if (item.site !== undefined) for (const h of hostForms(item.site)) siteNames.add(comparisonKey(h));
    let titleKey: string | undefined;
    if (item.pageTitle !== undefined) {
      const segments = titleSegments(item.pageTitle);
      titleKey = comparisonKey(foldArabic(item.pageTitle));
      if (segments.length > 1) {
        // The longest segment is the headline; the shorter ones name the site or the section.
        const longest = segments.reduce((a, b) => (b.length > a.length ? b : a));
        for (const s of segments) if (s !== longest) siteNames.add(comparisonKey(foldArabic(s)));
        const headline = comparisonKey(foldArabic(longest));
        if (enabled.has('page_title') && key === headline) {
          return reject('boilerplate_page_title', truncate(text), truncate(item.pageTitle), 'the headline of the page title');
        }
      }
    }
    siteNames.delete('');
    if (enabled.has('site_name')) {
      const named = siteNames.has(key) || (key.includes(' ') && [...siteNames].some((n) => ` ${n} `.includes(` ${key} `)));
      if (named) return reject('boilerplate_site_name', truncate(text), truncate(item.siteName ?? item.pageTitle ?? item.site ?? ''), 'the site name');
    }
    if (enabled.has('page_title') && titleKey !== undefined && key === titleKey) {
      return reject('boilerplate_page_title', truncate(text), truncate(item.pageTitle!), 'the page title');
    }
  }
  if (enabled.has('generic')) {
    const extra = config.extraWords[baseLanguage(item.lang)] ?? [];
    const a = analyzeGeneric(text, item.lang, extra);
    if (a.generic.length > 0 && a.content.length <= config.maxContentWords) {
      return reject('boilerplate_generic', a.content.length, config.maxContentWords, `generic: ${a.generic.join(', ')}; other words: ${a.content.join(', ') || 'none'}`);
    }
  }
  return keep();
}

export const boilerplateOperator: ItemOperator<TextItem, BoilerplateConfig> = {
  name: 'boilerplate',
  kind: 'text',
  scope: 'item',
  input: 'text',
  description: 'Rejects template code, TeX, URLs, file names, bare numbers, credits, site names, page titles and generic labels.',
  reasons: BOILERPLATE_CHECKS.map((c) => `boilerplate_${c}`),
  configSchema: boilerplateConfigSchema,
  defaultSources: {
    checks: 'the issue: file names, URLs, bare numbers, LaTeX, generic words, the page title or site name repeated',
    maxContentWords:
      'project choice: "<generic word> <one word>" is a label ("Facebook icon", "logo Novinky", "أيقونة بوابة"); two other words already describe something ("Фото из Инстаграма Лукаша Подольски")',
    extraWords: "the project's lists in this file for en ar cs hu ko ru sr th vi",
  },
  apply(item, config) {
    return detectBoilerplate(item, config);
  },
};
