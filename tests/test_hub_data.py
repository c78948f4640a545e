"""mMARCO and MIRACL through `datasets` streaming, on hand-written miniatures of the hub files in their exact layout
and format (tests/fixtures/hub, read from a local folder through the same `load_dataset(..., streaming=True)` path as
`hf://datasets/<repo>@<revision>`), no network: the pinned paths, the pairs built, groups, limits and errors."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from hybridbatch.data.hub import (
    MIRACL,
    MIRACL_CORPUS,
    MMARCO,
    miracl_files,
    miracl_pairs,
    mmarco_files,
    mmarco_pairs,
    stream_tsv,
)
from hybridbatch.errors import DataError, UsageError
from hybridbatch.sampling.dataset import pair_dataset
from hybridbatch.sampling.index import PairIndex
from hybridbatch.sampling.sources import source_pairings

FIXTURES = Path(__file__).parent / "fixtures" / "hub"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures with MIRACL's corpus gzipped to its on-hub names (docs-<i>.jsonl.gz)."""
    root = tmp_path_factory.mktemp("hub") / "hub"
    shutil.copytree(FIXTURES, root)
    for p in root.glob("miracl-corpus/*/docs-*.jsonl"):
        with gzip.open(p.with_name(p.name + ".gz"), "wb") as f:
            f.write(p.read_bytes())
        p.unlink()
    return root


def test_pinned_revisions_and_on_hub_paths() -> None:
    assert MMARCO.base() == "hf://datasets/unicamp-dl/mmarco@714e2341460cf550592cd5e5d8dc164f020fe445"
    assert mmarco_files("es") == {
        "triples": f"{MMARCO.base()}/data/triples.train.ids.small.tsv",
        "queries": f"{MMARCO.base()}/data/google/queries/train/spanish_queries.train.tsv",
        "collection": f"{MMARCO.base()}/data/google/collections/spanish_collection.tsv"}
    assert MIRACL.base() == "hf://datasets/miracl/miracl@33075b837ae3ee130037274357829bcd0f0692de"
    assert MIRACL_CORPUS.base() == "hf://datasets/miracl/miracl-corpus@262aa62d062e95c5487d7115094ffb2721830965"
    assert miracl_files("sw", "dev") == {
        "topics": f"{MIRACL.base()}/miracl-v1.0-sw/topics/topics.miracl-v1.0-sw-dev.tsv",
        "qrels": f"{MIRACL.base()}/miracl-v1.0-sw/qrels/qrels.miracl-v1.0-sw-dev.tsv",
        "corpus": f"{MIRACL_CORPUS.base()}/miracl-corpus-v1.0-sw/docs-*.jsonl.gz"}


def test_mmarco_pairs_parallel_by_query_id(hub: Path) -> None:
    ps = mmarco_pairs(("en", "es", "de"), limit=None, base=str(hub / "mmarco"))
    assert ps.name == "mmarco" and ps.languages == ["de", "en", "es"]
    assert {q: sorted(v) for q, v in ps.items.items()} == {
        "mmarco:1000094": ["de", "en", "es"], "mmarco:1000125": ["de", "en", "es"],
        "mmarco:1000254": ["de", "en", "es"], "mmarco:1000349": ["en", "es"]}  # no German query for 1000349
    en = ps.items["mmarco:1000094"]["en"]
    assert en.query == "where is the eiffel tower located"
    assert en.positive == "The Eiffel Tower is located on the Champ de Mars in Paris, France."
    assert en.negatives == ("The Statue of Liberty stands on Liberty Island in New York Harbor.",
                            "Big Ben is the nickname for the Great Bell of the clock at the north end of the Palace of "
                            "Westminster in London.")
    assert ps.items["mmarco:1000094"]["es"].query == "dónde está ubicada la torre eiffel"
    # 1000125's second negative is 1000094's positive passage: its negative group is that passage's answer group
    soft = ps.items["mmarco:1000125"]["de"]
    assert soft.negative_groups == ("mmarco:p3011922", "mmarco:p5399011") and en.group == "mmarco:p5399011"
    assert '"safely"' in ps.items["mmarco:1000349"]["en"].positive  # quotes kept: lines are split on tabs only


