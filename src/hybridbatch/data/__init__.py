"""Data: records, readers (LAReQA / SQuAD JSON, JSONL pairs, Tatoeba), validation, lookup and download."""

from hybridbatch.data.checks import (  # noqa: F401
    check_paths,
    corpus_stats,
    dataset_stats,
    pairs_stats,
    tatoeba_stats,
)
from hybridbatch.data.download import (  # noqa: F401
    MLQA_R_NOTE,
    RAW_BASE,
    SOURCES,
    RemoteFile,
    Source,
    download,
)
from hybridbatch.data.languages import (  # noqa: F401
    ISO639_1,
    LANG_ALIASES,
    LANG_FROM_FILE,
    lang_from_path,
    normalize_lang,
)
from hybridbatch.data.lookup import (  # noqa: F401
    DATASETS,
    XQUAD_ARTICLES,
    data_root,
    data_roots,
    dataset_dir,
    lareqa_files,
    load_corpus,
    load_pairs,
)
from hybridbatch.data.pairs import (  # noqa: F401
    read_pairs_jsonl,
    read_tatoeba,
)
from hybridbatch.data.qa import (  # noqa: F401
    Mode,
    read_lareqa,
    read_squad,
)
from hybridbatch.data.records import (  # noqa: F401
    Candidate,
    PairSet,
    QACorpus,
    Question,
    TrainItem,
    passage_text,
)
from hybridbatch.data.sentences import (  # noqa: F401
    THAI_MIN_CHARS,
    split_sentences,
)
from hybridbatch.data.validation import (  # noqa: F401
    FILE_NAME,
    FOLDER,
    LANGUAGE,
    LINE_COUNT,
    TOP_LEVEL,
    WHOLE_FILE,
)
