"""`LanguageCentring`: a sentence-transformers module that subtracts the mean embedding of the input's language.

Per-language centring (analysis.centring, docs/DEBIAS.md) removes each language's offset from its embeddings:
x -> x - mu_lang(x). A model folder does not know an input's language, so the module tells it from the embedding
itself: the language whose mean is nearest in cosine (nearest-centroid language identification; its accuracy on the
estimation sentences is recorded in debias.json). Shift (Jang et al. 2026, arXiv 2606.18801) subtracts a relative
language vector at indexing time, where each document's language is known; that known-language form is
`analysis.centring.centre_embeddings`.

The module is a plain `sentence_transformers.base.modules.Module` (config + safetensors weights). Since
sentence-transformers 6, a module class outside its own namespace loads only with `trust_remote_code=True`: the
class is this installed package's, not code in the folder, and `models.loading.load_model` passes the flag for
folders whose only non-sentence-transformers modules are this one (`needs_trust`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from sentence_transformers.base.modules.module import Module
from torch import Tensor

CLASS_REF = f"{__name__}.LanguageCentring"


class LanguageCentring(Module):
    """x -> x - means[l(x)], l(x) = argmax_l cos(x, means[l]) (the nearest language mean). `means` `(L, d)`, one row
    per language of `languages`, estimated on unit-norm embeddings (so put a Normalize before it, and one after to
    keep scores cosines)."""

    config_keys: list[str] = ["languages", "dim"]

    def __init__(self, languages: list[str], dim: int, means: Tensor | None = None) -> None:
        super().__init__()
        self.languages = list(languages)
        self.dim = int(dim)
        m = torch.zeros(len(self.languages), self.dim) if means is None else torch.as_tensor(means).float()
        if m.shape != (len(self.languages), self.dim):
            raise ValueError(f"means must be ({len(self.languages)}, {self.dim}), got {tuple(m.shape)}")
        self.register_buffer("means", m.contiguous())

    def identify(self, x: Tensor) -> Tensor:
        """Index of the nearest language mean (cosine) for each row of x."""
        unit = torch.nn.functional.normalize(self.means, dim=1)
        return (x @ unit.T.to(x.dtype)).argmax(dim=1)

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        x = features["sentence_embedding"]
        features["sentence_embedding"] = x - self.means.to(x.dtype)[self.identify(x)]
        return features

    def get_embedding_dimension(self) -> int:
        return self.dim

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None, local_files_only: bool = False,
             **kwargs: Any) -> LanguageCentring:
        hub = {"subfolder": subfolder, "token": token, "cache_folder": cache_folder, "revision": revision,
               "local_files_only": local_files_only}
        config = cls.load_config(model_name_or_path=model_name_or_path, **hub)
        model = cls(**{k: v for k, v in config.items() if k in cls.config_keys})
        return cls.load_torch_weights(model_name_or_path=model_name_or_path, model=model, **hub)


def needs_trust(folder: Path | str) -> bool:
    """Whether a local model folder holds a LanguageCentring module and no other class outside
    sentence-transformers (so `trust_remote_code=True` only admits this package's own module)."""
    path = Path(folder) / "modules.json"
    if not path.is_file():
        return False
    try:
        types = [str(m.get("type", "")) for m in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, AttributeError):
        return False
    foreign = [t for t in types if not t.startswith("sentence_transformers.")]
    return bool(foreign) and all(t == CLASS_REF for t in foreign)
