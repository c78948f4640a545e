"""Finding data: dataset folders, the lookup order (--data-dir, $HYBRIDBATCH_DATA, cache), and load_corpus.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from hybridbatch.data.consistency import consistency_warnings
from hybridbatch.data.download import SOURCES
from hybridbatch.data.hub import hub_source
from hybridbatch.data.languages import lang_from_path, normalize_lang, unknown_lang
from hybridbatch.data.mkqa import MKQA_PAIRINGS, read_mkqa
from hybridbatch.data.pairs import TATOEBA_FILE, check_pairs_jsonl, read_pairs_jsonl, read_tatoeba, tatoeba_pairs
from hybridbatch.data.qa import read_qa, read_squad
from hybridbatch.data.records import PairSet, QACorpus, TrainItem
from hybridbatch.data.roots import data_root, data_roots  # noqa: F401  (data_root: public here too)
from hybridbatch.data.validation import FILE_NAME, ValidationReport
from hybridbatch.data.xlinghealth import read_xlinghealth
from hybridbatch.errors import DataError, Problem, UsageError
from hybridbatch.provenance import sha256_files

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------------
# Finding files and datasets.


def lareqa_files(folder: Path) -> dict[str, Path]:
    """`<lang>.json` files in a folder, keyed by ISO 639-1 code (aliases such as `deu.json` are normalised).
    A JSON file whose name is not a known language is an error, not silently skipped."""
    rep = ValidationReport()
    out = lang_files(rep, Path(folder), "*.json")
    rep.raise_if_any()
    return out


def lang_files(rep: ValidationReport, folder: Path, pattern: str, skip: Iterable[Path] = ()) -> dict[str, Path]:
    """`<lang>.json` entries of a folder by language. Hidden files are skipped; folders and broken links named like
    data files are kept, so that reading them reports them instead of a language silently going missing."""
    out: dict[str, Path] = {}
    skipped = set(skip)
    for p in sorted(folder.glob(pattern)):
        if p.name.startswith(".") or p in skipped:
            continue
        lang = lang_from_path(p)
        if lang is None:
            rep.error(p, FILE_NAME, unknown_lang(p.stem))
        elif lang in out:
            rep.error(p, FILE_NAME, f"language {lang!r} given twice (also {out[lang].name})")
        else:
            out[lang] = p
    return out


DATASETS = ("xquad-r", "mlqa-r", "tydiqa-goldp", "tatoeba-laser", "xlinghealth", "mkqa")
PAIR_DATASETS = ("tatoeba-laser", "xlinghealth", "mkqa")  # training pairs, not QA corpora with candidate pools


def dataset_dir(name: str, data_dir: Path | str | None = None) -> Path:
    """The folder of a named dataset: the first of `data_roots(data_dir)` that holds `<name>/`."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    roots = data_roots(data_dir)
    for root in roots:
        if (root / name).is_dir():
            return root / name
    how = (f"Run `hybridbatch data download {name}` (needs network)" if name in SOURCES
           else f"{name} cannot be downloaded (see docs/DATA.md); put its files (" +
           ("mkqa*.jsonl" if name == "mkqa" else "<lang>.json") + ") in a folder")
    raise UsageError(
        f"dataset {name!r} not found (looked in {', '.join(str(r / name) for r in roots)}). {how}, or point at a "
        f"local copy with --data-dir DIR or $HYBRIDBATCH_DATA=DIR (DIR holds {name}/)."
    )


TYDI_FILE = re.compile(r"^([a-z]+)_tydiqa_(dev|train)\.json$")


def _split_corpus(corpus: QACorpus, split: str | None) -> QACorpus:
    if split is None:
        return corpus
    if split in ("train", "test"):
        try:
            train, test = corpus.split()
        except UsageError as e:
            raise UsageError(f"{e}; the 36/12 article split is XQuAD-R's protocol: use split=None for all of "
                             f"{corpus.name}, or QACorpus.split(n_train, n_test)") from None
        return train if split == "train" else test
    raise UsageError(f"split must be 'train' or 'test' (the 36/12 article split) for {corpus.name}, not {split!r}")


