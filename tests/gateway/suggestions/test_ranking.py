"""BM25 ranking, Arabic normalisation and the improve rules, as pure functions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.suggestions.rules import english_number, improve, missing_aspects, styles_in
from gateway.suggestions.service import preferred, rank
from gateway.suggestions.text import BM25, dedupe_key, normalise, tokens

CORPUS = [
    "a red fox in the snow",                      # 0: fox once, short
    "fox fox fox jumping over a fox den",         # 1: fox four times
    "a lighthouse at dusk",                       # 2: no fox
    "portrait of a fox, oil painting, red tones",  # 3: fox and red
]


def test_bm25_orders_a_hand_built_corpus() -> None:
    index = BM25([tokens(doc) for doc in CORPUS])
    fox = index.scores(tokens("fox"))
    assert fox[2] == 0
    # Term frequency saturates but still counts: the fox-heavy document leads.
    assert sorted(range(4), key=lambda i: -fox[i])[:3] == [1, 0, 3]
    red_fox = index.scores(tokens("red fox"))
    # Both terms beat one repeated term; the shorter of the two red-fox documents wins.
    assert sorted(range(4), key=lambda i: -red_fox[i]) == [0, 3, 1, 2]


def test_bm25_matches_the_formula_on_one_document() -> None:
    docs = [["fox", "snow"], ["lighthouse"]]
    index = BM25(docs)
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    norm = 1.2 * (1 - 0.75 + 0.75 * 2 / 1.5)
    assert index.score(["fox"], 0) == pytest.approx(idf * 1 * 2.2 / (1 + norm))


def test_arabic_is_normalised_across_alef_tashkeel_tatweel_and_taa_marbuta() -> None:
    variants = ["الإضاءةُ الذهبيّة", "الاضاءه الذهبيه", "الأضاءة الذهـــبية", "إضاءة ذهبية"]
    assert len({tuple(tokens(v)) for v in variants}) == 1
    assert normalise("مُوسِيقَى") == "موسيقي"
    assert dedupe_key("A  Red, fox!") == dedupe_key("a red fox")


def test_rank_finds_an_arabic_history_prompt_written_another_way() -> None:
    found = rank("اضاءه ذهبيه", ["بحر عند الغروب", "قطّة تحت الإضاءةِ الذهبيّة"], [], "ar", 5)
    assert found[0].text == "قطّة تحت الإضاءةِ الذهبيّة"
    assert found[0].source == "history"
    assert found[0].score == 1.0


def test_rank_dedupes_history_and_templates_and_keeps_history_language() -> None:
    found = rank("fox", ["A red fox in the snow", "a red fox in the snow!"],
                 ["a red fox in the snow", "a blue whale"], "ar", 8)
    texts = [s.text for s in found]
    assert texts.count("A red fox in the snow") == 1
    assert not any(t.lower().startswith("a red fox in the snow") for t in texts[1:])
    assert found[0].source == "history"
    assert found[0].lang == "en"  # a history prompt keeps its own language
    assert [s.score for s in found] == [1.0, 0.0]  # the unmatched template fills in


def test_without_context_half_is_history_then_templates() -> None:
    found = rank("", ["h1", "h2", "h3", "h4", "h5"], ["t1", "t2", "t3"], "en", 4)
    assert [(s.text, s.source) for s in found] == [
        ("h1", "history"), ("h2", "history"), ("t1", "template"), ("t2", "template")]


@given(st.lists(st.text(min_size=1, max_size=30), max_size=12), st.text(max_size=20),
       st.integers(min_value=1, max_value=20))
def test_rank_never_repeats_and_respects_the_limit(history: list[str], context: str,
                                                   limit: int) -> None:
    found = rank(context, history, ["a red fox", "a lighthouse"], "en", limit)
    assert len(found) <= limit
    keys = [dedupe_key(s.text) for s in found]
    assert len(keys) == len(set(keys))
    assert all(0.0 <= s.score <= 1.0 for s in found)


def test_accept_language_picks_the_best_known_language() -> None:
    assert preferred("fr-FR, ar;q=0.9, en;q=0.8") == "ar"
    assert preferred("en-GB,en;q=0.9") == "en"
    assert preferred("fr") is None
    assert preferred(None) is None


@pytest.mark.parametrize(("media_type", "prompt", "missing"), [
    ("image", "a cat", ["subject", "style", "lighting", "composition", "colour"]),
    ("image", "A lighthouse on a cliff at dusk, oil painting, warm golden light, wide shot",
     []),
    ("image", "An old fisherman mending nets, photorealistic, close-up", ["lighting",
                                                                          "colour"]),
    ("video", "A dog running through a park, photorealistic, golden hour, wide shot, warm "
              "colours", ["camera_motion", "pacing"]),
    ("video", "Waves on black rocks, cinematic, overcast light, low angle, muted blues, slow "
              "motion, drone orbit", []),
    ("audio", "Welcome to our store.", []),
    ("audio", "Welcome to our store", ["end_punctuation"]),
    ("audio", "Call us on 555 today.", ["spell_out"]),
    ("audio", "We will open the doors at nine and then the guests will walk to the hall and "
              "find their seats and wait for the speaker to begin the talk.",
     ["long_sentence"]),
    ("design", "Poster for a bakery. Headline: Fresh Every Morning. Call to action: Visit us",
     []),
    ("design", "Poster for a bakery. Headline: The freshest bread and the best pastries in "
               "the whole city", ["headline_length", "call_to_action"]),
    ("model_3d", "a wooden chair, stylised", []),
    ("model_3d", "a chair", ["subject", "style", "material"]),
    ("image", "قطة", ["subject", "style", "lighting", "composition", "colour"]),
    ("image", "صيّاد عجوز يصلح شباكه، واقعي، لقطة مقرّبة، ضوء الغروب، ألوان دافئة", []),
    ("audio", "أهلًا بكم في متجرنا", ["end_punctuation"]),
    ("design", "ملصق مخبز. العنوان: طازج كل صباح. دعوة للإجراء: زورونا", []),
])
def test_improve_rules_per_type(media_type: str, prompt: str, missing: list[str]) -> None:
    assert missing_aspects(media_type, prompt) == missing


def test_improve_messages_follow_the_language_and_variants_fill_the_gaps() -> None:
    en = improve("image", "a cat", "en")
    ar = improve("image", "a cat", "ar")
    assert [m.aspect for m in en.missing] == [m.aspect for m in ar.missing]
    assert en.missing[2].message.startswith("Describe the light")
    assert ar.missing[2].message.startswith("صِف الإضاءة")
    assert len(en.variants) == 3
    for variant in en.variants:
        assert variant.source == "rules"
        assert missing_aspects("image", variant.text) == []


def test_speech_variants_spell_out_and_punctuate() -> None:
    found = improve("audio", "Dr. Lee sees you at 3", "en")
    assert found.variants[0].text == "Doctor Lee sees you at three."


def test_english_numbers() -> None:
    assert [english_number(n) for n in (0, 14, 42, 180, 1005, 30_000)] == [
        "zero", "fourteen", "forty-two", "one hundred and eighty",
        "one thousand and five", "thirty thousand"]


def test_styles_are_found_in_both_languages() -> None:
    assert styles_in("A fox, watercolor, cinematic") == ["cinematic", "watercolour"]
    assert styles_in("ثعلب، ألوان مائية") == ["watercolour"]
