"""Issue 22, bad input (docs/RELIABILITY.md, "Second round"): each case through the CLI (`cli.main` in a CliRunner
isolation, as tests/test_cli_errors.py) or the public API, on a real model folder (the tiny BERT of conftest.py,
with a config asking for one more layer than its weights hold) and the real data in ../shared/data. Each asserts the
exact message, exit 2 and that nothing was written.

Cases: a model whose weights lack layers; language codes of the library path ('EN', 'en-US', None); config files
with wrongly typed values; non-finite or non-positive lr / scale / warm-up / eval steps; an --out that cannot be
created; --resume into a missing folder; `data check` on a copied language file and on rotated ids.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_cli_errors import assert_one_readable_error, run_cli, snapshot, work  # noqa: F401  (work: a fixture)

from hybridbatch.errors import DataError, ModelError, UsageError
from hybridbatch.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
XQUAD = ("en", "de", "es")


# ---- real inputs, cut small ------------------------------------------------------------------------------------------


def first_articles(shared_data: Path, out: Path, langs=XQUAD, n: int = 1) -> Path:
    """The first `n` articles of the real XQuAD-R files of `langs` (same ids in every language)."""
    out.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        obj = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        obj["data"] = obj["data"][:n]
        (out / f"{lang}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture
def one_more_layer(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model folder with a config.json that asks for 3 layers while its weights hold 2."""
    folder = shutil.copytree(tiny_model, tmp_path / "model-3-layers")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2
    cfg["num_hidden_layers"] = 3
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.fixture
def pairs_file(shared_data: Path, tmp_path: Path) -> Path:
    """JSONL pairs from the real XQuAD-R en / de questions of the first article."""
    from hybridbatch.data.lookup import load_corpus

    corpus = load_corpus(str(first_articles(shared_data, tmp_path / "one-article", ("en", "de"))), split=None)
    rows = [{"id": qid, "lang": lang, "query": it.query, "positive": it.positive}
            for qid, by in corpus.pairs().items.items() for lang, it in sorted(by.items())]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def missing_layer_message(folder: Path) -> str:
    return (f"model {folder}: its weights lack 16 tensor(s) its config asks for: encoder.layer.2.* (16 tensors). "
            f"They would be initialised at random (a different model on every load): fix config.json (e.g. "
            f"num_hidden_layers) or the weight files, or pass --allow-missing-weights (allow_missing_weights=True) "
            f"to accept random tensors")


# ---- 1. a model folder whose config asks for more layers than its weights hold ---------------------------------------


def test_load_model_refuses_missing_layer_and_opt_in_loads_it(one_more_layer):
    from hybridbatch.models.loading import load_model

    with pytest.raises(ModelError) as e:
        load_model(str(one_more_layer), device="cpu")
    assert str(e.value) == missing_layer_message(one_more_layer)
    model = load_model(str(one_more_layer), device="cpu", allow_missing_weights=True)
    assert len(model[0].auto_model.encoder.layer) == 3


def test_load_model_accepts_complete_weights(tiny_model):
    """The control: the same folder with its own config loads (an unused BERT pooler is not 'missing')."""
    from hybridbatch.models.loading import load_model

    assert len(load_model(str(tiny_model), device="cpu")[0].auto_model.encoder.layer) == 2


def test_eval_and_train_refuse_missing_layer(work, one_more_layer, shared_data, pairs_file):
    data = first_articles(shared_data, work / "data")
    before = snapshot(work)
    code, text = run_cli(["eval", "--model", str(one_more_layer), "--data", str(data), "--split", "all",
                          "--encoder", "torch", "--out", str(work / "out"), "--no-progress"])
    assert_one_readable_error(code, text, missing_layer_message(one_more_layer))
    code, text = run_cli(["train", "--model", str(one_more_layer), "--data", str(pairs_file), "--out",
                          str(work / "run"), "--batch-size", "4", "--max-steps", "1", "--no-progress"])
    assert_one_readable_error(code, text, missing_layer_message(one_more_layer))
    assert snapshot(work) == before
    code, text = run_cli(["eval", "--model", str(one_more_layer), "--data", str(data), "--split", "all",
                          "--encoder", "torch", "--out", str(work / "out"), "--no-progress",
                          "--allow-missing-weights"])
    assert code == 0, text
    assert (work / "out" / "eval.json").is_file()


# ---- 2. language codes and texts on the library path -----------------------------------------------------------------