def load_corpus(spec: str | Path, data_dir: Path | str | None = None, split: str | None = None) -> QACorpus:
    """A QA corpus from a name or a path:

    - 'xquad-r' / 'mlqa-r': the LAReQA folder under the data root; split 'train'/'test' = `QACorpus.split()`.
    - 'tydiqa-goldp': `<language>_tydiqa_<split>.json` (split 'dev' by default, or 'train'), paragraph candidates.
    - a folder of `<lang>.json` files or a single JSON file: LAReQA if paragraphs carry `sentences`, else SQuAD with
      paragraph candidates; a TyDi-style folder is recognised by its file names.
    Names are looked up in `--data-dir`, then `$HYBRIDBATCH_DATA`, then the user cache (`dataset_dir`)."""
    spec_s = str(spec)
    if spec_s in PAIR_DATASETS:
        raise UsageError(f"{spec_s} is a set of training pairs, not a QA corpus with candidate pools: use "
                         f"load_pairs({spec_s!r})")
    path = dataset_dir(spec_s, data_dir) if spec_s in DATASETS else Path(spec)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".jsonl":
            raise UsageError(f"{path}: JSONL training pairs are not a QA corpus; use load_pairs / read_pairs_jsonl")
        lang = lang_from_path(path)
        if lang is None:
            raise DataError(Problem(str(path), FILE_NAME, unknown_lang(path.stem)))
        return _split_corpus(_load_auto({lang: path}, path.stem), split)
    tydi = [p for p in sorted(path.glob("*.json")) if TYDI_FILE.match(p.name)]
    if tydi:
        which = split or "dev"
        if which not in ("dev", "train"):
            raise UsageError(f"split must be 'dev' or 'train' for TyDi QA GoldP, not {which!r}")
        rep = ValidationReport()
        files: dict[str, Path] = {}
        for p in tydi:
            m = TYDI_FILE.match(p.name)
            assert m is not None
            if m.group(2) != which:
                continue
            lang = normalize_lang(m.group(1))
            if lang is None:
                rep.error(p, FILE_NAME, unknown_lang(m.group(1)))
            else:
                files[lang] = p
        rep.raise_if_any()
        if not files:
            raise UsageError(f"{path}: no *_tydiqa_{which}.json files")
        return read_squad(files, f"{path.name}:{which}", "paragraph")
    files = lareqa_files(path)
    if not files:
        raise UsageError(f"{path}: no <lang>.json files in this folder")
    return _split_corpus(_load_auto(files, path.name), split)


def _load_auto(files: Mapping[str, Path], name: str) -> QACorpus:
    """LAReQA or SQuAD (paragraph units), decided per file by whether paragraphs carry `sentences`. The checks
    across languages that `data check` runs (a language file that is a copy of another, rotated ids) run here too,
    where the data are used: logged as warnings and kept in `corpus.warnings` (eval.json's health record)."""
    rep = ValidationReport()
    corpus = read_qa(rep, files, name, "auto", "paragraph")
    rep.raise_if_any()
    found = consistency_warnings(corpus, files)
    for w in found:
        log.warning("warning: %s", w)
    corpus.warnings.extend(found)
    return corpus


def load_pairs(
    spec: str | Path, data_dir: Path | str | None = None, context: bool = False, hard_negatives: bool = False,
    split: str | None = "train",
) -> PairSet:
    """Training pairs from a JSONL file, a folder of JSONL files (merged; (id, lang) must stay unique), or a dataset
    name / folder turned into pairs with `QACorpus.pairs(context, hard_negatives)`.

    split="train" means: XQuAD-R (by name, or any corpus with exactly the 48 XQuAD articles) -> the 36-article train
    half, so test articles are never trained on; TyDi -> its train files; any other QA folder or file -> all of it
    (it has no held-out articles, and cutting the first 36 articles of a large training set would silently drop
    data). split=None: everything; "test"/"dev": as in `load_corpus`."""
    spec_s = str(spec)
    path = Path(spec)
    special = pair_source(spec_s, data_dir)
    if special is not None:
        return special
    if spec_s not in DATASETS and path.is_file() and path.suffix == ".jsonl":
        return read_pairs_jsonl(path)
    if spec_s not in DATASETS and path.is_dir():
        jsonl = sorted(path.glob("*.jsonl"))
        if jsonl and not list(path.glob("*.json")):
            return _merge_pairs(path.name, jsonl)
    is_tydi = spec_s == "tydiqa-goldp" or (
        spec_s not in DATASETS and path.is_dir() and any(TYDI_FILE.match(p.name) for p in path.glob("*.json")))
    if is_tydi or split != "train":
        corpus = load_corpus(spec, data_dir, split=split)
    else:
        corpus = load_corpus(spec, data_dir)
        if spec_s in ("xquad-r", "mlqa-r") or len(corpus.articles) == XQUAD_ARTICLES:
            corpus = corpus.split()[0]
    return corpus.pairs(context=context, hard_negatives=hard_negatives)


