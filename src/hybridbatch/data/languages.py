"""Language codes: keys are ISO 639-1; files may use aliases, which are normalised here.
"""

from __future__ import annotations

import re
from pathlib import Path

# ---------------------------------------------------------------------------------------------------------------------
# Language codes. Keys in a corpus are ISO 639-1 codes; files may use an alias (ISO 639-2/3, an English name, a region
# subtag). Anything else is an error, because a misnamed file silently becomes a "language" otherwise.

ISO639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el "
    "en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja "
    "jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd "
    "ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss "
    "st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu".split()
)

LANG_FROM_FILE = {
    # TyDi QA GoldP file names use language names.
    "arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id", "korean": "ko",
    "russian": "ru", "swahili": "sw", "telugu": "te",
}

LANG_ALIASES: dict[str, str] = {
    **LANG_FROM_FILE,
    # English names of the XQuAD-R / MLQA-R / Tatoeba languages and a few more.
    "chinese": "zh", "german": "de", "greek": "el", "spanish": "es", "hindi": "hi", "thai": "th", "turkish": "tr",
    "vietnamese": "vi", "romanian": "ro", "french": "fr", "japanese": "ja", "portuguese": "pt", "italian": "it",
    "dutch": "nl", "polish": "pl", "persian": "fa", "urdu": "ur", "tamil": "ta", "marathi": "mr", "hebrew": "he",
    # ISO 639-3 / 639-2 (B and T) codes: Tatoeba/LASER file names (ara cmn deu ell hin ron rus spa tur vie tha eng).
    "ara": "ar", "arb": "ar", "cmn": "zh", "zho": "zh", "chi": "zh", "deu": "de", "ger": "de", "ell": "el",
    "gre": "el", "eng": "en", "spa": "es", "hin": "hi", "ron": "ro", "rum": "ro", "rus": "ru", "tha": "th",
    "tur": "tr", "vie": "vi", "ben": "bn", "fin": "fi", "ind": "id", "kor": "ko", "swa": "sw", "swh": "sw",
    "tel": "te", "jpn": "ja", "fra": "fr", "fre": "fr", "por": "pt", "ita": "it", "nld": "nl", "dut": "nl",
    "pol": "pl", "fas": "fa", "per": "fa", "pes": "fa", "urd": "ur", "tam": "ta", "mar": "mr", "heb": "he",
    "ukr": "uk", "ces": "cs", "cze": "cs", "bul": "bg", "hun": "hu", "swe": "sv", "dan": "da", "nob": "nb",
    "est": "et", "lit": "lt", "lav": "lv", "slk": "sk", "slo": "sk", "slv": "sl", "hrv": "hr", "srp": "sr",
    "cat": "ca", "eus": "eu", "baq": "eu", "glg": "gl", "tgl": "tl", "msa": "ms", "may": "ms", "zsm": "ms",
    "jav": "jv", "mal": "ml", "kan": "kn", "guj": "gu", "pan": "pa", "mya": "my", "bur": "my", "khm": "km",
    "lao": "lo", "kat": "ka", "geo": "ka", "hye": "hy", "arm": "hy", "kaz": "kk", "uzb": "uz", "aze": "az",
    "amh": "am", "yor": "yo", "ibo": "ig", "hau": "ha", "zul": "zu", "xho": "xh", "afr": "af", "isl": "is",
    "ice": "is", "gle": "ga", "cym": "cy", "wel": "cy", "sqi": "sq", "alb": "sq", "mkd": "mk", "mac": "mk",
    "bel": "be", "tat": "tt", "epo": "eo", "lat": "la",
    # Common non-ISO spellings.
    "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh", "iw": "he", "in": "id", "ji": "yi",
}


def normalize_lang(code: object) -> str | None:
    """The ISO 639-1 code for `code` (a 639-1/2/3 code, an English name or `xx-REGION`, any case), or None if
    unknown or not a string. The one normalisation: the file readers (language keys, JSONL `lang`, Tatoeba names)
    and the library path (`sampling.pairs_from_long`) both call it, so 'EN', 'en-US' and 'eng' are one language."""
    if not isinstance(code, str):
        return None
    c = code.strip().lower().replace("_", "-")
    if c in ISO639_1:
        return c
    if c in LANG_ALIASES:
        return LANG_ALIASES[c]
    head, *subtags = c.split("-")
    if subtags and all(_SUBTAG.match(t) for t in subtags) and (head in ISO639_1 or head in LANG_ALIASES):
        return normalize_lang(head)
    return None


_SUBTAG = re.compile(r"^([a-z]{2}|\d{3}|hans|hant|latn|cyrl|arab|deva|thai|grek)$")  # BCP 47 region / script


def lang_from_path(path: Path | str) -> str | None:
    """The language a data file holds, from its name: `de.json`, `deu.json`, `german.json`; TyDi style
    `<language>_tydiqa_dev.json` (first `_` token, a language name); XQuAD style `xquad.de.json` (last `.` token).
    Two-letter tokens elsewhere in a name are not trusted (too many collide with words)."""
    stem = Path(path).stem
    if (lang := normalize_lang(stem)) is not None:
        return lang
    first = stem.split("_")[0].lower()
    if len(first) > 3 and first in LANG_ALIASES:
        return LANG_ALIASES[first]
    if "." in stem:
        return normalize_lang(stem.rsplit(".", 1)[1])
    return None


def unknown_lang(code: str) -> str:
    return (
        f"unknown language code {code!r}: name the file by its ISO 639-1 code (e.g. de.json), an ISO 639-3 code "
        f"(deu.json) or an English name (german.json)"
    )


