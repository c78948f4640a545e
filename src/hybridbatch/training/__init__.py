"""Training: config, trainer, loss, checkpoints and resume."""

from hybridbatch.training.trainer import (  # noqa: F401
    LOSS_SCALE,
    TrainConfig,
    batch_log_path,
    check_out_dir,
    freeze_unused_pooler,
    freeze_word_embeddings,
    latest_checkpoint,
    load_pairsets,
    load_st_model,
    make_loss,
    split_validation,
    train,
)
