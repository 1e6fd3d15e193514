"""Words of a prompt, English or Arabic, and BM25 ranking over a small corpus.

Pure functions: no I/O. Arabic is normalised so that one word typed differently still
matches: tashkeel (the short-vowel marks) and tatweel (the stretching ـ) are dropped, the
alef forms أ إ آ ٱ become ا, alef maqsura ى becomes ي and taa marbuta ة becomes ه (the
spellings people mix in search), and the definite article ال plus a leading و/ب/ل/ك/ف
conjunction or preposition is stripped from longer words. Latin text is case-folded and
split on anything that is not a letter or digit; a trailing English plural `s` is dropped.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Final

#: Arabic harakat, tanween, shadda, sukun, superscript alef and Quranic marks.
_TASHKEEL: Final = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_TATWEEL: Final = "\u0640"
_CHARS: Final = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه",
                               "ؤ": "و", "ئ": "ي",
                               # Arabic-Indic digits read as the same numbers.
                               **{chr(0x0660 + d): str(d) for d in range(10)}})
_WORD: Final = re.compile(r"\w+", re.UNICODE)
_ARABIC: Final = re.compile("[\u0600-\u06ff]")
#: Prefixes stripped from Arabic words long enough to keep a stem of 3 letters.
_AR_PREFIXES: Final = ("وال", "بال", "كال", "فال", "لل", "ال")

#: Words too common to say anything about a prompt.
STOPWORDS: Final = frozenset({
    "a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "with", "for", "by", "from",
    "is", "are", "it", "its", "this", "that", "as", "into", "over", "under", "very",
    "في", "من", "علي", "الي", "مع", "عن", "و", "او", "هذا", "هذه", "ذلك", "تلك", "ثم", "كل",
})


def normalise(text: str) -> str:
    """`text` case-folded, with Arabic tashkeel and tatweel removed and letter variants
    unified (see the module docstring); called before tokenising and for deduplication."""
    text = _TASHKEEL.sub("", text.replace(_TATWEEL, ""))
    return text.translate(_CHARS).casefold()


def _stem(word: str) -> str:
    if _ARABIC.search(word):
        for prefix in _AR_PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 3:
                return word[len(prefix):]
        return word
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """The words of `text` that carry meaning, normalised and lightly stemmed (in order,
    repeats kept)."""
    return [_stem(word) for word in _WORD.findall(normalise(text)) if word not in STOPWORDS]


def dedupe_key(text: str) -> str:
    """What two prompts that differ only in case, spacing, punctuation or Arabic spelling
    variants share."""
    return " ".join(_WORD.findall(normalise(text)))


class BM25:
    """Okapi BM25 over `documents` (already tokenised), with the usual k1 = 1.2, b = 0.75.

    The IDF is the non-negative `log(1 + (N - n + 0.5) / (n + 0.5))` form (Lucene's), so a
    term present in most documents still counts a little instead of subtracting.
    """

    def __init__(self, documents: Sequence[Sequence[str]], *, k1: float = 1.2,
                 b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._frequencies = [Counter(doc) for doc in documents]
        self._lengths = [len(doc) for doc in documents]
        count = len(documents)
        self._average = (sum(self._lengths) / count) if count else 0.0
        containing: Counter[str] = Counter()
        for frequencies in self._frequencies:
            containing.update(frequencies.keys())
        self._idf = {term: math.log(1 + (count - n + 0.5) / (n + 0.5))
                     for term, n in containing.items()}

    def score(self, query: Sequence[str], index: int) -> float:
        """The relevance of document `index` to `query` (0 when no term matches)."""
        frequencies = self._frequencies[index]
        length = self._lengths[index]
        norm = self.k1 * (1 - self.b + self.b * length / self._average) if self._average else 0
        total = 0.0
        for term in set(query):
            tf = frequencies.get(term, 0)
            if tf:
                total += self._idf[term] * tf * (self.k1 + 1) / (tf + norm)
        return total

    def scores(self, query: Sequence[str]) -> list[float]:
        """Every document's score for `query`, in document order."""
        return [self.score(query, index) for index in range(len(self._frequencies))]


def contains_phrase(words: Sequence[str], phrase: Sequence[str]) -> bool:
    """Whether `phrase` (tokens) occurs contiguously in `words` (tokens)."""
    size = len(phrase)
    if not size:
        return False
    return any(list(words[i:i + size]) == list(phrase) for i in range(len(words) - size + 1))
