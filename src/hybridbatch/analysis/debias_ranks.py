"""Rank sweep of post-hoc debiasing on held-out LAReQA articles, encoding once.

Why it is exact to project stored embeddings instead of re-encoding with each debiased model: the debiased model is
the base model followed by Normalize, a linear map P = I - U_r U_r^T and Normalize again. The base embeddings are
already unit vectors, so normalise(P e) is what the debiased folder computes; `check_equivalence` encodes a sample
with a real debiased folder (loaded by plain `SentenceTransformer`) and records the largest difference.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.analysis.centring import centre_corpus
from hybridbatch.analysis.debias import (
    LanguageSubspace,
    TextSource,
    append_projection,
    check_rank,
    debias_info,
    encode_sentences,
    estimate_lir,
    estimate_lsar,
    remove_subspace,
    source_texts,
)
from hybridbatch.analysis.significance import compare_seeded, load_run
from hybridbatch.data.lookup import load_corpus
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.encode import Embeddings, encode_corpus, encode_texts
from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings
from hybridbatch.evaluation.model_info import model_identity
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.results import Documents, write_eval_numbers
from hybridbatch.evaluation.runtimes import DEFAULT_ENCODER
from hybridbatch.models.loading import load_model
from hybridbatch.provenance import Progress, Timer, provenance, write_json
from hybridbatch.outputs import OutFolder, check_out_folder

Log = Callable[[str], None]
# What `hybridbatch debias --ranks` writes into its --out: one eval folder per configuration (`_score_configs`), the
# subspace, sweep.json and the report stage's sweep.md (`check_out_folder` refuses an --out holding anything else)
DEBIAS_SWEEP_OUT = OutFolder(
    "debias --ranks", "a debias sweep", "sweep.json, sweep.md, debias_subspace.npz and one eval folder per "
    "configuration (base/, lsar-r<k>/, lir-r<k>/, centre/, centre-id/)",
    ("sweep.json", "sweep.md", "debias_subspace.npz", "base/", "lsar-r*/", "lir-r*/", "centre/", "centre-id/"))


def parse_ranks(spec: str | Sequence[int] | None) -> list[int]:
    """'0,1,2,4' -> [0, 1, 2, 4] (sorted, unique); an empty spec -> []."""
    if spec is None:
        return []
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        try:
            ranks = [int(p) for p in parts]
        except ValueError:
            raise UsageError(f"ranks must be comma-separated whole numbers like 0,1,2,4, not {spec!r}") from None
    else:
        ranks = [int(r) for r in spec]
    return sorted(set(ranks))


def project_corpus(emb: dict[str, np.ndarray], basis: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Project every language's embeddings: one basis for all (LSAR) or one per language (LIR; a language without
    its own components is left as it is)."""
    out = {}
    for lang, X in emb.items():
        U = basis.get(lang) if isinstance(basis, dict) else basis
        out[lang] = remove_subspace(X, U) if U is not None and U.size else np.asarray(X, dtype=np.float32)
    return out


def check_equivalence(model: Any, sub: LanguageSubspace, rank: int, q_texts: list[str], c_texts: list[str],
                      q_emb: np.ndarray, c_emb: np.ndarray, batch_size: int = 32) -> dict[str, Any]:
    """Save a debiased folder at `rank`, load it with plain SentenceTransformer, encode the sample and compare with
    the projected base embeddings (which the sweep scores): max |difference| and min cosine."""
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory(prefix="debias-check-") as tmp:
        append_projection(model, sub.projection(rank)).save(tmp)
        loaded = SentenceTransformer(tmp, device=str(model.device))  # the base model's device: same kernels, same numbers
        loaded.max_seq_length = model.max_seq_length
        direct_q = encode_texts(loaded, q_texts, "query", batch_size=batch_size)
        direct_c = encode_texts(loaded, c_texts, "passage", batch_size=batch_size)
    basis = sub.basis_for(rank)
    proj_q, proj_c = remove_subspace(q_emb, basis), remove_subspace(c_emb, basis)
    diff = max(float(np.abs(direct_q - proj_q).max()), float(np.abs(direct_c - proj_c).max()))
    cos = min(float(np.min(np.sum(direct_q * proj_q, axis=1))), float(np.min(np.sum(direct_c * proj_c, axis=1))))
    return {"rank": rank, "n_queries": len(q_texts), "n_candidates": len(c_texts), "max_abs_diff": diff,
            "min_cosine": cos, "loaded_modules": [type(m).__name__ for m in loaded]}


def _row(name: str, method: str, rank: int, body: dict[str, Any]) -> dict[str, Any]:
    s = body["summary"]
    return {"name": name, "method": method, "rank": rank, "mono_map": s["mono"]["map"],
            "cross_map": s["cross"]["map"], "multi_map": s["multi"]["map"], "mono_r1": s["mono"]["r1"],
            "multi_r10": s["multi"]["r10"], "bias": s["multi"]["bias"], "max_rank": s["multi"].get("max_rank"),
            "complete10": s["multi"].get("complete10")}