XQUAD_ARTICLES = 48


def is_mkqa_file(path: Path) -> bool:
    """An MKQA JSONL file is told from users' pairs by its name (`mkqa*.jsonl`, like the shipped mkqa_mia_dev.jsonl):
    its fields (pid, question, answers) are not the pairs format."""
    return path.suffix == ".jsonl" and path.name.lower().startswith("mkqa")


def pair_source(spec: str, data_dir: Path | str | None = None) -> PairSet | None:
    """The PairSet of a training source that is not a QA corpus, or None for anything else: 'xlinghealth' (or an
    .xlsx file, or a folder holding .xlsx workbooks), 'mkqa' / 'mkqa:answers' (or an mkqa*.jsonl file, optionally
    with ':answers' / ':questions' after it), 'tatoeba-laser' (alignment pairs with English), 'mmarco[:LANGS]' /
    'miracl[:LANGS]' (streamed from the hub, or a local copy under a data root: data.hub.hub_source)."""
    hub = hub_source(spec, data_dir)
    if hub is not None:
        return hub
    base, _, pairing = spec.rpartition(":") if spec.endswith(tuple(f":{p}" for p in MKQA_PAIRINGS)) else (spec, "", "")
    path = dataset_dir(base, data_dir) if base in PAIR_DATASETS else Path(base)
    if base == "tatoeba-laser" or (base not in DATASETS and path.is_dir()
                                   and any(TATOEBA_FILE.match(p.name) for p in path.iterdir())):
        files = sorted(p for p in path.iterdir() if TATOEBA_FILE.match(p.name))
        return tatoeba_pairs(read_tatoeba(path), base if base in DATASETS else path.name, sha256_files(files))
    if base == "xlinghealth":
        return read_xlinghealth(path)
    if base == "mkqa":
        return read_mkqa(path, pairing or "questions")
    if base in DATASETS:
        return None
    if path.suffix.lower() == ".xlsx" or (path.is_dir() and any(path.glob("*.xlsx"))):
        return read_xlinghealth(path)
    if is_mkqa_file(path) or (path.is_dir() and any(is_mkqa_file(p) for p in path.glob("*.jsonl"))
                              and not any(path.glob("*.json"))):
        return read_mkqa(path, pairing or "questions")
    return None


def _merge_pairs(name: str, files: list[Path]) -> PairSet:
    rep = ValidationReport()
    items: dict[str, dict[str, TrainItem]] = {}
    origin: dict[tuple[str, str], tuple[Path, int]] = {}
    for f in files:
        lines: dict[tuple[str, str], int] = {}
        for qid, by_lang in check_pairs_jsonl(rep, f, lines).items():
            for lang, item in by_lang.items():
                if (qid, lang) in origin:
                    first, line = origin[(qid, lang)]
                    rep.error(f, f"line {lines[(qid, lang)]}", f"duplicate (id, lang) {(qid, lang)!r}, also in "
                                                               f"{first.name} line {line}")
                    continue
                origin[(qid, lang)] = (f, lines[(qid, lang)])
                items.setdefault(qid, {})[lang] = item
    rep.raise_if_any()
    return PairSet(name, items, sha256_files(files), list(rep.warnings))