def long_rows(shared_data: Path, tmp_path: Path) -> dict[str, list]:
    """Long data (one row per id and language) of the real first XQuAD-R article in en, de, es."""
    from hybridbatch.data.lookup import load_corpus

    corpus = load_corpus(str(first_articles(shared_data, tmp_path / "xq")), split=None)
    rows: dict[str, list] = {"id": [], "lang": [], "query": [], "positive": []}
    for qid, by in corpus.pairs().items.items():
        for lang, it in sorted(by.items()):
            for k, v in zip(rows, (qid, lang, it.query, it.positive), strict=True):
                rows[k].append(v)
    return rows


def test_pairs_from_long_normalises_codes_as_the_readers_do(shared_data, tmp_path):
    from datasets import Dataset

    from hybridbatch.sampling import pairs_from_long

    rows = long_rows(shared_data, tmp_path)
    spelled = {"en": ["en", "EN", "en-US", "eng", "English"], "de": ["de", "DE", "de-AT", "deu"], "es": ["es"]}
    mixed = dict(rows, lang=[spelled[lang][i % len(spelled[lang])] for i, lang in enumerate(rows["lang"])])
    plain, relabelled = pairs_from_long(Dataset.from_dict(rows)), pairs_from_long(Dataset.from_dict(mixed))
    assert relabelled.to_dict() == plain.to_dict()  # the very same pairs: three languages, not eleven
    assert sorted(set(relabelled["query_lang"])) == ["de", "en", "es"]
    n_ids = len(set(rows["id"]))
    assert len(plain) == n_ids * 9  # every id in all 3 languages: 3 x 3 (query, passage) language pairs
    # 'EN' beside 'en' for one id is one language given twice, as in a file
    twice = dict(rows, lang=["EN" if i == 1 else lang for i, lang in enumerate(rows["lang"])])
    assert rows["lang"][:2] == ["de", "en"] and rows["id"][0] == rows["id"][1]
    twice["lang"][0] = "en"
    with pytest.raises(UsageError) as e:
        pairs_from_long(Dataset.from_dict(twice))
    assert str(e.value) == f"long data: row 1 repeats (id, lang) = ({rows['id'][0]!r}, 'en') (first at row 0)"


def test_pairs_from_long_refuses_unknown_codes_and_blank_texts(shared_data, tmp_path):
    from datasets import Dataset

    from hybridbatch.sampling import pairs_from_long

    rows = long_rows(shared_data, tmp_path)
    bad = {k: list(v) for k, v in rows.items()}
    bad["lang"][2], bad["lang"][4] = None, "xx"
    bad["query"][5], bad["positive"][7] = "   ", None
    with pytest.raises(DataError) as e:
        pairs_from_long(Dataset.from_dict(bad))
    assert [str(p) for p in e.value.problems] == [
        "long data: row 2, column 'lang': no language code (None)",
        "long data: row 4, column 'lang': unknown language code 'xx': use an ISO 639-1 code (de), an ISO 639-3 code "
        "(deu), an English name (german) or a region form (de-AT)",
        "long data: row 5, column 'query': blank text ('   ')",
        "long data: row 7, column 'positive': expected a string, got NoneType (None)",
    ]
    assert str(e.value).endswith("(and 3 more problems)")


def test_sampler_warns_naming_a_language_with_one_row(shared_data, tmp_path):
    from datasets import Dataset

    from hybridbatch.sampling import HybridSampler, XXSampler, pairs_from_long

    rows = long_rows(shared_data, tmp_path)
    keep = [i for i, lang in enumerate(rows["lang"]) if lang != "es" or rows["id"][i] == rows["id"][0]]
    one_es = {k: [v[i] for i in keep] for k, v in rows.items()}
    assert one_es["lang"].count("es") == 1
    pairs = pairs_from_long(Dataset.from_dict(one_es))
    for cls in (HybridSampler, XXSampler):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sampler = cls(pairs, batch_size=4, seed=1, world_size=1)
        assert [str(w.message) for w in caught if w.category is UserWarning] == [
            "language 'es' is dropped: its 1 question id(s) cannot fill a batch group of 4 pairs with distinct "
            "answers (batch size 4 x 1 process(es)); it is never trained on"]
        assert {d["option"] for d in sampler.dropped if "es" in d["option"]} >= {"xx es-es"}
        langs = {(p.qlang, p.plang) for p in (sampler.plan(g) for g in range(sampler.num_batches))}
        assert all("es" not in pair for pair in langs)
    with warnings.catch_warnings(record=True) as caught:  # the full data: every language fills its batches
        warnings.simplefilter("always")
        HybridSampler(pairs_from_long(Dataset.from_dict(rows)), batch_size=4, seed=1, world_size=1)
    assert [w for w in caught if w.category is UserWarning] == []