def _check_ranks(ranks: Sequence[int], lir_ranks: Sequence[int], src: TextSource, dim: int | None) -> None:
    """LSAR ranks against the languages (and the dimension once known); LIR ranks against both and the fewest
    sentences of a language. `dim=None`: before any model is loaded."""
    if not ranks:
        raise UsageError("give at least one rank to sweep, e.g. --ranks 0,1,2,4,8,10")
    for r in ranks:
        check_rank(r, len(src.sentences), r + 1 if dim is None else dim)
    if dim is None:
        if lir_ranks and min(lir_ranks) < 0:
            raise UsageError(f"LIR ranks must be >= 0, not {min(lir_ranks)}")
        return
    fewest = min(len(v) for v in src.sentences.values())
    for r in lir_ranks:
        if r >= dim or r > fewest:
            raise UsageError(f"LIR rank {r} must be below the dimension {dim} and at most the fewest sentences "
                             f"of a language ({fewest})")


def _transformed(method: str, r: int, emb: Embeddings, sub: LanguageSubspace, lir: dict[str, np.ndarray]
                 ) -> Embeddings:
    """One configuration's embeddings: LSAR / LIR at rank r, or per-language centring with the known language
    ('centre') or the nearest mean's ('centre-id')."""
    if method in ("centre", "centre-id"):
        return centre_corpus(emb, sub.languages, sub.means, identify=method == "centre-id")
    return project_corpus(emb, sub.basis_for(r) if method == "lsar" else {k: v[:, :r] for k, v in lir.items()})


def _score_configs(test: Any, q_emb: Embeddings, c_emb: Embeddings, sub: LanguageSubspace,
                   lir: dict[str, np.ndarray], configs: Sequence[tuple[str, int]], out: Path,
                   info: dict[str, Any], timer: Timer, say: Log, documents: Documents | None,
                   ) -> list[dict[str, Any]]:
    """Each (method, rank) scored on the projected embeddings into its own eval folder; the sweep's rows."""
    rows = []
    for method, r in configs:
        centring = method.startswith("centre")
        name = method if centring else ("base" if r == 0 else f"{method}-r{r}")
        label = method if r or centring else "none"
        with timer("score"):
            res = evaluate_lareqa_embeddings(test, _transformed(method, r, q_emb, sub, lir),
                                             _transformed(method, r, c_emb, sub, lir))
        res.model = {**info["identity"], "debias": {"method": label, "rank": r}}
        res.settings.update({"data": info["data"], "split": "test", "context": False, "debias_method": method,
                             "debias_rank": r, "debias_source": info["source"].description,
                             "debias_source_checksum": info["source"].checksum, "debias_encoded_as": info["kind"],
                             "note": "embeddings encoded once by the base model, then projected (or centred) "
                                     "(see sweep.json: equivalence check)"})
        res.timings = {"encode_s": timer.seconds.get("encode_test", 0.0), **res.timings}
        write_eval_numbers(res, out / name, documents=documents)
        rows.append(_row(name, label, r, res.to_json()))
        if method == "lsar":  # how much of the spread of the language means this rank removes
            sv2 = sub.singular_values ** 2
            rows[-1]["means_spread_removed"] = float(sv2[:r].sum() / sv2.sum()) if sv2.sum() > 0 else 0.0
        say(f"{name:10s} mono {rows[-1]['mono_map']:.4f}  cross {rows[-1]['cross_map']:.4f}  multi "
            f"{rows[-1]['multi_map']:.4f}  bias {rows[-1]['bias']:.2f}")
    return rows


def _equivalence(model: Any, test: Any, sub: LanguageSubspace, rank: int, q_emb: Embeddings, c_emb: Embeddings,
                 *, check_sample: int, batch_size: int, encoder: str) -> dict[str, Any]:
    """`check_equivalence` on the first `check_sample` texts of the first language, against base embeddings from
    the same runtime the debiased folder runs in (torch)."""
    lang = test.languages[0]
    qs = [q.text for q in test.questions[lang][:check_sample]]
    cs = [c.text for c in test.candidates[lang][:check_sample]]
    if encoder == DEFAULT_ENCODER:  # torch: the runtime the debiased folder runs in
        base_q, base_c = q_emb[lang][:len(qs)], c_emb[lang][:len(cs)]
    else:  # the folder runs in torch: compare like with like
        base_q = encode_texts(model, qs, "query", batch_size=batch_size)
        base_c = encode_texts(model, cs, "passage", batch_size=batch_size)
    check = check_equivalence(model, sub, rank, qs, cs, base_q, base_c, batch_size=batch_size)
    check["language"] = lang
    return check


