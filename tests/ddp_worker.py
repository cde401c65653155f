"""One rank of a multi-process toy training run, launched by tests/test_ddp.py through `accelerate launch`.

Usage: accelerate launch --config_file CONFIG tests/ddp_worker.py OUT_DIR STEPS [GRAD_ACCUM]
Trains vlaos.training.ToyRegressor with vlaos.training.Trainer, each rank reading its own stride of the toy data,
and writes OUT_DIR/rank{R}.pt: the rank's own initial weights, the weights after `prepare` (rank 0's, broadcast),
the final weights, the ids of the samples it consumed and the run's result dict.
"""
import sys
from pathlib import Path

import torch
from vlaos.config import TrainConfig
from vlaos.training import ToyRegressor, Trainer, make_accelerator, toy_batches


def train_cfg(out_dir, steps, grad_accum=1) -> TrainConfig:
    "The toy run's config; test_ddp.py rebuilds the same config for its single-process reference."
    return TrainConfig(output_dir=str(out_dir), max_steps=steps, batch_size=4, grad_accum=grad_accum, lr=1e-2,
                       warmup_steps=2, schedule="cosine", max_grad_norm=1.0, mixed_precision="no", save_every=1000,
                       keep_checkpoints=1, log_every=1, seed=0, wandb="disabled")


def main(out_dir, steps, grad_accum=1):
    cfg = train_cfg(out_dir, steps, grad_accum)
    acc = make_accelerator(cfg)
    model = ToyRegressor()  # seeded with seed + rank, so ranks start different until prepare() broadcasts rank 0
    own_init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, cfg, accelerator=acc, progress=False, save_fn=lambda m, d: m.save_pretrained(d))
    init = {k: v.detach().cpu().clone() for k, v in trainer.unwrapped_model.state_dict().items()}
    ids = []
    def recorded(batches):
        for b in batches:
            ids.extend(b["ids"]); yield b
    result = trainer.fit(recorded(toy_batches(cfg.batch_size, rank=acc.process_index, world_size=acc.num_processes)))
    final = {k: v.detach().cpu().clone() for k, v in trainer.unwrapped_model.state_dict().items()}
    torch.save(dict(rank=acc.process_index, world_size=acc.num_processes, distributed_type=str(acc.distributed_type),
                    own_init=own_init, init=init, final=final, ids=ids, result=result),
               Path(out_dir) / f"rank{acc.process_index}.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
