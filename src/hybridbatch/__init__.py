"""hybridbatch: hybrid-batch training and LAReQA evaluation for multilingual dense retrievers.

The library entry points (docs/LIBRARY.md) are importable from the top level - `hybridbatch.HybridSampler`,
`hybridbatch.pairs_from_long`, `hybridbatch.PairCollator`, `hybridbatch.LAReQAEvaluator` - loaded on first use so
that `import hybridbatch` stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {
    "LAReQAEvaluator": "hybridbatch.evaluation.evaluator",
    **{name: "hybridbatch.sampling" for name in (
        "HybridSampler", "HybridMultiSampler", "XXSampler", "XYSampler", "EnglishSampler", "MixedSampler",
        "RandomSampler", "PairCollator", "ProportionalGroupSampler", "pairs_from_long", "pair_dataset",
        "make_sampler")},
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hybridbatch' has no attribute {name!r}")
