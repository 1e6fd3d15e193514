"""What a prompt is missing, by media type, and rewrites that fill it (`POST
/v1/suggestions/improve`). Pure: no I/O.

An aspect is found when one of its cue words or phrases (English and Arabic, compared after
`text.tokens` normalisation) occurs in the prompt; speech and design prompts are checked by
their shape instead (punctuation, sentence length, digits, the headline's length). Messages
and fillers are in the request's language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from gateway.suggestions.text import contains_phrase, tokens

Lang = str

#: The aspects checked per media type, in the order they are reported.
ASPECTS: Final[Mapping[str, tuple[str, ...]]] = {
    "image": ("subject", "style", "lighting", "composition", "colour"),
    "video": ("subject", "style", "lighting", "composition", "colour", "camera_motion",
              "pacing"),
    "model_3d": ("subject", "style", "material"),
    "audio": ("end_punctuation", "long_sentence", "spell_out"),
    "design": ("headline_length", "call_to_action"),
}

#: Style words (a canonical key and how it is written in English and Arabic); also the
#: vocabulary of `GET /v1/suggestions/trends`' `styles`.
STYLES: Final[Mapping[str, tuple[str, ...]]] = {
    "photorealistic": ("photorealistic", "photo", "photograph", "photography", "realistic",
                       "واقعي", "واقعيه", "فوتوغرافي", "فوتوغرافيه", "تصوير"),
    "cinematic": ("cinematic", "film still", "movie", "سينمائي", "سينمائيه"),
    "oil_painting": ("oil painting", "oil", "لوحه زيتيه", "زيتيه"),
    "watercolour": ("watercolour", "watercolor", "الوان مائيه", "مائيه"),
    "illustration": ("illustration", "flat illustration", "drawing", "sketch", "رسم",
                     "رسم مسطح", "رسمه", "اسكتش"),
    "anime": ("anime", "manga", "انمي", "مانغا"),
    "pixel_art": ("pixel art", "pixel", "فن البكسل", "بكسل"),
    "3d_render": ("3d render", "render", "isometric", "low poly", "تصيير", "متساوي القياس",
                  "منخفض المضلعات"),
    "minimalist": ("minimalist", "minimal", "simple", "بسيط", "مبسط", "بسيطه"),
    "impressionist": ("impressionist", "impressionism", "انطباعيه", "انطباعي"),
    "cyberpunk": ("cyberpunk", "synthwave", "سايبربانك", "سينثويف"),
    "vintage": ("vintage", "retro", "1970s", "classic", "قديم", "كلاسيكي", "كلاسيكيه",
                "عتيق"),
    "fantasy": ("fantasy", "concept art", "surreal", "خيالي", "خياليه", "سريالي"),
    "cartoon": ("cartoon", "stylised", "stylized", "toy", "كرتوني", "كرتونيه"),
}

_CUES: Final[Mapping[str, tuple[str, ...]]] = {
    "lighting": ("light", "lighting", "lit", "backlight", "backlit", "sunlight", "sunrise",
                 "sunset", "dusk", "dawn", "golden hour", "neon", "lamplight", "moonlight",
                 "shadow", "glow", "glowing", "volumetric", "overcast", "night",
                 "ضوء", "اضاءه", "ضوء الشمس", "شروق", "غروب", "غسق", "فجر", "الساعه الذهبيه",
                 "نيون", "ظلال", "ظل", "توهج", "متوهجه", "ليل", "ليلا", "غائمه", "مضاءه"),
    "composition": ("close", "closeup", "portrait", "wide", "shot", "angle", "aerial",
                    "overhead", "top down", "panoramic", "centred", "centered", "framing",
                    "rule of third", "symmetrical", "macro", "establishing", "view",
                    "مقربه", "لقطه", "زاويه", "جوي", "من الاعلي", "بانوراميه", "متمركز",
                    "تكوين", "ماكرو", "منظر", "قاعده الاثلاث", "واسعه"),
    "colour": ("colour", "colours", "color", "colors", "palette", "tone", "pastel", "muted",
               "vivid", "warm", "cool", "mood", "moody", "calm", "dreamy", "red", "blue",
               "green", "gold", "golden", "pink", "purple", "black", "white", "orange",
               "الوان", "لون", "درجات", "باستيل", "دافئ", "دافئه", "بارده", "زاهيه", "هادئه",
               "اجواء", "حالمه", "احمر", "حمراء", "ازرق", "زرقاء", "اخضر", "خضراء", "ذهبي",
               "ورديه", "بنفسجي", "اسود", "ابيض", "برتقالي"),
    "camera_motion": ("pan", "panning", "tilt", "dolly", "tracking", "track", "zoom",
                      "orbit", "drone", "crane", "handheld", "push in", "pull back",
                      "following camera", "static", "gliding",
                      "تحريك", "تتبع", "تكبير", "دوران", "طائره مسيره", "رافعه",
                      "محموله باليد", "اقتراب", "ثابته", "الكاميرا", "تنساب"),
    "pacing": ("slow", "slow motion", "fast", "time lapse", "timelapse", "cuts", "pace",
               "pacing", "rhythm", "hypnotic", "steady", "second", "seconds", "calm",
               "بطيء", "بطيئه", "حركه بطيئه", "سريع", "سريعه", "تسريع زمني", "قطعات",
               "ايقاع", "ثانيه", "ثوان", "هادئه"),
    "material": ("wood", "wooden", "metal", "steel", "brass", "glass", "ceramic", "stone",
                 "marble", "plastic", "leather", "velvet", "fabric", "glaze", "pbr",
                 "texture", "textures", "matte", "glossy", "aluminium",
                 "خشب", "خشبي", "معدن", "معدنيه", "نحاس", "نحاسي", "نحاسيه", "زجاج",
                 "خزفي", "حجر", "حجري", "رخام", "بلاستيك", "جلد", "مخمل", "قماش", "خامات",
                 "مطفا", "لامع"),
    "call_to_action": ("buy", "shop", "order", "book", "join", "register", "sign up",
                       "subscribe", "download", "call", "visit", "apply", "reserve",
                       "learn more", "get", "try", "save your spot", "call to action",
                       "اشتر", "تسوق", "اطلب", "احجز", "انضم", "سجل", "اشترك", "حمل",
                       "اتصل", "زورونا", "زر", "قدم", "جرب", "اكتشف", "دعوه للاجراء"),
}

_MESSAGES: Final[Mapping[Lang, Mapping[str, str]]] = {
    "en": {
        "subject": "Say who or what the picture is about, with a detail or two.",
        "style": "Name a style or medium (photorealistic, watercolour, 3D render, ...).",
        "lighting": "Describe the light (golden hour, soft window light, neon, ...).",
        "composition": "Choose a framing (close-up, wide shot, aerial view, ...).",
        "colour": "Give a colour palette or mood (warm, pastel, moody blues, ...).",
        "camera_motion": "Say how the camera moves (slow pan, tracking shot, drone "
                         "orbit, ...).",
        "pacing": "Set the pace (slow motion, time-lapse, fast cuts, ...).",
        "material": "Name the materials and surface (wood, brushed metal, glossy "
                    "plastic, ...).",
        "end_punctuation": "End the text with punctuation so the voice finishes the "
                           "sentence naturally.",
        "long_sentence": "Break long sentences with commas or full stops so the voice can "
                         "pause.",
        "spell_out": "Spell out numbers and abbreviations the way they should be read.",
        "headline_length": "Keep the headline short: at most 8 words.",
        "call_to_action": "Add a call to action (Shop now, Book your seat, ...).",
    },
    "ar": {
        "subject": "حدّد موضوع الصورة بوضوح مع تفصيل أو اثنين.",
        "style": "اذكر أسلوبًا أو خامة فنية (واقعي، ألوان مائية، تصيير ثلاثي الأبعاد...).",
        "lighting": "صِف الإضاءة (الساعة الذهبية، ضوء نافذة ناعم، نيون...).",
        "composition": "اختر التكوين (لقطة مقرّبة، لقطة واسعة، منظر جوي...).",
        "colour": "حدّد لوحة الألوان أو الأجواء (دافئة، باستيل، زرقاء حالمة...).",
        "camera_motion": "صِف حركة الكاميرا (تحريك بطيء، لقطة تتبّع، دوران بطائرة "
                         "مسيّرة...).",
        "pacing": "حدّد الإيقاع (حركة بطيئة، تسريع زمني، قطعات سريعة...).",
        "material": "اذكر الخامات والأسطح (خشب، معدن مصقول، بلاستيك لامع...).",
        "end_punctuation": "اختم النص بعلامة ترقيم لينهي الصوت الجملة بشكل طبيعي.",
        "long_sentence": "قسّم الجمل الطويلة بفواصل أو نقاط ليتوقف الصوت عندها.",
        "spell_out": "اكتب الأرقام والاختصارات بالحروف كما يجب أن تُنطق.",
        "headline_length": "اجعل العنوان قصيرًا: ثماني كلمات على الأكثر.",
        "call_to_action": "أضف دعوة للإجراء (تسوّق الآن، احجز مقعدك...).",
    },
}

#: What each variant appends for a missing aspect (variant i takes the i-th option).
_FILLERS: Final[Mapping[Lang, Mapping[str, tuple[str, str, str]]]] = {
    "en": {
        "style": ("photorealistic", "watercolour illustration", "cinematic still"),
        "lighting": ("golden hour light", "soft diffused light", "dramatic rim lighting"),
        "composition": ("wide shot", "close-up", "low angle"),
        "colour": ("warm earthy palette", "pastel colours", "moody blue tones"),
        "camera_motion": ("slow dolly in", "smooth tracking shot", "aerial drone orbit"),
        "pacing": ("calm, slow pace", "gentle slow motion", "energetic quick cuts"),
        "material": ("realistic PBR materials", "hand-painted textures",
                     "brushed metal and wood"),
        "subject": ("in sharp detail", "as the clear focal point", "with one striking "
                                                                     "detail"),
        "call_to_action": ("Call to action: Shop now", "Call to action: Book today",
                           "Call to action: Learn more"),
    },
    "ar": {
        "style": ("واقعي كالصورة الفوتوغرافية", "رسم بالألوان المائية", "لقطة سينمائية"),
        "lighting": ("ضوء الساعة الذهبية", "ضوء ناعم منتشر", "إضاءة حافية درامية"),
        "composition": ("لقطة واسعة", "لقطة مقرّبة", "زاوية منخفضة"),
        "colour": ("ألوان ترابية دافئة", "ألوان باستيل", "درجات زرقاء حالمة"),
        "camera_motion": ("اقتراب بطيء للكاميرا", "لقطة تتبّع سلسة",
                          "دوران جوي بطائرة مسيّرة"),
        "pacing": ("إيقاع هادئ بطيء", "حركة بطيئة ناعمة", "قطعات سريعة حيوية"),
        "material": ("خامات PBR واقعية", "خامات مرسومة يدويًا", "معدن مصقول وخشب"),
        "subject": ("بتفاصيل واضحة", "كنقطة تركيز واضحة", "مع تفصيل لافت"),
        "call_to_action": ("دعوة للإجراء: تسوّق الآن", "دعوة للإجراء: احجز اليوم",
                           "دعوة للإجراء: اعرف المزيد"),
    },
}

#: Fillers that differ for one media type (a 3D model is not a watercolour).
_TYPE_FILLERS: Final[Mapping[tuple[str, Lang], Mapping[str, tuple[str, str, str]]]] = {
    ("model_3d", "en"): {"style": ("stylised low-poly", "realistic, game-ready",
                                   "cartoon toy style")},
    ("model_3d", "ar"): {"style": ("منخفض المضلّعات بأسلوب مبسّط", "واقعي جاهز للألعاب",
                                   "أسلوب كرتوني كالألعاب")},
}

#: A sentence longer than this many words without a comma is hard to voice.
LONG_SENTENCE_WORDS: Final = 20
HEADLINE_WORDS: Final = 8
#: Fewer meaningful words than this, and the subject is too thin to picture.
SUBJECT_WORDS: Final = 3
_END_PUNCTUATION: Final = (".", "!", "?", "…", "؟", "।", "\"", "”", "»", ")")
_SENTENCE: Final = re.compile(r"[^.!?؟…]+[.!?؟…]*")
_DIGITS: Final = re.compile(r"[0-9\u0660-\u0669]+")
_ABBREVIATION: Final = re.compile(r"\b(?:[A-Z]{2,5}|Dr|Mr|Mrs|Ms|St|etc|e\.g|i\.e|approx)\b\.?")
_HEADLINE: Final = re.compile(r"(?:headline|title|العنوان)\s*[:：]\s*([^.\n]+)", re.IGNORECASE)

_ABBREVIATIONS_EN: Final = {"Dr": "Doctor", "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz",
                            "St": "Street", "etc": "et cetera", "e.g": "for example",
                            "i.e": "that is", "approx": "approximately"}
_ONES: Final = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                "sixteen", "seventeen", "eighteen", "nineteen")
_TENS: Final = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                "ninety")


class Missing(msgspec.Struct, kw_only=True):
    aspect: str
    message: str


class Variant(msgspec.Struct, kw_only=True):
    text: str
    #: `rules` (rewritten here) or `model` (the tenant's text model).
    source: str = "rules"


class Improvement(msgspec.Struct, kw_only=True):
    missing: list[Missing]
    variants: list[Variant]
    #: Set when the tenant's model was asked and failed (its error code); absent otherwise.
    model_error: str | None = None


def has_cue(words: Sequence[str], cues: Sequence[str]) -> bool:
    """Whether any cue (a word or phrase) occurs in `words` (tokens)."""
    return any(contains_phrase(words, tokens(cue)) for cue in cues)


def styles_in(prompt: str) -> list[str]:
    """The canonical `STYLES` keys whose words occur in `prompt`."""
    words = tokens(prompt)
    return [key for key, cues in STYLES.items() if has_cue(words, cues)]


def english_number(value: int) -> str:
    """`value` (0..999,999) in English words; larger numbers digit by digit."""
    if value < 20:
        return _ONES[value]
    if value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if value < 1000:
        hundreds, rest = divmod(value, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {english_number(rest)}" if rest else "")
    if value < 1_000_000:
        thousands, rest = divmod(value, 1000)
        joiner = " and " if 0 < rest < 100 else " "
        return f"{english_number(thousands)} thousand" + (
            f"{joiner}{english_number(rest)}" if rest else "")
    return " ".join(_ONES[int(d)] for d in str(value))


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def _long_sentences(text: str) -> list[str]:
    return [s for s in _sentences(text)
            if len(s.split()) > LONG_SENTENCE_WORDS and "," not in s and "،" not in s]


def _headline(prompt: str) -> str:
    found = _HEADLINE.search(prompt)
    if found:
        return found[1].strip()
    first = _sentences(prompt)
    return first[0] if first else prompt


def missing_aspects(media_type: str, prompt: str) -> list[str]:
    """The aspects of `media_type` that `prompt` lacks, in `ASPECTS` order."""
    words = tokens(prompt)
    text = prompt.strip()
    found: list[str] = []
    for aspect in ASPECTS.get(media_type, ()):
        if aspect == "subject":
            lacking = len(words) < SUBJECT_WORDS
        elif aspect == "style":
            lacking = not styles_in(prompt)
        elif aspect == "end_punctuation":
            lacking = bool(text) and not text.endswith(_END_PUNCTUATION)
        elif aspect == "long_sentence":
            lacking = bool(_long_sentences(text))
        elif aspect == "spell_out":
            lacking = bool(_DIGITS.search(text) or _ABBREVIATION.search(text))
        elif aspect == "headline_length":
            lacking = len(_headline(text).split()) > HEADLINE_WORDS
        else:
            lacking = not has_cue(words, _CUES[aspect])
        if lacking:
            found.append(aspect)
    return found


def _spelled(text: str, lang: Lang) -> str:
    if lang == "en":
        text = _DIGITS.sub(lambda m: english_number(int(m[0])) if len(m[0]) <= 6 else m[0],
                           text)
        text = re.sub(r"\b(Dr|Mr|Mrs|Ms|St|etc|e\.g|i\.e|approx)\b\.?",
                      lambda m: _ABBREVIATIONS_EN[m[1]], text)
    return text


def _break_long(sentence: str, lang: Lang) -> str:
    """`sentence` split in two at a conjunction near its middle (else at the middle)."""
    words = sentence.split()
    joins = {"and", "but", "so", "because", "while", "which", "then"} if lang == "en" else {
        "لكن", "ثم", "حيث", "بينما", "لأن", "التي", "الذي"}
    middle = len(words) // 2
    at = min((i for i, w in enumerate(words) if w.lower() in joins and 3 < i < len(words) - 3),
             key=lambda i: abs(i - middle), default=middle)
    comma = "," if lang == "en" else "،"
    return " ".join(words[:at]) + comma + " " + " ".join(words[at:])


def _speech_variants(prompt: str, missing: list[str], lang: Lang) -> list[str]:
    text = prompt.strip()
    if "spell_out" in missing:
        text = _spelled(text, lang)
    if "long_sentence" in missing:
        for sentence in _long_sentences(text):
            text = text.replace(sentence, _break_long(sentence, lang))
    first = text if text.endswith(_END_PUNCTUATION) else text + "."
    second = first.replace(", ", "... ") if lang == "en" else first.replace("، ", "... ")
    return [v for v in dict.fromkeys((first, second)) if v != prompt.strip()]


def _design_variants(prompt: str, missing: list[str], lang: Lang) -> list[str]:
    text = prompt.strip().rstrip(".")
    if "headline_length" in missing:
        headline = _headline(text)
        short = " ".join(headline.split()[:HEADLINE_WORDS - 2])
        text = text.replace(headline, short) if headline in text else text
    if "call_to_action" not in missing:
        return [text] if text != prompt.strip() else []
    separator = ". "
    return [f"{text}{separator}{cta}" for cta in _FILLERS[lang]["call_to_action"]]


def improve(media_type: str, prompt: str, lang: Lang) -> Improvement:
    """Called for `POST /v1/suggestions/improve`: the aspects `prompt` lacks for
    `media_type` with a message in `lang` (`en`/`ar`), and up to three rewrites filling
    them (none when nothing is missing)."""
    missing = missing_aspects(media_type, prompt)
    messages = _MESSAGES[lang]
    report = [Missing(aspect=aspect, message=messages[aspect]) for aspect in missing]
    if not missing:
        return Improvement(missing=report, variants=[])
    if media_type == "audio":
        texts = _speech_variants(prompt, missing, lang)
    elif media_type == "design":
        texts = _design_variants(prompt, missing, lang)
    else:
        comma = ", " if lang == "en" else "، "
        base = prompt.strip().rstrip(".,،")
        fillers = {**_FILLERS[lang], **_TYPE_FILLERS.get((media_type, lang), {})}
        texts = [comma.join([base, *(fillers[aspect][i] for aspect in missing)])
                 for i in range(3)]
    return Improvement(missing=report, variants=[Variant(text=t) for t in texts[:3]])
