"""Data: records, readers (LAReQA / SQuAD JSON, JSONL pairs, Tatoeba, XLingHealth xlsx, MKQA JSONL, mMARCO / MIRACL
from the hub), validation, lookup and download."""

from hybridbatch.data.checks import (  # noqa: F401
    check_paths,
    corpus_stats,
    dataset_stats,
    pairs_stats,
    tatoeba_stats,
)
from hybridbatch.data.download import (  # noqa: F401
    MKQA_NOTE,
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
    PAIR_DATASETS,
    XQUAD_ARTICLES,
    data_root,
    data_roots,
    dataset_dir,
    lareqa_files,
    is_mkqa_file,
    load_corpus,
    load_pairs,
    pair_source,
)
from hybridbatch.data.mkqa import (  # noqa: F401
    PAIRINGS,
    mkqa_pairs,
    read_mkqa,
)
from hybridbatch.data.pairs import (  # noqa: F401
    read_pairs_jsonl,
    read_tatoeba,
    tatoeba_pairs,
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
    union_groups,
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
from hybridbatch.data.xlinghealth import (  # noqa: F401
    XLH_LANGUAGES,
    read_xlinghealth,
)
