"""Data: records, readers (LAReQA / SQuAD JSON, JSONL pairs, Tatoeba, XLingHealth xlsx, MKQA JSONL, mMARCO / MIRACL
from the hub), validation, lookup and download. `__all__` names what a user or a later stage needs; the helpers stay
in the module named beside them."""

from hybridbatch.data.checks import check_paths, corpus_stats, dataset_stats
from hybridbatch.data.download import SOURCES, download
from hybridbatch.data.languages import lang_from_path, normalize_lang
from hybridbatch.data.lookup import (
    DATASETS,
    PAIR_DATASETS,
    data_root,
    data_roots,
    dataset_dir,
    load_corpus,
    load_pairs,
    pair_source,
)
from hybridbatch.data.mkqa import mkqa_pairs, read_mkqa
from hybridbatch.data.pairs import read_pairs_jsonl, read_tatoeba, tatoeba_pairs
from hybridbatch.data.qa import read_lareqa, read_squad
from hybridbatch.data.records import Candidate, PairSet, QACorpus, Question, TrainItem
from hybridbatch.data.sentences import split_sentences
from hybridbatch.data.xlinghealth import read_xlinghealth

__all__ = [
    "DATASETS", "PAIR_DATASETS", "SOURCES",
    "Candidate", "PairSet", "QACorpus", "Question", "TrainItem",
    "check_paths", "corpus_stats", "dataset_stats", "data_root", "data_roots", "dataset_dir", "download",
    "lang_from_path", "normalize_lang", "load_corpus", "load_pairs", "pair_source",
    "mkqa_pairs", "read_mkqa", "read_pairs_jsonl", "read_tatoeba", "tatoeba_pairs", "read_lareqa", "read_squad",
    "read_xlinghealth", "split_sentences",
]