# ---- 3. config files: every field type-checked, file and field named -------------------------------------------------


@pytest.mark.parametrize("name,text,message", [
    ("c.toml", 'batch_size = "4"\n', "c.toml: batch_size: expected an integer, got a string ('4')"),
    ("c.yaml", 'alpha: "0.5"\n', "c.yaml: alpha: expected a number, got a string ('0.5')"),
    ("c.toml", "[train]\nsymmetric = 1\n", "c.toml: symmetric: expected true or false, got an integer (1)"),
    ("c.yaml", "data: [xquad-r, 3]\n",
     "c.yaml: data: expected a string or a list of strings, got a list (['xquad-r', 3])"),
    ("c.yaml", "max_steps: 2.5\n", "c.yaml: max_steps: expected an integer, got a number (2.5)"),
    ("c.toml", "sampler = 5\n", "c.toml: sampler: expected a string, got an integer (5)"),
])
def test_train_config_file_with_a_wrong_type(work, name, text, message):
    (work / name).write_text(text, encoding="utf-8")
    before = snapshot(work)
    code, out = run_cli(["train", "--config", name, "--out", "out"])
    assert_one_readable_error(code, out, message)
    assert snapshot(work) == before


def test_every_config_field_is_type_checked(tmp_path):
    """Each field of TrainConfig, given a value of the wrong type in a TOML file: one UsageError naming the file
    and the field (strings where numbers or booleans belong, a number where a string or list belongs)."""
    path = tmp_path / "c.toml"
    for f in dataclasses.fields(TrainConfig):
        wrong = "1" if f.type.replace(" ", "").removesuffix("|None") in ("int", "float", "bool") else 1
        path.write_text(f"{f.name} = {json.dumps(wrong)}\n", encoding="utf-8")
        with pytest.raises(UsageError) as e:
            TrainConfig.from_file(path)
        assert str(e.value).startswith(f"{path}: {f.name}: expected "), (f.name, str(e.value))
    with pytest.raises(UsageError) as e:
        TrainConfig(batch_size="4").validate()  # a config built in code is checked the same way
    assert str(e.value) == "setting batch_size: expected an integer, got a string ('4')"


# ---- 4. non-finite or non-positive numbers, refused before anything is written ---------------------------------------


@pytest.mark.parametrize("flags,message", [
    (["--lr", "inf"], "learning rate must be positive and finite, got inf"),
    (["--lr", "nan"], "learning rate must be positive and finite, got nan"),
    (["--lr", "0"], "learning rate must be positive and finite, got 0.0"),
    (["--scale", "inf"], "loss scale must be positive and finite, got inf"),
    (["--scale", "-1"], "loss scale must be positive and finite, got -1.0"),
    (["--epochs", "inf"], "epochs must be positive and finite, got inf"),
    (["--weight-decay", "nan"], "weight decay must be >= 0 and finite, got nan"),
    (["--eval-steps", "0"], "eval steps must be at least 1, got 0"),
    (["--eval-steps", "-2"], "eval steps must be at least 1, got -2"),
    (["--save-steps", "0"], "save steps must be at least 1, got 0"),
    (["--config", "warmup.toml"], "warmup ratio must be in [0, 1), got inf"),
    (["--config", "warmup-neg.toml"], "warmup ratio must be in [0, 1), got -0.1"),
])
def test_train_refuses_bad_numbers_before_writing(work, tiny_model, pairs_file, flags, message):
    (work / "warmup.toml").write_text("warmup_ratio = inf\n", encoding="utf-8")
    (work / "warmup-neg.toml").write_text("warmup_ratio = -0.1\n", encoding="utf-8")
    before = snapshot(work)
    code, text = run_cli(["train", "--model", str(tiny_model), "--data", str(pairs_file), "--out", "run",
                          "--batch-size", "4", "--max-steps", "2", "--no-progress", *flags])
    assert_one_readable_error(code, text, message)
    assert snapshot(work) == before and not (work / "run").exists()


# ---- 5. an --out that cannot be created ------------------------------------------------------------------------------


