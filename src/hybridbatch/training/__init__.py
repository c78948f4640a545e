"""Training: config, the named steps of `train`, trainer classes, loss, checkpoint rule, output folder and resume.
`hybridbatch.train` (experiments/training.py) is this `train` with the LAReQA checkpoint evaluator passed in."""

from hybridbatch.training.adversarial import LanguageAdversarialLoss  # noqa: F401
from hybridbatch.training.config import LOSS_SCALE, LOSSES, TrainConfig  # noqa: F401
from hybridbatch.training.consistency_loss import ConsistencyRankingLoss  # noqa: F401
from hybridbatch.training.hf import HEAD_FILE, HeadGradientSync, HybridTrainer, ProgressCallback  # noqa: F401
from hybridbatch.training.inputs import (  # noqa: F401
    RunData,
    add_row_labels,
    build_datasets,
    load_pairsets,
    plan_steps,
    prepare_data,
    split_validation,
)
from hybridbatch.training.losses import base_loss, loss_record, make_loss  # noqa: F401
from hybridbatch.training.model import (  # noqa: F401
    freeze_unused_pooler,
    freeze_word_embeddings,
    load_model,
    load_st_model,
)
from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss  # noqa: F401
from hybridbatch.training.run_dir import batch_log_path, check_out_dir, latest_checkpoint  # noqa: F401
from hybridbatch.training.selection import HeldOutEvaluator, Selection, build_selection  # noqa: F401
from hybridbatch.training.trainer import (  # noqa: F401
    build_trainer,
    sampler_factory,
    train,
    training_arguments,
)
