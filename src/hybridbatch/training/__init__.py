"""Training: config, the named steps of `train_model`, trainer classes, loss, checkpoint rule, output folder and
resume. `hybridbatch.train` (experiments/training.py) is `train_model` with the LAReQA checkpoint evaluator passed
in. `__all__` names what a user or a later stage needs."""

from hybridbatch.training.adversarial import LanguageAdversarialLoss
from hybridbatch.training.config import LOSSES, TrainConfig
from hybridbatch.training.consistency_loss import ConsistencyRankingLoss
from hybridbatch.training.hybrid_trainer import HybridTrainer, ProgressCallback
from hybridbatch.training.inputs import RunData, prepare_data
from hybridbatch.training.losses import make_loss
from hybridbatch.training.model import freeze_word_embeddings
from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss
from hybridbatch.training.run_dir import latest_checkpoint
from hybridbatch.training.selection import HeldOutEvaluator, Selection
from hybridbatch.training.trainer import build_trainer, train_model, training_arguments

__all__ = [
    "LOSSES", "TrainConfig", "train_model", "prepare_data", "RunData", "build_trainer", "training_arguments",
    "HybridTrainer", "ProgressCallback", "make_loss", "LanguageAdversarialLoss", "MultiPositiveRankingLoss",
    "ConsistencyRankingLoss", "HeldOutEvaluator", "Selection", "latest_checkpoint", "freeze_word_embeddings",
]
