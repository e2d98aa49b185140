"""Text clean-up shared by all readers, so every format yields text a language model reads the same way."""

from __future__ import annotations

import html
import re

_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]{0,500}>")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<art>The|A|An|La|Le|Les|L'|Il|Das|Der|Die|El|Los|Las)$")


def normalize_text(text: str | None) -> str:
    """Unescape HTML entities, collapse runs of whitespace and strip; ``None`` becomes ``""``."""
    if not text:
        return ""
    return _WS.sub(" ", html.unescape(str(text))).strip()


def strip_tags(text: str) -> str:
    """Drop HTML tags (product metadata often carries markup); entities are left to ``normalize_text``."""
    return _TAG.sub(" ", text)


PLACEHOLDERS = frozenset({"unknown", "unkonwn", "nan", "null", "n/a"})  # "unkonwn": sic, in RecBole's ml-100k


def is_placeholder(value: str) -> bool:
    """Values that mean "missing" in public dumps; they would only mislead a language model."""
    return value.strip().lower() in PLACEHOLDERS


def normalize_fields(fields: dict[str, str]) -> dict[str, str]:
    """Normalise every value of a text-field table and drop the fields that end up empty."""
    out = {}
    for key, value in fields.items():
        value = normalize_text(value)
        if value:
            out[key] = value
    return out


def readable_title(title: str) -> str:
    """Move a library-style trailing article to the front: "Usual Suspects, The" -> "The Usual Suspects"."""
    m = _TRAILING_ARTICLE.match(title.strip())
    if not m:
        return title.strip()
    art = m.group("art")
    sep = "" if art.endswith("'") else " "
    return f"{art}{sep}{m.group('rest')}"


_GENDERS = {"m": "male", "male": "male", "f": "female", "female": "female"}
_OCCUPATION_PHRASES = {
    "none": "with no occupation",
    "other": "",
    "retired": "who is retired",
    "entertainment": "working in entertainment",
    "healthcare": "working in healthcare",
    "marketing": "working in marketing",
}


def user_profile(age: str | None = None, gender: str | None = None, occupation: str | None = None) -> str:
    """One sentence from demographics, e.g. ``"a 24-year-old male technician"``; ``""`` when all are empty.

    A sentence reads better to a language model than three bare codes, and it is what user text means
    for MovieLens-style data.
    """
    age = (age or "").strip()
    gender_word = _GENDERS.get((gender or "").strip().lower(), "")
    occ = (occupation or "").strip().lower()
    occ_phrase = _OCCUPATION_PHRASES.get(occ, occ)
    if not (age or gender_word or occ_phrase):
        return ""
    if gender_word:
        noun = f"{gender_word} {occ_phrase}".strip()
    elif occ_phrase and occ not in _OCCUPATION_PHRASES:
        noun = occ_phrase  # an occupation noun alone stands for the person
    else:
        noun = f"person {occ_phrase}".strip()
    if age.isdigit():
        text = f"{age}-year-old {noun}"
    elif age:
        text = f"{noun} aged {age}"
    else:
        text = noun
    return f"{'an' if _starts_with_vowel_sound(text) else 'a'} {text}"


def _starts_with_vowel_sound(text: str) -> bool:
    if text[0].isdigit():
        number = text.split("-")[0]
        return number.startswith("8") or number in (
            "11",
            "18",
        )  # "an 8-", "an 80-", "an 11-", "an 18-year-old"
    return text[0].lower() in "aeiou"


def join_list(values: object, sep: str = ", ") -> str:
    """Flatten nested lists of strings (Amazon categories), drop duplicates keeping order, and join them."""
    flat: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif v is not None:
            s = normalize_text(str(v))
            if s and s not in flat:
                flat.append(s)

    walk(values)
    return sep.join(flat)


def item_document(fields: dict[str, str]) -> str:
    """One string of an item's text fields in their order ("Title. Category path. Description"): what the
    content baselines encode and what a new item is described by (docs/DESIGN.md §11)."""
    return ". ".join(v.strip().rstrip(".") for v in fields.values() if v and v.strip())
