/**
 * Function words (and, for keyword extraction, stop words) per language. Written for this project (not
 * taken from any other list): closed-class words — articles, pronouns, prepositions, conjunctions,
 * particles, auxiliaries and the most frequent adverbs — of the paper's eight languages plus English, Chinese and Japanese.
 *
 * Two uses:
 * - METEOR weighs matches of content words (δ) above those of function words (1 − δ). Meteor 1.5 derives
 *   its English list from word frequencies in news text; {@link FUNCTION_WORDS}`.en` approximates that
 *   list (so, like Meteor's, it leaves out words that are rare in news, such as second-person pronouns).
 *   Punctuation tokens are function words in every language (see `isFunctionToken` in meteor.ts).
 * - Keyword accuracy drops stop words: {@link stopWords} = function words ∪ a few extra frequent
 *   non-content words per language.
 *
 * Every entry is lowercase NFC, matching the tokens of `wordTokens`.
 */

const list = (s: string): ReadonlySet<string> => new Set(s.trim().split(/\s+/).map((w) => w.normalize('NFC')));

export const FUNCTION_WORDS: Readonly<Record<string, ReadonlySet<string>>> = {
  en: list(`
    a an the this that these those which who whom whose what where when why how there here
    i me my we us our he him his she her it its they them their
    is am are was were be been being has have had do does did will would shall should can could may might must
    of in on at by for with from to into onto over under about above below between through during before after
    against among across along around up down out off upon within without than
    and or but nor so yet if then because as while although though whether
    not no all any both each either neither every some such only other another more most much many few
    one two also just very too again once now
  `),
  ar: list(`
    في من إلى الى على عن مع عند بين حتى منذ بعد قبل فوق تحت حول خلال ضد لدى
    هذا هذه ذلك تلك هؤلاء الذي التي الذين اللذان اللتان ما ماذا من متى أين كيف لماذا
    هو هي هم هن هما أنا نحن أنت أنتم
    و أو ثم لكن بل إن أن إذا لو لا لم لن ليس قد كان كانت يكون تكون كانوا
    كل بعض غير أي ذات كما أيضا أيضاً فقط جدا جداً
  `),
  cs: list(`
    a i v ve na se si je jsou byl byla bylo byli být bude budou jsem jsme jste
    to ten ta ty tento tato toto tyto ten tím těch tom
    z ze do o od po pro při s se k ke u za před nad pod mezi bez přes kolem podle
    jako že ale nebo ani aby kdyby když protože však tak také jen už ještě
    který která které kteří jeho její jejich jim mu ho jí něj ní on ona ono oni my vy já ty
    není nebyl co kdo kde kdy jak proč
  `),
  hu: list(`
    a az egy és is hogy nem de ha van volt lesz vannak voltak
    ez az ezt azt ezek azok itt ott mint vagy pedig sem mert ami amely aki amit akkor így úgy
    el fel ki be le meg már csak még után alatt között mellett előtt felett által
    én te ő mi ti ők nagyon
  `),
  ko: list(`
    이 그 저 것 수 등 및 또 또는 그리고 하지만 그러나 그래서 따라서
    있는 있다 없다 없는 하는 한 하다 된 되는 되다 이다 아니다
    이런 그런 저런 위 중 때 더 잘 안 못 매우 아주
  `),
  ru: list(`
    и в во на с со к ко у о об обо от до из за по при для без под над через между про перед
    а но или да же ли не ни бы то это этот эта эти тот та те
    что как где когда который которая которые которое
    он она оно они его её ее их ему ей им ним ней них я ты мы вы
    был была было были быть есть будет также уже ещё еще очень все всё весь вся
  `),
  sr: list(`
    и у на са за од до из о по код кроз пре после између испод изнад
    је су био била било били бити да не ни али или а то тај та те овај ова ово
    који која које што као се га му јој их ће би већ још само врло
    i u na sa za od do iz o po kod kroz pre posle između ispod iznad
    je su bio bila bilo bili biti da ne ni ali ili a to taj ta te ovaj ova ovo
    koji koja koje što kao se ga mu joj ih će bi već još samo vrlo
  `),
  th: list(`
    และ ที่ ของ ใน เป็น มี การ ได้ ให้ ไป มา จะ ไม่ ว่า กับ จาก โดย แต่ หรือ ซึ่ง นี้ นั้น
    อยู่ ก็ คือ ความ เพื่อ แล้ว ทั้ง อย่าง ยัง ถึง เมื่อ ต่อ หนึ่ง บน ใต้ ข้าง
  `),
  vi: list(`
    và của là có được trong cho với các những một này đó khi thì mà để từ tại trên dưới
    theo về ra vào đã đang sẽ không cũng như nhưng hay hoặc rất nhiều bị bởi ở
  `),
  zh: list(`
    的 了 是 在 和 与 及 也 都 就 而 或 这 那 这个 那个 一个 有 我 你 他 她 它 们 我们 他们 之 其 为 被 把 从 到 对 中 上 下 着 过 很
  `),
  ja: list(`
    の に は を が で と も へ や か から まで より です ます でした した する して いる ある こと もの この その あの これ それ あれ
  `),
};

/** Extra stop words for keyword extraction: frequent words that are not function words but carry no content. */
const EXTRA_STOP_WORDS: Readonly<Record<string, ReadonlySet<string>>> = {
  en: list(`you your yours image picture photo photograph shows showing shown`),
  ar: list(`صورة`),
  cs: list(`obrázek fotografie foto`),
  hu: list(`kép fotó fénykép`),
  ko: list(`사진 이미지`),
  ru: list(`фото фотография изображение`),
  sr: list(`слика фотографија slika fotografija`),
  th: list(`ภาพ รูป รูปภาพ`),
  vi: list(`ảnh hình`),
};

const EMPTY: ReadonlySet<string> = new Set();

/** The language's primary subtag, lowercase (`sr-Latn` → `sr`). */
export function primaryLanguage(lang: string): string {
  return (lang.toLowerCase().split(/[-_]/)[0] ?? '').trim();
}

/** Function words of a language (empty set for a language without a list). */
export function functionWords(lang: string): ReadonlySet<string> {
  return FUNCTION_WORDS[primaryLanguage(lang)] ?? EMPTY;
}

/** Stop words for keyword extraction: function words ∪ extra stop words. */
export function stopWords(lang: string): ReadonlySet<string> {
  const p = primaryLanguage(lang);
  return new Set([...(FUNCTION_WORDS[p] ?? EMPTY), ...(EXTRA_STOP_WORDS[p] ?? EMPTY)]);
}