def test_mmarco_limit_and_max_negatives(hub: Path) -> None:
    ps = mmarco_pairs(("en",), limit=4, base=str(hub / "mmarco"), max_negatives=1)
    assert sorted(ps.items) == ["mmarco:1000094", "mmarco:1000125"]
    assert all(len(v["en"].negatives) == 1 for v in ps.items.values())


def test_mmarco_pairs_make_every_kind(hub: Path) -> None:
    ps = mmarco_pairs(("en", "es", "de"), limit=None, base=str(hub / "mmarco"))
    ds = pair_dataset(ps, "query: ", "passage: ", hard_negatives=True)
    assert len(ds) == 3 * 9 + 4  # three ids in 3 x 3 language pairs, one in 2 x 2
    assert source_pairings(ds, PairIndex.from_dataset(ds)) == {"": "passages"}


def test_miracl_pairs_positives_negatives_and_groups(hub: Path) -> None:
    ps = miracl_pairs(("sw", "fi"), base=str(hub / "miracl"), corpus_base=str(hub / "miracl-corpus"))
    assert ps.name == "miracl:train" and sorted(ps.items) == ["miracl:fi:5", "miracl:sw:0", "miracl:sw:1",
                                                              "miracl:sw:2"]
    assert all(len(v) == 1 for v in ps.items.values())  # native queries: each id in one language
    q0 = ps.items["miracl:sw:0"]["sw"]
    assert q0.query == "Nairobi ni mji mkuu wa nchi gani?"
    assert q0.positive == "Nairobi ni mji mkuu na mji mkubwa kuliko yote nchini Kenya."
    assert q0.negatives == ("Hifadhi ya Taifa ya Nairobi iko kusini mwa mji.",
                            "Kenya ina mipaka na Tanzania, Uganda, Sudan Kusini, Ethiopia na Somalia.")
    q1 = ps.items["miracl:sw:1"]["sw"]
    assert q1.positive.startswith("Mlima Kilimanjaro ni mlima mrefu")  # the first of its two relevant passages
    assert q1.negatives == (q0.positive,) and q1.negative_groups == ("miracl:sw:0",)  # another query's positive
    assert ps.items["miracl:sw:2"]["sw"].negatives == ()  # its judged passage 9999#0 is not in the corpus
    titled = miracl_pairs(("fi",), base=str(hub / "miracl"), corpus_base=str(hub / "miracl-corpus"),
                          with_title=True)
    assert titled.items["miracl:fi:5"]["fi"].positive == "Helsinki\nHelsinki on Suomen pääkaupunki ja väkirikkain " \
                                                         "kaupunki."
    ds = pair_dataset(ps, hard_negatives=True)
    assert source_pairings(ds, PairIndex.from_dataset(ds)) == {"": "monolingual"}


def test_miracl_limit_and_bad_arguments(hub: Path) -> None:
    ps = miracl_pairs(("sw",), limit=1, base=str(hub / "miracl"), corpus_base=str(hub / "miracl-corpus"))
    assert list(ps.items) == ["miracl:sw:0"]
    with pytest.raises(UsageError, match="MIRACL languages: xx not available"):
        miracl_pairs(("xx",), base=str(hub / "miracl"))
    with pytest.raises(UsageError, match="test topics have no qrels"):
        miracl_pairs(("sw",), split="test", base=str(hub / "miracl"))
    with pytest.raises(UsageError, match="mMARCO languages: el not available"):
        mmarco_pairs(("el",), base=str(hub / "mmarco"))


def test_a_malformed_line_names_file_and_line(hub: Path, tmp_path: Path) -> None:
    bad = tmp_path / "mmarco" / "data"
    shutil.copytree(hub / "mmarco" / "data", bad)
    triples = bad / "triples.train.ids.small.tsv"
    lines = triples.read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2].replace("\t", " ", 1)
    triples.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as e:
        mmarco_pairs(("en",), limit=None, base=str(tmp_path / "mmarco"))
    (p,) = e.value.problems
    assert (p.file, p.where) == (str(triples), "line 3")
    assert p.message == "expected 3 tab-separated fields, got 2: '1000125 3830401\\t3011922'"
    with pytest.raises(UsageError, match="not found"):
        list(stream_tsv(str(tmp_path / "nope.tsv"), 2))
