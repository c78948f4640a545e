"""The pair dataset the samplers read: one row per (id, query language, passage language) that exists.

Columns: `anchor`, `positive` (optional `negative`) - the texts the loss sees - and the metadata the samplers read:
`id` (the parallel question id), `query_lang`, `passage_lang`, `group` (a language-independent key of the answer:
rows sharing it are never in one batch group), `negative_group` (the group of the hard negative), and `source` when
several data sources are mixed. Users build it from "long" data (one row per id and language) with
`pairs_from_long`, or from the project's readers with `pair_dataset`.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence
from typing import Any

from hybridbatch.data.languages import normalize_lang
from hybridbatch.data.records import PairSet
from hybridbatch.errors import DataError, Problem, UsageError

#: metadata columns the samplers read and `PairCollator` keeps away from the loss
METADATA_COLUMNS = ("id", "query_lang", "passage_lang", "group", "negative_group", "source")


def _stable_pick(n: int, key: str) -> int:
    """An index in [0, n) from a stable hash, identical on every process and run (Python's `hash` is not)."""
    return zlib.crc32(key.encode()) % n


def long_dataset(pairsets: PairSet | Sequence[PairSet], hard_negatives: bool = False) -> Any:
    """One row per (source, id, language): `id`, `lang`, `query`, `positive`, `group` (+ `negative`,
    `negative_group` with hard negatives, + `source` with several PairSets). The hard negative is one of the
    item's negatives chosen by a stable hash among those outside the item's own answer group; an item without one
    borrows the positive of the previous id of another group in the same language."""
    from datasets import Dataset

    if isinstance(pairsets, PairSet):
        pairsets = [pairsets]
    cols: dict[str, list[Any]] = {k: [] for k in ("id", "lang", "query", "positive", "group")}
    if hard_negatives:
        cols.update(negative=[], negative_group=[])
    if len(pairsets) > 1:
        cols["source"] = []
    for ps in pairsets:
        last: dict[str, tuple[str, str]] = {}  # lang -> (positive, group) of the previous id
        for qid, by_lang in ps.items.items():
            for lang in sorted(by_lang):
                item = by_lang[lang]
                group = item.group or qid
                cols["id"].append(qid)
                cols["lang"].append(lang)
                cols["query"].append(item.query)
                cols["positive"].append(item.positive)
                cols["group"].append(group)
                if "source" in cols:
                    cols["source"].append(ps.name)
                if hard_negatives:
                    groups = item.negative_groups or tuple(f"{lang}:{qid}:neg{k}" for k in range(len(item.negatives)))
                    negs = [(n, g) for n, g in zip(item.negatives, groups, strict=True)
                            if g != group and n != item.positive]
                    if negs:
                        neg = negs[_stable_pick(len(negs), f"{qid}\t{lang}")]
                    elif lang in last and last[lang][1] != group:
                        neg = last[lang]
                    else:
                        neg = next(((by2[lang].positive, by2[lang].group or q2) for q2, by2 in ps.items.items()
                                    if lang in by2 and (by2[lang].group or q2) != group), None)
                        if neg is None:
                            raise UsageError(f"{ps.name}: hard negatives need at least two answer groups in {lang}")
                    cols["negative"].append(neg[0])
                    cols["negative_group"].append(neg[1])
                last[lang] = (item.positive, group)
    if not cols["id"]:
        raise UsageError("the training data has no (question, passage) pairs")
    return Dataset.from_dict(cols)


def pairs_from_long(
    long: Any,
    query_prefix: str = "",
    passage_prefix: str = "",
    *,
    cross: bool = True,
    id_column: str = "id",
    lang_column: str = "lang",
    query_column: str = "query",
    positive_column: str = "positive",
    negative_column: str = "negative",
    group_column: str = "group",
    negative_lang: str = "passage",
) -> Any:
    """Turn long data (one row per id and language) into the pair dataset: for every id, every (query language,
    passage language) among the languages it exists in (`cross=False`: only query language = passage language,
    enough for X-X / En / mixed batches and 1/L the size). Optional columns (`negative`, `group`,
    `negative_group`, `source`) are carried along; rows without a group get their id as group.

    `negative_lang`: whose hard negative a row gets - the passage language's ("passage", the usual choice) or the
    query language's ("query"): then a query in X with its answer in Y must rank that answer above a wrong sentence
    of the same paragraph in its own language X, the comparison behind language bias."""
    if negative_lang not in ("passage", "query"):
        raise UsageError(f"negative_lang must be 'passage' or 'query', not {negative_lang!r}")
    from datasets import Dataset

    names = set(long.column_names)
    data, by_id = read_long(long, id_column, lang_column, query_column, positive_column, negative_column)
    has_neg = negative_column in names
    has_group = group_column in names
    has_ng = "negative_group" in names
    has_src = "source" in names
    out: dict[str, list[Any]] = {"anchor": [], "positive": []}
    if has_neg:
        out["negative"] = []
    out.update(id=[], query_lang=[], passage_lang=[], group=[])
    if has_ng:
        out["negative_group"] = []
    if has_src:
        out["source"] = []
    for (src, qid), langs in by_id.items():
        for ql in sorted(langs):
            qi = langs[ql]
            for pl in sorted(langs):
                if not cross and pl != ql:
                    continue
                pi = langs[pl]
                ni = qi if negative_lang == "query" else pi
                out["anchor"].append(query_prefix + data[query_column][qi])
                out["positive"].append(passage_prefix + data[positive_column][pi])
                if has_neg:
                    out["negative"].append(passage_prefix + data[negative_column][ni])
                out["id"].append(qid)
                out["query_lang"].append(ql)
                out["passage_lang"].append(pl)
                out["group"].append(str(data[group_column][pi]) if has_group and data[group_column][pi] else qid)
                if has_ng:
                    out["negative_group"].append(data["negative_group"][ni])
                if has_src:
                    out["source"].append(src)
    return Dataset.from_dict(out)


def read_long(long: Any, id_column: str = "id", lang_column: str = "lang", query_column: str = "query",
              positive_column: str = "positive", negative_column: str = "negative",
              ) -> tuple[dict[str, list[Any]], dict[tuple[str, str], dict[str, int]]]:
    """Long data checked and indexed once, for `pairs_from_long` and `LAReQAEvaluator.from_long`: its columns
    (languages normalised) and, per (source, id) in first-seen order, the row of each language."""
    names = set(long.column_names)
    for need in (id_column, lang_column, query_column, positive_column):
        if need not in names:
            raise UsageError(f"long data: missing column {need!r} (columns: {', '.join(long.column_names)})")
    data = long.to_dict()
    texts = (query_column, positive_column) + ((negative_column,) if negative_column in names else ())
    data[lang_column] = check_long_rows(data, id_column, lang_column, texts)
    by_id: dict[tuple[str, str], dict[str, int]] = {}
    for i, (qid, lang) in enumerate(zip(data[id_column], data[lang_column], strict=True)):
        src = data["source"][i] if "source" in names else ""
        langs = by_id.setdefault((src, str(qid)), {})
        if lang in langs:
            raise UsageError(f"long data: row {i} repeats (id, lang) = ({qid!r}, {lang!r}) (first at row "
                             f"{langs[lang]})")
        langs[lang] = i
    return data, by_id


def check_long_rows(data: dict[str, list[Any]], id_column: str, lang_column: str, text_columns: Sequence[str],
                    ) -> list[str]:
    """The rows' language codes normalised as the file readers do (`normalize_lang`: 'EN', 'en-US', 'eng' are
    'en'), so one language is never two; raises one DataError naming the column and row of every unknown or
    missing code, missing id and blank text (what the readers refuse in files)."""
    problems: list[Problem] = []
    langs: list[str] = []
    seen: dict[Any, str | None] = {}
    for i, code in enumerate(data[lang_column]):
        lang = seen[code] if code in seen else seen.setdefault(code, normalize_lang(code))
        langs.append(lang or "")
        if lang is None:
            why = ("no language code (None)" if code is None else f"unknown language code {code!r}: use an ISO 639-1 "
                   "code (de), an ISO 639-3 code (deu), an English name (german) or a region form (de-AT)")
            problems.append(Problem("long data", f"row {i}, column {lang_column!r}", why))
        qid = data[id_column][i]
        if qid is None or not str(qid).strip():
            problems.append(Problem("long data", f"row {i}, column {id_column!r}", f"no id ({qid!r})"))
        for col in text_columns:
            v = data[col][i]
            if not isinstance(v, str) or not v.strip():
                what = "blank text" if isinstance(v, str) else f"expected a string, got {type(v).__name__}"
                problems.append(Problem("long data", f"row {i}, column {col!r}", f"{what} ({v!r})"))
    if problems:
        raise DataError(problems)
    return langs


def warn_dropped_languages(sampler: Any) -> list[str]:
    """Warn about (and return) the languages a sampler can never train on: every option of theirs had fewer answer
    groups than one batch group needs (a language with one row, say), so it is dropped (`sampler.dropped`) and
    would otherwise vanish without a word. Per-pair kinds draw any language of their items: nothing is dropped."""
    ix, allowed = sampler.index, sampler._allowed_langs()
    kept = [o for opts in sampler.options.values() for o in opts]
    if any(o.x < 0 for o in kept):
        return []
    used = {o.x for o in kept} | {o.y for o in kept}
    out = []
    for li, lang in enumerate(ix.languages):
        ids = sum(int(ix.has(s)[:, li].sum()) for s in range(len(ix.sources)))
        if allowed[li] and ids and li not in used:
            out.append(lang)
            warnings.warn(f"language {lang!r} is dropped: its {ids} question id(s) cannot fill a batch group of "
                          f"{sampler.need} pairs with distinct answers (batch size {sampler.batch_size} x "
                          f"{sampler.world_size} process(es)); it is never trained on", UserWarning, stacklevel=3)
    return out


def pair_dataset(
    pairsets: PairSet | Sequence[PairSet],
    query_prefix: str = "",
    passage_prefix: str = "",
    hard_negatives: bool = False,
    cross: bool = True,
    negative_lang: str = "passage",
) -> Any:
    """The project's PairSets -> the pair dataset (several PairSets: one dataset with a `source` column)."""
    if not isinstance(pairsets, PairSet) and not pairsets:
        raise UsageError("no training data given")
    long = long_dataset(pairsets, hard_negatives=hard_negatives)
    return pairs_from_long(long, query_prefix, passage_prefix, cross=cross, negative_lang=negative_lang)
