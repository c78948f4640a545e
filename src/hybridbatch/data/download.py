"""Download: pinned upstream commits, sha256 per file, atomic writes, skip files already good.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridbatch.data.roots import data_root
from hybridbatch.data.validation import ValidationReport
from hybridbatch.errors import HybridBatchError, UsageError
from hybridbatch.provenance import atomic_path, sha256_file

# ---------------------------------------------------------------------------------------------------------------------
# Download: pinned upstream commits, sha256 per file, atomic writes, skip files already good.

RAW_BASE = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class RemoteFile:
    """One upstream file: its path in the repository, its size and sha256 (of the exact upstream bytes)."""

    path: str
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    """A dataset's pinned origin: GitHub `owner/repo` at `commit`, and its files."""

    repo: str
    commit: str
    license: str
    files: tuple[RemoteFile, ...]

    def url(self, f: RemoteFile, base: str = RAW_BASE) -> str:
        return f"{base.rstrip('/')}/{self.repo}/{self.commit}/{f.path}"


def _files(prefix: str, table: str) -> tuple[RemoteFile, ...]:
    out = []
    for row in table.split(";"):
        name, size, sha = row.split()
        out.append(RemoteFile(f"{prefix}{name}", int(size), sha))
    return tuple(out)


SOURCES: dict[str, Source] = {
    "xquad-r": Source(
        "google-research-datasets/lareqa", "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c", "CC BY-SA 4.0",
        _files("xquad-r/", (
            "ar.json 2234875 c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d;"
            "de.json 732156 16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949;"
            "el.json 2810127 163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6;"
            "en.json 628651 7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe;"
            "es.json 746335 f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de;"
            "hi.json 2408404 ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872;"
            "ru.json 2764904 7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1;"
            "th.json 2618544 c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4;"
            "tr.json 827827 f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94;"
            "vi.json 1132303 e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995;"
            "zh.json 959291 80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed"
        )),
    ),
    "tydiqa-goldp": Source(
        "sagorbrur/tydiqa-language-specific", "55c6649475e0765f717a6d32a173c6664096a8ce", "Apache-2.0",
        tuple(
            RemoteFile(f"language_data/{f.name.split('_')[0]}/{f.name}", f.size, f.sha256)
            for f in _files("", (
                "arabic_tydiqa_dev.json 1096961 a53ebb2db172c0e391d2fe499c43ba342d33992cf7bb28733b47147a2057574c;"
                "bengali_tydiqa_dev.json 239642 548ef1e26217481aca1a304713350bc4bebb8c0084092ca1c5520a067dede71c;"
                "english_tydiqa_dev.json 399934 0a79feb66a13d4e5df8a5e1e8ad40b4a2d6622be6816c2914863b495cf0ee3e4;"
                "english_tydiqa_train.json 3170735 ab4317b6f2fcf3367e8890226631deaf3af283ffb5a878fc54ebb0d6b2afe377;"
                "finnish_tydiqa_dev.json 649804 df0bbe1dc355b33e003728f7408ed47f3403ec3ba50eca35ea58f5c98930cdee;"
                "indonesian_tydiqa_dev.json 494484 f77d7d241ae86fe87d2ae2224bd4f52c50d47a380d3febd39a4e379d37789432;"
                "korean_tydiqa_dev.json 255157 9bbdc6aa944f7c632eb4b56f9e291d178a4a6c18645c84c2da52604a84a14ed0;"
                "korean_tydiqa_train.json 1564116 59146463f1f6017dba48bed9ca16148d31d34692172b59ba65859e8e327ee0c0;"
                "russian_tydiqa_dev.json 1101142 bcc3d154713c26bd9a6c735087c76cb45f2d39e01b95a0d07ba07503c8737e85;"
                "swahili_tydiqa_dev.json 290638 0846933d9b60f1f7532b32641efccecc9ada29bafef5a87c26e740046c858ac9;"
                "swahili_tydiqa_train.json 1613532 dfeedb0903de73e3cca9294358dd399dcc4d642805a72871a364814ba1dcb27d;"
                "telugu_tydiqa_dev.json 1089682 373255d29d0bbaec24153041ceab057ea99a472fd18eaa3514233abab2074920"
            ))
        ),
    ),
    "tatoeba-laser": Source(
        "facebookresearch/LASER", "74bc6ae7ffb7cba670fe0f428d0ede9f666fb821", "CC BY 2.0 FR (Tatoeba)",
        _files("data/tatoeba/v1/", (
            "tatoeba.ara-eng.ara 43582 e67a0ae072b79cd9e8eb09f166c3bc0b23488d39f5720f2ee0a8350ae17b719f;"
            "tatoeba.ara-eng.eng 29068 3c11838c963f598a52dcf2f452b666353538257001db5c59c3a5f54a999b336b;"
            "tatoeba.cmn-eng.cmn 33410 965d033966fcd186c89741ad49ab4b0a0b2bbd33e02666635ff3b2be23c1ac1f;"
            "tatoeba.cmn-eng.eng 35521 29ba36232488f5806aceccac57c59c5e750ddd08edb40eef417e3ada9ff9a239;"
            "tatoeba.deu-eng.deu 57121 edfa6f75a42554df388f45891735d5e4214158a99def4b73b5908af4a3054551;"
            "tatoeba.deu-eng.eng 48446 eb9cc83a42f2c4b22f310d05311207e41abb56c2a084666cac3ee0f84d2d0b84;"
            "tatoeba.ell-eng.ell 52202 4fb3d3d30bdafd15100dfad5c4680f8f2ed5ca87ed0a6122e2fe2aa21fee65e8;"
            "tatoeba.ell-eng.eng 26759 1f630710e718e2f85a4e757d3c7f3d6e78ded0b25c99653b4c552138318d9ffe;"
            "tatoeba.hin-eng.eng 34090 adfce2269a55dbac69b25c0f4f6eb89e0f9383165485925a2e042e61b9480562;"
            "tatoeba.hin-eng.hin 88468 15e4fb0a394be4438319f1d6955d1aea226e2a8c5ad38798b23b76ae43d742ed;"
            "tatoeba.ron-eng.eng 34494 1064c638220dc9de0868baee327e091ae815214674295b62b13448ef442c448d;"
            "tatoeba.ron-eng.ron 37990 ad5c4a9f4920718203534d1f8271e27021b9af54b2c908dec66851d4dc681fd4;"
            "tatoeba.rus-eng.eng 33650 7b26f52d6085b7c4944d6f5f6f5b6e1932085b42112f1444db515ce59e878fb8;"
            "tatoeba.rus-eng.rus 58822 446ff2cae66053c2277d9735b2c2df6b786cae258385f7ade7bed68d8835c6a0;"
            "tatoeba.spa-eng.eng 34776 89e4470f4572040b1ca94b3edad97dcd8bd2f0141f072e12933b8659dadf917d;"
            "tatoeba.spa-eng.spa 37490 f9628cea40481e8251f0999718bd893cff0f261752f5e526b3bc20284e2ca018;"
            "tatoeba.tha-eng.eng 18439 2881c82d2c5fa59cf0a68bc9e012f5e0b0a716f7357cbecf77c247efc2fd7294;"
            "tatoeba.tha-eng.tha 44759 65c7b3c01a56a1ac8971e72e0ea8e74a027718dc84044d8802c0ab36395a3156;"
            "tatoeba.tur-eng.eng 34278 a768df7dd3d1344f872a458b32c3a65e24f8381826ccb16ba6677426176c8121;"
            "tatoeba.tur-eng.tur 37607 1ffa0acc006018b3105abda41a4d4ca42f3c122964a49b71793546367b079a86;"
            "tatoeba.vie-eng.eng 38686 a1f60bd8ae6c42224a4c050d2aa1ff4242d14827d64d7831e96ecf2b2c367f5f;"
            "tatoeba.vie-eng.vie 52721 6dbb02d778b0bfc8678cd85f87db76de55dd7e409a26fe32ad42d50e0f1fff77"
        )),
    ),
    "xlinghealth": Source(
        "claws-lab/XLingEval", "75ac9c8c5345b5d003bdcdf13a2b0fdcfeddec2a",
        "Apache-2.0 (repository); LiveQA / MedicationQA research data",
        _files("XLingHealth_Dataset/", (
            "LiveQA.xlsx 623458 f26fa965ded22ac6078d8819a466590ed8ff044b02b622673d9104631eaa5be1;"
            "MedicationQA.xlsx 850300 8c70d8ba0be8732d879e227ef5048f4dfd65b340ee583e0635b94897265f6319"
        )),
    ),
}

