"""Run by tests/test_reliability_faults.py under torchrun: `hybridbatch ARGS...` (the real CLI entry point), and each
rank saves the weights its own model copy holds when training ends, to DUMP/rank<r>.pt, so the test can compare the
ranks with each other (only rank 0 writes the model folder).

    torchrun --nproc_per_node 2 tests/ddp_dump_weights.py DUMP train --model ... --out ...
"""

import os
import sys
from pathlib import Path

import torch

from hybridbatch.training import hybrid_trainer as hf

dump = Path(sys.argv[1])
sys.argv = ["hybridbatch", *sys.argv[2:]]
train = hf.HybridTrainer.train


def train_and_dump(self, *args, **kwargs):
    result = train(self, *args, **kwargs)
    dump.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
    torch.save(state, dump / f"rank{os.environ['RANK']}.pt")
    return result


hf.HybridTrainer.train = train_and_dump

from hybridbatch.cli import main  # noqa: E402  (after the patch, as the CLI imports the trainer lazily)

main()
