/**
 * Phrase tables: the stand-in's caption template (caption.ts) written in each default language of the
 * project (ar, cs, hu, ko, ru, sr, th, vi; English too), so that a translation or a target-language
 * description from the stand-in is a real sentence in that language, which language identification
 * (eld, the filter stage's check) recognises. Numbers stay digits; the format name stays as sharp
 * names it. Serbian is written in Cyrillic by default; `sr-Latn` is the same text transliterated.
 */
import { captionSentencesEn } from './caption';
import type { Brightness, ColourName, Colourfulness, Detail, ImageFacts, Light, Orientation } from './image-facts';

export interface LanguagePhrases {
  /** The caption's sentences in this language. */
  sentences(facts: ImageFacts): string[];
  /** The sentence that quotes the page's native alt text (the fused kind). */
  altSentence(alt: string): string;
}

type Table<K extends string> = Record<K, string>;

/** "a, b <and> c" */
function list(items: string[], and: string): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} ${and} ${items[items.length - 1]}`;
}

const en: LanguagePhrases = {
  sentences: captionSentencesEn,
  altSentence: (alt) => `The page describes it as "${alt}".`,
};

// Russian: nouns after numerals agree with the last digits.
function ruPlural(n: number, one: string, few: string, many: string): string {
  const d = n % 10;
  const dd = n % 100;
  if (d === 1 && dd !== 11) return one;
  if (d >= 2 && d <= 4 && (dd < 12 || dd > 14)) return few;
  return many;
}
const RU = {
  orientation: {
    landscape: 'Горизонтальное изображение',
    portrait: 'Вертикальное изображение',
    square: 'Квадратное изображение',
    panoramic: 'Панорамное изображение',
    tall: 'Высокое узкое изображение',
  } satisfies Table<Orientation>,
  colour: {
    black: 'чёрный',
    white: 'белый',
    grey: 'серый',
    red: 'красный',
    orange: 'оранжевый',
    yellow: 'жёлтый',
    green: 'зелёный',
    blue: 'синий',
    purple: 'фиолетовый',
    pink: 'розовый',
    brown: 'коричневый',
  } satisfies Table<ColourName>,
  brightness: { dark: 'тёмное', medium: 'средней яркости', bright: 'светлое' } satisfies Table<Brightness>,
  colourfulness: { vivid: 'цвета насыщенные', muted: 'цвета приглушённые', greyscale: 'цвета почти нет' } satisfies Table<Colourfulness>,
  detail: {
    low: 'На нём мало мелких деталей.',
    moderate: 'На нём умеренное количество мелких деталей.',
    high: 'На нём много мелких деталей.',
  } satisfies Table<Detail>,
  light: {
    top: 'Верхняя часть светлее нижней.',
    bottom: 'Нижняя часть светлее верхней.',
    even: 'Освещение распределено равномерно сверху вниз.',
  } satisfies Table<Light>,
};
const ru: LanguagePhrases = {
  sentences: (f) => {
    const out = [
      `${RU.orientation[f.orientation]} размером ${f.width} × ${f.height} ${ruPlural(f.height, 'пиксель', 'пикселя', 'пикселей')} в формате ${f.format}.`,
    ];
    const colours = f.colours.map((c) => `${RU.colour[c.name]} (${c.percent} %)`);
    if (colours.length === 1) out.push(`Преобладающий цвет — ${colours[0]}.`);
    else if (colours.length > 1) out.push(`Преобладающие цвета — ${list(colours, 'и')}.`);
    out.push(`В целом изображение ${RU.brightness[f.brightness]}, ${RU.colourfulness[f.colourfulness]}.`);
    out.push(RU.detail[f.detail], RU.light[f.light]);
    out.push(f.transparentPercent === 0 ? 'Прозрачных областей нет.' : `Около ${f.transparentPercent} % изображения прозрачно.`);
    return out;
  },
  altSentence: (alt) => `На странице оно подписано так: «${alt}».`,
};

// Serbian (ekavian, Cyrillic). The genitive plural and the paucal of "пиксел" are both "пиксела".
const SR = {
  orientation: {
    landscape: 'Хоризонтална слика',
    portrait: 'Вертикална слика',
    square: 'Квадратна слика',
    panoramic: 'Панорамска слика',
    tall: 'Висока и уска слика',
  } satisfies Table<Orientation>,
  colour: {
    black: 'црна',
    white: 'бела',
    grey: 'сива',
    red: 'црвена',
    orange: 'наранџаста',
    yellow: 'жута',
    green: 'зелена',
    blue: 'плава',
    purple: 'љубичаста',
    pink: 'ружичаста',
    brown: 'смеђа',
  } satisfies Table<ColourName>,
  brightness: { dark: 'тамна', medium: 'средње осветљена', bright: 'светла' } satisfies Table<Brightness>,
  colourfulness: { vivid: 'са живим бојама', muted: 'са пригушеним бојама', greyscale: 'готово без боја' } satisfies Table<Colourfulness>,
  detail: {
    low: 'Садржи мало ситних детаља.',
    moderate: 'Садржи умерено много ситних детаља.',
    high: 'Садржи много ситних детаља.',
  } satisfies Table<Detail>,
  light: {
    top: 'Горњи део је светлији од доњег.',
    bottom: 'Доњи део је светлији од горњег.',
    even: 'Светлост је равномерно распоређена од врха до дна.',
  } satisfies Table<Light>,
};
const sr: LanguagePhrases = {
  sentences: (f) => {
    const pixels = f.height % 10 === 1 && f.height % 100 !== 11 ? 'пиксел' : 'пиксела';
    const out = [`${SR.orientation[f.orientation]} димензија ${f.width} × ${f.height} ${pixels}, у формату ${f.format}.`];
    const colours = f.colours.map((c) => `${SR.colour[c.name]} (${c.percent} %)`);
    if (colours.length === 1) out.push(`Преовлађујућа боја је ${colours[0]}.`);
    else if (colours.length > 1) out.push(`Преовлађујуће боје су ${list(colours, 'и')}.`);
    out.push(`Слика је у целини ${SR.brightness[f.brightness]}, ${SR.colourfulness[f.colourfulness]}.`);
    out.push(SR.detail[f.detail], SR.light[f.light]);
    out.push(f.transparentPercent === 0 ? 'Нема провидних делова.' : `Око ${f.transparentPercent} % слике је провидно.`);
    return out;
  },
  altSentence: (alt) => `Страница је описује овако: „${alt}“.`,
};

const SR_LATIN: Record<string, string> = {
  а: 'a', б: 'b', в: 'v', г: 'g', д: 'd', ђ: 'đ', е: 'e', ж: 'ž', з: 'z', и: 'i', ј: 'j', к: 'k', л: 'l', љ: 'lj',
  м: 'm', н: 'n', њ: 'nj', о: 'o', п: 'p', р: 'r', с: 's', т: 't', ћ: 'ć', у: 'u', ф: 'f', х: 'h', ц: 'c', ч: 'č',
  џ: 'dž', ш: 'š',
};
/** Serbian Cyrillic to Serbian Latin (the standard one-to-one correspondence; lj, nj, dž are digraphs). */
export function serbianToLatin(text: string): string {
  let out = '';
  for (const ch of text) {
    const lower = ch.toLowerCase();
    const latin = SR_LATIN[lower];
    if (latin === undefined) out += ch;
    else out += ch === lower ? latin : latin.charAt(0).toUpperCase() + latin.slice(1);
  }
  return out;
}
const srLatn: LanguagePhrases = {
  sentences: (f) => sr.sentences(f).map(serbianToLatin),
  altSentence: (alt) => `${serbianToLatin('Страница је описује овако:')} „${alt}“.`,
};

// Czech: the adjectives agree with "barva" (feminine).
function csPixels(n: number): string {
  return n === 1 ? 'pixel' : n >= 2 && n <= 4 ? 'pixely' : 'pixelů';
}
const CS = {
  orientation: {
    landscape: 'Obrázek na šířku',
    portrait: 'Obrázek na výšku',
    square: 'Čtvercový obrázek',
    panoramic: 'Panoramatický obrázek',
    tall: 'Vysoký a úzký obrázek',
  } satisfies Table<Orientation>,
  colour: {
    black: 'černá',
    white: 'bílá',
    grey: 'šedá',
    red: 'červená',
    orange: 'oranžová',
    yellow: 'žlutá',
    green: 'zelená',
    blue: 'modrá',
    purple: 'fialová',
    pink: 'růžová',
    brown: 'hnědá',
  } satisfies Table<ColourName>,
  brightness: { dark: 'tmavý', medium: 'středně jasný', bright: 'světlý' } satisfies Table<Brightness>,
  colourfulness: { vivid: 'má syté barvy', muted: 'má tlumené barvy', greyscale: 'je téměř bez barev' } satisfies Table<Colourfulness>,
  detail: {
    low: 'Obsahuje jen málo jemných detailů.',
    moderate: 'Obsahuje přiměřené množství jemných detailů.',
    high: 'Obsahuje mnoho jemných detailů.',
  } satisfies Table<Detail>,
  light: {
    top: 'Horní část je světlejší než dolní.',
    bottom: 'Dolní část je světlejší než horní.',
    even: 'Světlo je rozloženo rovnoměrně shora dolů.',
  } satisfies Table<Light>,
};
const cs: LanguagePhrases = {
  sentences: (f) => {
    const out = [`${CS.orientation[f.orientation]} o rozměrech ${f.width} × ${f.height} ${csPixels(f.height)} ve formátu ${f.format}.`];
    const colours = f.colours.map((c) => `${CS.colour[c.name]} (${c.percent} %)`);
    if (colours.length === 1) out.push(`Převládající barvou je ${colours[0]}.`);
    else if (colours.length > 1) out.push(`Převládající barvy jsou ${list(colours, 'a')}.`);
    out.push(`Celkově je obrázek ${CS.brightness[f.brightness]} a ${CS.colourfulness[f.colourfulness]}.`);
    out.push(CS.detail[f.detail], CS.light[f.light]);
    out.push(f.transparentPercent === 0 ? 'Nemá žádné průhledné oblasti.' : `Přibližně ${f.transparentPercent} % plochy obrázku je průhledných.`);
    return out;
  },
  altSentence: (alt) => `Stránka ho popisuje takto: „${alt}“.`,
};

// Hungarian: nouns after numerals stay singular.
const HU = {
  orientation: {
    landscape: 'Fekvő tájolású kép',
    portrait: 'Álló tájolású kép',
    square: 'Négyzet alakú kép',
    panoramic: 'Panorámakép',
    tall: 'Magas, keskeny kép',
  } satisfies Table<Orientation>,
  colour: {
    black: 'fekete',
    white: 'fehér',
    grey: 'szürke',
    red: 'piros',
    orange: 'narancssárga',
    yellow: 'sárga',
    green: 'zöld',
    blue: 'kék',
    purple: 'lila',
    pink: 'rózsaszín',
    brown: 'barna',
  } satisfies Table<ColourName>,
  brightness: { dark: 'sötét', medium: 'közepesen világos', bright: 'világos' } satisfies Table<Brightness>,
  colourfulness: { vivid: 'élénk színű', muted: 'tompa színű', greyscale: 'szinte színtelen' } satisfies Table<Colourfulness>,
  detail: {
    low: 'Kevés apró részletet tartalmaz.',
    moderate: 'Közepes mennyiségű apró részletet tartalmaz.',
    high: 'Sok apró részletet tartalmaz.',
  } satisfies Table<Detail>,
  light: {
    top: 'A felső része világosabb, mint az alsó.',
    bottom: 'Az alsó része világosabb, mint a felső.',
    even: 'A fény fentről lefelé egyenletesen oszlik el.',
  } satisfies Table<Light>,
};
const hu: LanguagePhrases = {
  sentences: (f) => {
    const out = [`${HU.orientation[f.orientation]}, mérete ${f.width} × ${f.height} képpont, ${f.format} formátumban.`];
    const colours = f.colours.map((c) => `${HU.colour[c.name]} (${c.percent}%)`);
    if (colours.length === 1) out.push(`A kép uralkodó színe: ${colours[0]}.`);
    else if (colours.length > 1) out.push(`A kép uralkodó színei: ${list(colours, 'és')}.`);
    out.push(`Összességében a kép ${HU.brightness[f.brightness]} és ${HU.colourfulness[f.colourfulness]}.`);
    out.push(HU.detail[f.detail], HU.light[f.light]);
    out.push(f.transparentPercent === 0 ? 'Nincsenek átlátszó területei.' : `A kép körülbelül ${f.transparentPercent}%-a átlátszó.`);
    return out;
  },
  altSentence: (alt) => `Az oldal így írja le: „${alt}”.`,
};

const KO = {
  orientation: {
    landscape: '가로형 이미지',
    portrait: '세로형 이미지',
    square: '정사각형 이미지',
    panoramic: '파노라마 이미지',
    tall: '좁고 긴 세로 이미지',
  } satisfies Table<Orientation>,
  colour: {
    black: '검은색',
    white: '흰색',
    grey: '회색',
    red: '빨간색',
    orange: '주황색',
    yellow: '노란색',
    green: '초록색',
    blue: '파란색',
    purple: '보라색',
    pink: '분홍색',
    brown: '갈색',
  } satisfies Table<ColourName>,
  brightness: { dark: '어둡고', medium: '밝기가 중간 정도이고', bright: '밝고' } satisfies Table<Brightness>,
  colourfulness: { vivid: '색이 선명합니다', muted: '색이 차분합니다', greyscale: '색이 거의 없습니다' } satisfies Table<Colourfulness>,
  detail: {
    low: '작은 세부 요소가 적습니다.',
    moderate: '작은 세부 요소가 적당히 있습니다.',
    high: '작은 세부 요소가 많습니다.',
  } satisfies Table<Detail>,
  light: {
    top: '위쪽이 아래쪽보다 밝습니다.',
    bottom: '아래쪽이 위쪽보다 밝습니다.',
    even: '빛이 위에서 아래까지 고르게 퍼져 있습니다.',
  } satisfies Table<Light>,
};
const ko: LanguagePhrases = {
  sentences: (f) => {
    const out = [`${f.width}×${f.height} 픽셀 크기의 ${f.format} 형식 ${KO.orientation[f.orientation]}입니다.`];
    const colours = f.colours.map((c) => `${KO.colour[c.name]}(${c.percent}%)`);
    if (colours.length > 0) out.push(`주요 색상은 ${colours.join(', ')}입니다.`);
    out.push(`전체적으로 ${KO.brightness[f.brightness]} ${KO.colourfulness[f.colourfulness]}.`);
    out.push(KO.detail[f.detail], KO.light[f.light]);
    out.push(f.transparentPercent === 0 ? '투명한 영역은 없습니다.' : `이미지의 약 ${f.transparentPercent}%가 투명합니다.`);
    return out;
  },
  altSentence: (alt) => `웹페이지에서는 이 이미지를 “${alt}”(이)라고 설명합니다.`,
};

// Thai: no full stops; a space ends a sentence.
const TH = {
  orientation: {
    landscape: 'ภาพแนวนอน',
    portrait: 'ภาพแนวตั้ง',
    square: 'ภาพสี่เหลี่ยมจัตุรัส',
    panoramic: 'ภาพพาโนรามา',
    tall: 'ภาพแนวตั้งที่สูงและแคบ',
  } satisfies Table<Orientation>,
  colour: {
    black: 'สีดำ',
    white: 'สีขาว',
    grey: 'สีเทา',
    red: 'สีแดง',
    orange: 'สีส้ม',
    yellow: 'สีเหลือง',
    green: 'สีเขียว',
    blue: 'สีน้ำเงิน',
    purple: 'สีม่วง',
    pink: 'สีชมพู',
    brown: 'สีน้ำตาล',
  } satisfies Table<ColourName>,
  brightness: { dark: 'ค่อนข้างมืด', medium: 'มีความสว่างปานกลาง', bright: 'สว่าง' } satisfies Table<Brightness>,
  colourfulness: { vivid: 'มีสีสันสดใส', muted: 'มีสีค่อนข้างหม่น', greyscale: 'แทบไม่มีสีสัน' } satisfies Table<Colourfulness>,
  detail: {
    low: 'มีรายละเอียดเล็ก ๆ เพียงเล็กน้อย',
    moderate: 'มีรายละเอียดเล็ก ๆ ในระดับปานกลาง',
    high: 'มีรายละเอียดเล็ก ๆ จำนวนมาก',
  } satisfies Table<Detail>,
  light: {
    top: 'ส่วนบนของภาพสว่างกว่าส่วนล่าง',
    bottom: 'ส่วนล่างของภาพสว่างกว่าส่วนบน',
    even: 'แสงกระจายอย่างสม่ำเสมอจากด้านบนลงด้านล่าง',
  } satisfies Table<Light>,
};
const th: LanguagePhrases = {
  sentences: (f) => {
    const out = [`${TH.orientation[f.orientation]}ขนาด ${f.width} × ${f.height} พิกเซล ในรูปแบบ ${f.format}`];
    const colours = f.colours.map((c) => `${TH.colour[c.name]} (${c.percent}%)`);
    if (colours.length > 0) out.push(`สีหลักของภาพคือ${colours.length === 1 ? colours[0] : `${colours.slice(0, -1).join(' ')} และ${colours[colours.length - 1]}`}`);
    out.push(`โดยรวมแล้วภาพนี้${TH.brightness[f.brightness]}และ${TH.colourfulness[f.colourfulness]}`);
    out.push(TH.detail[f.detail], TH.light[f.light]);
    out.push(f.transparentPercent === 0 ? 'ภาพนี้ไม่มีพื้นที่โปร่งใส' : `ประมาณ ${f.transparentPercent}% ของภาพเป็นพื้นที่โปร่งใส`);
    return out;
  },
  altSentence: (alt) => `หน้าเว็บบรรยายภาพนี้ว่า “${alt}”`,
};

const VI = {
  orientation: {
    landscape: 'Ảnh ngang',
    portrait: 'Ảnh dọc',
    square: 'Ảnh vuông',
    panoramic: 'Ảnh toàn cảnh',
    tall: 'Ảnh dọc cao và hẹp',
  } satisfies Table<Orientation>,
  colour: {
    black: 'đen',
    white: 'trắng',
    grey: 'xám',
    red: 'đỏ',
    orange: 'cam',
    yellow: 'vàng',
    green: 'xanh lá cây',
    blue: 'xanh dương',
    purple: 'tím',
    pink: 'hồng',
    brown: 'nâu',
  } satisfies Table<ColourName>,
  brightness: { dark: 'tối', medium: 'có độ sáng trung bình', bright: 'sáng' } satisfies Table<Brightness>,
  colourfulness: { vivid: 'có màu sắc rực rỡ', muted: 'có màu sắc dịu', greyscale: 'gần như không có màu' } satisfies Table<Colourfulness>,
  detail: {
    low: 'Ảnh có ít chi tiết nhỏ.',
    moderate: 'Ảnh có một lượng chi tiết nhỏ vừa phải.',
    high: 'Ảnh có rất nhiều chi tiết nhỏ.',
  } satisfies Table<Detail>,
  light: {
    top: 'Phần trên sáng hơn phần dưới.',
    bottom: 'Phần dưới sáng hơn phần trên.',
    even: 'Ánh sáng phân bố đều từ trên xuống dưới.',
  } satisfies Table<Light>,
};
const vi: LanguagePhrases = {
  sentences: (f) => {
    const out = [`${VI.orientation[f.orientation]}, kích thước ${f.width} × ${f.height} điểm ảnh, định dạng ${f.format}.`];
    const colours = f.colours.map((c) => `${VI.colour[c.name]} (${c.percent}%)`);
    if (colours.length === 1) out.push(`Màu chủ đạo là ${colours[0]}.`);
    else if (colours.length > 1) out.push(`Các màu chủ đạo là ${list(colours, 'và')}.`);
    out.push(`Nhìn chung, bức ảnh ${VI.brightness[f.brightness]} và ${VI.colourfulness[f.colourfulness]}.`);
    out.push(VI.detail[f.detail], VI.light[f.light]);
    out.push(f.transparentPercent === 0 ? 'Ảnh không có vùng trong suốt.' : `Khoảng ${f.transparentPercent}% diện tích ảnh là trong suốt.`);
    return out;
  },
  altSentence: (alt) => `Trang web mô tả ảnh này là “${alt}”.`,
};

// Arabic: every item of a list takes the conjunction "و".
const AR = {
  orientation: {
    landscape: 'صورة أفقية',
    portrait: 'صورة عمودية',
    square: 'صورة مربعة',
    panoramic: 'صورة بانورامية',
    tall: 'صورة طويلة وضيقة',
  } satisfies Table<Orientation>,
  colour: {
    black: 'الأسود',
    white: 'الأبيض',
    grey: 'الرمادي',
    red: 'الأحمر',
    orange: 'البرتقالي',
    yellow: 'الأصفر',
    green: 'الأخضر',
    blue: 'الأزرق',
    purple: 'البنفسجي',
    pink: 'الوردي',
    brown: 'البني',
  } satisfies Table<ColourName>,
  brightness: { dark: 'داكنة', medium: 'متوسطة السطوع', bright: 'مشرقة' } satisfies Table<Brightness>,
  colourfulness: { vivid: 'وألوانها زاهية', muted: 'وألوانها هادئة', greyscale: 'وتكاد تخلو من الألوان' } satisfies Table<Colourfulness>,
  detail: {
    low: 'تحتوي الصورة على القليل من التفاصيل الدقيقة.',
    moderate: 'تحتوي الصورة على قدر معتدل من التفاصيل الدقيقة.',
    high: 'تحتوي الصورة على الكثير من التفاصيل الدقيقة.',
  } satisfies Table<Detail>,
  light: {
    top: 'الجزء العلوي أكثر إشراقًا من الجزء السفلي.',
    bottom: 'الجزء السفلي أكثر إشراقًا من الجزء العلوي.',
    even: 'الإضاءة موزعة بالتساوي من الأعلى إلى الأسفل.',
  } satisfies Table<Light>,
};
const ar: LanguagePhrases = {
  sentences: (f) => {
    const out = [`${AR.orientation[f.orientation]} بأبعاد ${f.width} × ${f.height} بكسل، بصيغة ${f.format}.`];
    const colours = f.colours.map((c) => `${AR.colour[c.name]} (${c.percent}%)`);
    if (colours.length === 1) out.push(`اللون السائد هو ${colours[0]}.`);
    else if (colours.length > 1) out.push(`الألوان السائدة هي ${colours.join(' و')}.`);
    out.push(`تبدو الصورة عمومًا ${AR.brightness[f.brightness]} ${AR.colourfulness[f.colourfulness]}.`);
    out.push(AR.detail[f.detail], AR.light[f.light]);
    out.push(f.transparentPercent === 0 ? 'لا توجد فيها مناطق شفافة.' : `نحو ${f.transparentPercent}% من الصورة شفاف.`);
    return out;
  },
  altSentence: (alt) => `تصف الصفحة هذه الصورة بأنها: «${alt}».`,
};

/** Phrase tables by rendering key: a base language, or "sr-Latn". */
const TABLES: Record<string, LanguagePhrases> = { en, ar, cs, hu, ko, ru, sr, 'sr-Latn': srLatn, th, vi };

/** The languages the stand-in renders for real (everything else gets a pseudo-translation). */
export const RENDERED_LANGUAGES = Object.keys(TABLES);

/**
 * The phrase table for a BCP-47 code: its base language, except that Serbian in Latin script
 * ("sr-Latn", "sr-Latn-RS") has its own. Regions are ignored ("vi-VN" is "vi").
 */
export function phrasesFor(lang: string): LanguagePhrases | undefined {
  const subtags = lang.split(/[-_]/);
  const base = (subtags[0] ?? '').toLowerCase();
  const script = subtags.slice(1).find((s) => /^[A-Za-z]{4}$/.test(s));
  if (base === 'sr' && script !== undefined && script.toLowerCase() === 'latn') return srLatn;
  if (script !== undefined && base !== 'sr' && !(base === 'en' && script.toLowerCase() === 'latn')) {
    // A script the table is not written in (e.g. "ru-Latn"): no real rendering.
    const natural: Record<string, string> = { ar: 'arab', cs: 'latn', hu: 'latn', ko: 'kore', ru: 'cyrl', th: 'thai', vi: 'latn' };
    const s = script.toLowerCase();
    if (natural[base] !== s && !(base === 'ko' && s === 'hang')) return undefined;
  }
  if (base === 'sr' && script !== undefined && script.toLowerCase() !== 'cyrl') return undefined;
  return TABLES[base];
}

/** The caption for `facts` in the language of `phrases`. */
export function render(phrases: LanguagePhrases, facts: ImageFacts, alt?: string): string {
  const sentences = phrases.sentences(facts);
  return (alt === undefined ? sentences : [phrases.altSentence(alt), ...sentences]).join(' ');
}