MKQA_NOTE = (
    "mkqa cannot be downloaded as it is read here: its upstream file is the MIA 2022 zip "
    "(github.com/mia-workshop/MIA-Shared-Task-2022 at ea2491a3, data/eval/mkqa_dev.zip), converted to one JSON line "
    "per question and language ({pid, lang, question, answers, split}). Put that mkqa*.jsonl in DIR/mkqa/ and use "
    "--data-dir DIR, or pass the file itself."
)

MLQA_R_NOTE = (
    "MLQA-R cannot be downloaded: the pinned LAReQA commit ships only XQuAD-R (its README lists one folder), and "
    "MLQA-R files existed only in unreleased development commits with no license statement. Build it (LAReQA JSON, "
    "one <lang>.json per language) and point at the folder: load_corpus(FOLDER) or --data-dir DIR with DIR/mlqa-r/."
)


def download(
    name: str, data_dir: Path | str | None = None, *, mirror: str | None = None, progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download a dataset's pinned files into `data_root(data_dir)/<name>/`; return that folder.

    Each file goes to a temp file beside its destination, is checked against the sha256 table, then renamed into
    place (atomic); files already present with the right checksum are skipped, so an interrupted download resumes
    where it stopped. `mirror` replaces https://raw.githubusercontent.com (same `<owner>/<repo>/<commit>/<path>`
    layout; `file://` works). Checksum mismatches are collected into one DataError; a network failure stops at once
    with a message saying how to use a local copy instead."""
    if name in ("mlqa-r", "mkqa"):
        raise UsageError(MLQA_R_NOTE if name == "mlqa-r" else MKQA_NOTE)
    if name not in SOURCES:
        raise UsageError(f"unknown dataset {name!r}; downloadable: {', '.join(SOURCES)}")
    src = SOURCES[name]
    dest_dir = data_root(data_dir) / name
    base = mirror or os.environ.get("HYBRIDBATCH_MIRROR") or RAW_BASE
    try:  # before any network access: a --data-dir that is a file or read-only is the user's to fix, not "offline"
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{dest_dir}: cannot create the dataset folder ({e.strerror or e}); pass --data-dir DIR or "
                         f"set $HYBRIDBATCH_DATA to a writable folder") from None
    todo = [f for f in src.files if not ((dest_dir / f.name).is_file() and sha256_file(dest_dir / f.name) == f.sha256)]
    rep = ValidationReport()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task(f"{name}: {len(todo)} of {len(src.files)} files", total=sum(f.size for f in todo))
        for f in todo:
            url = src.url(f, base)
            dest = dest_dir / f.name
            try:
                _fetch(url, dest, f, rep, lambda n: bar.advance(task, n), timeout)
            except urllib.error.HTTPError as e:
                if dest_dir.is_dir() and not any(dest_dir.iterdir()):
                    dest_dir.rmdir()
                raise HybridBatchError(f"cannot download {name}: HTTP {e.code} {e.reason} for {url}") from None
            except (urllib.error.URLError, OSError) as e:
                if dest_dir.is_dir() and not any(dest_dir.iterdir()):
                    dest_dir.rmdir()  # an empty folder would hide the "not found, download it" hint later
                reason = getattr(e, "reason", None) or e
                raise HybridBatchError(
                    f"cannot download {name} from {url}: {reason}. If this machine is offline, copy the {name}/ folder "
                    f"from a machine that has it (or run `hybridbatch data download {name}` there) and point at its "
                    f"parent with --data-dir DIR or HYBRIDBATCH_DATA=DIR."
                ) from None
    if rep.problems and not any(dest_dir.iterdir()):
        dest_dir.rmdir()  # nothing was saved: leave no empty folder behind
    rep.raise_if_any()
    (dest_dir / "SOURCE.txt").write_text(
        f"https://github.com/{src.repo} at commit {src.commit}\nlicense: {src.license}\n"
        + "".join(f"{f.sha256}  {f.name}\n" for f in src.files), encoding="utf-8")
    return dest_dir


def _fetch(url: str, dest: Path, f: RemoteFile, rep: ValidationReport, advance: Any, timeout: float) -> None:
    """Stream `url` into a temp file, hashing as it goes; rename into `dest` only if the sha256 matches."""
    h = hashlib.sha256()

    class _Mismatch(Exception):
        pass

    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                h.update(chunk)
                advance(len(chunk))
            out.close()
            if h.hexdigest() != f.sha256:
                raise _Mismatch
    except _Mismatch:
        rep.error(dest, url, f"sha256 mismatch: expected {f.sha256}, got {h.hexdigest()}; the download is corrupt "
                             f"or upstream changed, so the file was not saved")
