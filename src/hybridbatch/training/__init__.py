"""Training: config, the named steps of `train`, trainer classes, loss, checkpoint rule, output folder and resume.
`hybridbatch.train` (experiments/training.py) is this `train` with the LAReQA checkpoint evaluator passed in."""

from hybridbatch.training.config import LOSS_SCALE, TrainConfig  # noqa: F401
from hybridbatch.training.hf import HybridTrainer, ProgressCallback  # noqa: F401
from hybridbatch.training.inputs import (  # noqa: F401
    RunData,
    build_datasets,
    load_pairsets,
    plan_steps,
    prepare_data,
    split_validation,
)
from hybridbatch.training.losses import make_loss  # noqa: F401
from hybridbatch.training.model import (  # noqa: F401
    freeze_unused_pooler,
    freeze_word_embeddings,
    load_model,
    load_st_model,
)
from hybridbatch.training.run_dir import batch_log_path, check_out_dir, latest_checkpoint  # noqa: F401
from hybridbatch.training.selection import HeldOutEvaluator, Selection, build_selection  # noqa: F401
from hybridbatch.training.trainer import (  # noqa: F401
    build_trainer,
    sampler_factory,
    train,
    training_arguments,
)