def sweep(model_name: str, ranks: Sequence[int], out_dir: Path | str, *, lir_ranks: Sequence[int] = (),
          centre: bool = False,
          texts: Sequence[Path | str] | None = None, data_dir: Path | str | None = None, data: str = "xquad-r",
          max_per_language: int | None = None, batch_size: int = 64, kind: str = "passage",
          cache_dir: Path | str | None = None, max_seq_length: int | None = None, check_sample: int = 32,
          log: Log | None = None, progress: Progress | None = None, encoder: str = DEFAULT_ENCODER,
          documents: Documents | None = None) -> dict[str, Any]:
    """Evaluate base + LSAR at each rank (and LIR at each of `lir_ranks`) on the held-out test articles with the
    LAReQA protocol; each configuration gets its own eval folder (eval.json, per_query.npz: `hybridbatch compare`
    works on any two). Encodes the subspace sentences and the test set once (the test set with `encoder`, an
    `evaluation.runtimes` runtime). `centre`: also per-language centring (analysis.centring), with the known
    language and with the nearest mean's. `documents` writes each folder's eval.md / pairs.png (the report stage's
    `report.evaluation.eval_documents`). Writes sweep.json; `report.debias.sweep_markdown` draws sweep.md from it."""
    say = log or (lambda _m: None)
    out = check_out_folder(out_dir, DEBIAS_SWEEP_OUT)
    ranks, lir_ranks = parse_ranks(ranks), parse_ranks(lir_ranks)
    timer = Timer()
    src: TextSource = source_texts(texts, data_dir, max_per_language)
    _check_ranks(ranks, lir_ranks, src, None)  # the languages are known before any model is loaded
    test = load_corpus(data, data_dir, split="test")
    with timer("load"):
        model = load_model(model_name, max_seq_length=max_seq_length)
    _check_ranks(ranks, lir_ranks, src, model.get_embedding_dimension())
    identity = model_identity(model, model_name)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    say(f"subspace sentences: {src.description}: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(
        src.sentences.items())))
    with timer("encode_subspace"):
        emb = encode_sentences(model, src, kind=kind, batch_size=batch_size, cache=cache, identity=identity,
                               progress=progress)
    with timer("encode_test"):
        options = EvalOptions(batch_size=batch_size, encoder=encoder, cache_dir=cache_dir)
        q_emb, c_emb = encode_corpus(model, test, options, cache=cache, identity=identity, progress=progress)
    with timer("estimate"):
        sub = estimate_lsar(emb)
        lir = estimate_lir(emb, max(lir_ranks)) if lir_ranks else {}
    out.mkdir(parents=True, exist_ok=True)
    sub.save(out / "debias_subspace.npz")
    configs = [("lsar", r) for r in ranks] + [("lir", r) for r in lir_ranks if r > 0]
    configs += [("centre", 0), ("centre-id", 0)] if centre else []
    info = {"identity": identity, "data": data, "source": src, "kind": kind}
    rows = _score_configs(test, q_emb, c_emb, sub, lir, configs, out, info, timer, say, documents)
    check = None
    check_rank_ = max((r for r in ranks if r > 0), default=0)
    if check_sample > 0 and check_rank_ > 0:
        with timer("check"):
            check = _equivalence(model, test, sub, check_rank_, q_emb, c_emb, check_sample=check_sample,
                                 batch_size=batch_size, encoder=encoder)
        say(f"equivalence (rank {check_rank_}, {check['language']}, {check['n_queries']} + "
            f"{check['n_candidates']} texts): max |debiased folder - projected| = {check['max_abs_diff']:.2e}")
    lsar_rows = [r for r in rows if r["method"] in ("lsar", "none")]
    best = max(lsar_rows, key=lambda r: (r["multi_map"], -r["rank"]))
    body = {
        "kind": "debias-sweep",
        "model": model_name,
        "dataset": test.name,
        "data_checksum": test.checksum,
        "rows": rows,
        "best_lsar_by_multi_map": best["name"],
        "subspace": {k: v for k, v in debias_info(sub, max(ranks), src, identity, kind, timer.seconds).items()
                     if k not in ("rank", "variance_share_removed", "modules_appended")},
        "lir_sentences_per_language": sub.counts if lir_ranks else None,
        "equivalence_check": check,
        "provenance": provenance(
            model=model_name, model_weights_sha256=identity["weights_sha256"],
            data={"name": test.name, "checksum": test.checksum, "split": "test",
                  "subspace_source": src.description, "subspace_checksum": src.checksum, "files": src.files},
            settings={"ranks": ranks, "lir_ranks": lir_ranks, "centre": centre, "kind": kind,
                      "max_per_language": max_per_language, "batch_size": batch_size,
                      "max_seq_length": model.max_seq_length, "encoder": encoder},
            timings=timer.seconds),
    }
    write_json(out / "sweep.json", body)
    return body


def versus_trained(debiased: Path | str, trained: Sequence[Path | str], *, n_boot: int = 2000, n_perm: int = 10000,
                   seed: int = 0) -> dict[str, Any]:
    """Is training still needed once debiasing is applied? B = trained runs (one eval folder per seed), A = one
    debiased eval folder (deterministic: no seed). `analysis.significance.compare_seeded`: paired bootstrap +
    randomisation test on the trained runs' seed-averaged per-query scores, and a two-level (seeds + questions) CI
    for mAP and bias, exactly as the paper preset's significance tables."""
    runs = [load_run(t) for t in trained]
    if not runs:
        raise UsageError("--versus needs at least one trained eval folder")
    cmp = compare_seeded([load_run(debiased)], runs, n_boot=n_boot, n_perm=n_perm, seed=seed)
    cmp["run_a"], cmp["run_b"] = str(debiased), [str(t) for t in trained]
    return cmp