def test_train_out_that_cannot_be_created(work, tiny_model, pairs_file):
    long_name = "r" * 300
    limit = os.pathconf(work, "PC_NAME_MAX")
    cases = [([str(work / long_name)], f"--out {work / long_name}: the name {'r' * 20}... is 300 bytes long; this "
                                       f"filesystem allows at most {limit}")]
    if Path("/proc/self").exists():
        cases.append((["/proc/x"], "--out /proc/x: cannot create a folder in /proc (No such file or directory)"))
    before = snapshot(work)
    for (out,), message in cases:
        code, text = run_cli(["train", "--model", str(tiny_model), "--data", str(pairs_file), "--out", out,
                              "--batch-size", "4", "--max-steps", "1", "--no-progress"])
        assert_one_readable_error(code, text, message)
    assert snapshot(work) == before


def test_check_writable_dir_creates_nothing(tmp_path):
    from hybridbatch.outputs import check_writable_dir

    (tmp_path / "a-file").write_text("x")
    assert check_writable_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no probe left, nothing created
    with pytest.raises(UsageError) as e:
        check_writable_dir(tmp_path / "a-file" / "run", "--out")
    assert str(e.value) == f"--out {tmp_path / 'a-file' / 'run'}: {tmp_path / 'a-file'} is a file, not a folder"


# ---- 6. --resume into a folder that does not exist -------------------------------------------------------------------


def test_resume_into_a_missing_folder_says_so(tmp_path, tiny_model, pairs_file):
    """A real process (pytest's log capture would swallow the line in-process): the warning is one stderr line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-m", "hybridbatch.cli", "train", "--model", str(tiny_model), "--data",
                        str(pairs_file), "--out", "run", "--batch-size", "4", "--max-steps", "1", "--val-fraction",
                        "0", "--no-progress", "--device", "cpu", "--resume"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = "run: --resume, but there is no run to resume (the folder is missing or empty): starting afresh"
    assert r.stderr.splitlines().count(line) == 1, r.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "train.json").read_text())["steps"] == 1


# ---- 7. data check: a copied language file, rotated ids --------------------------------------------------------------


def test_data_check_warns_on_a_copied_language_and_on_rotated_ids(work, shared_data):
    folder = work / "xq"
    folder.mkdir()
    for lang in XQUAD:
        shutil.copy(shared_data / "xquad-r" / f"{lang}.json", folder / f"{lang}.json")
    shutil.copy(shared_data / "xquad-r" / "en.json", folder / "de.json")  # de.json == en.json
    es = json.loads((folder / "es.json").read_text(encoding="utf-8"))
    qas = [qa for art in es["data"] for par in art["paragraphs"] for qa in par["qas"]]
    ids = [qa["id"] for qa in qas]
    for qa, qid in zip(qas, ids[1:] + ids[:1], strict=True):  # every id moves to the next question
        qa["id"] = qid
    (folder / "es.json").write_text(json.dumps(es, ensure_ascii=False), encoding="utf-8")
    moved = qas[0]["id"]  # the first question now carries the second question's id: every id moved a place
    code, text = run_cli(["data", "check", str(folder)])
    assert code == 0, text
    lines = [ln for ln in text.splitlines() if ": warning: " in ln]
    assert lines == [
        f"{folder / 'de.json'}: questions: warning: 1190 of the 1190 questions it shares with en.json have the very "
        "same text there: is one file a copy of the other language's?",
        f"{folder / 'es.json'}: question ids: warning: 1190 of 1190 question ids have their answer in another "
        f"paragraph, or at another place in it, than in the other languages (first: {moved!r}, question 1 of "
        "data[0].paragraphs[0] here, question 2 of data[0].paragraphs[0] in 2 other language(s)): are the ids "
        "rotated or shuffled?",
    ]
    assert text.splitlines()[-1] == f"ok: no errors, 2 warnings in {folder}"


def test_real_xquad_r_is_consistent(shared_data):
    """The control: all 11 real XQuAD-R files, no copy and no misplaced id (3 of 1190 el / en questions are the
    same text: below the copy threshold)."""
    from hybridbatch.data.consistency import consistency_warnings, identical_texts
    from hybridbatch.data.lookup import lareqa_files
    from hybridbatch.data.qa import read_lareqa

    files = lareqa_files(shared_data / "xquad-r")
    corpus = read_lareqa(files, "xquad-r")
    assert len(corpus.languages) == 11
    assert consistency_warnings(corpus, files) == []
    by_id = corpus.by_id()
    assert sum(d["el"].text == d["en"].text for d in by_id.values()) == 3
    assert identical_texts(corpus, files) == []
