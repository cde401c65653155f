"""One rank of a 2-process run, launched by tests/test_train_ddp.py under `accelerate launch` (DDP).

Usage: accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes 2 tests/train_worker.py CONFIG OUT
  Trains with the real training script (`vlaos.train.train`) and writes OUT/rank{R}.pt with the rank's weights before
  the first step ('initial', after `accelerator.prepare`, i.e. after DDP's broadcast from rank 0) and after the last
  ('final'), its step and the number of processes.
Usage: ... tests/train_worker.py --nan-gradient OUT
  Trains the toy model of `vlaos.training` whose gradient (not its loss) turns NaN on rank 1's second batch, and writes
  OUT/nan_rank{R}.pt with the `FloatingPointError` message (None if none was raised), the step reached, the final
  weights and the weights after step 1.
Usage: ... tests/train_worker.py --nan-loss OUT
  The toy model's loss is NaN on rank 1's second batch only; writes OUT/nan_loss_rank{R}.pt with the message, the step
  reached and the final weights (both ranks must stop at step 2, not hang in the gradient all-reduce).
"""
import sys
from pathlib import Path
import torch
from vlaos.config import TrainConfig, load_config
from vlaos.training import ToyRegressor, Trainer, make_accelerator, toy_batches

def _cpu_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

class SnapshotTrainer(Trainer):
    "The real `Trainer`, recording the weights `fit` starts from."
    def fit(self, *args, **kwargs):
        self.initial_state = _cpu_state(self.unwrapped_model)
        return super().fit(*args, **kwargs)

def train_run(config, out: Path):
    import vlaos.train  # TensorFlow and the models: only this mode needs them
    vlaos.train.Trainer = SnapshotTrainer  # `train` builds its trainer through this module global
    trainer = vlaos.train.train(load_config(config), return_trainer=True)
    acc = trainer.accelerator
    torch.save({"initial": trainer.initial_state, "final": _cpu_state(trainer.unwrapped_model), "step": trainer.step,
                "world_size": acc.num_processes, "rank": acc.process_index}, out / f"rank{acc.process_index}.pt")

class NaNGradAfter(ToyRegressor):
    "ToyRegressor with a finite loss whose gradient becomes NaN from forward call `at` on (as in nbs/12_training.ipynb)."
    def __init__(self, at): super().__init__(); self.at, self.calls = at, 0
    def forward(self, batch):
        out = super().forward(batch); self.calls += 1
        if self.calls >= self.at:
            zero = (self.fc2.weight - self.fc2.weight.detach()).pow(2).sum()  # 0, and so is its gradient
            out.loss = out.loss + zero.sqrt()  # the loss is unchanged; d sqrt(z)/dz = inf at 0, times 0 = NaN
        return out

def nan_gradient_run(out: Path):
    cfg = TrainConfig(output_dir=str(out / "nan_run"), max_steps=4, batch_size=4, lr=1e-2, warmup_steps=0,
                      mixed_precision="no", save_every=1000, log_every=1, wandb="disabled")
    acc = make_accelerator(cfg)
    torch.manual_seed(0)  # same initial weights on both ranks (DDP would broadcast rank 0's anyway)
    model = NaNGradAfter(at=2 if acc.process_index == 1 else 10**9)
    tr = Trainer(model, cfg, accelerator=acc, progress=False)
    after = {}
    msg = None
    try: tr.fit(toy_batches(4, rank=acc.process_index, world_size=acc.num_processes),
                on_step=lambda t, m: after.update({t.step: _cpu_state(t.unwrapped_model)}))
    except FloatingPointError as e: msg = str(e)
    torch.save({"message": msg, "step": tr.step, "final": _cpu_state(tr.unwrapped_model), "after_step1": after.get(1)},
               out / f"nan_rank{acc.process_index}.pt")

class NaNLossAt(ToyRegressor):
    "ToyRegressor whose loss is NaN on forward call `at` only."
    def __init__(self, at): super().__init__(); self.at, self.calls = at, 0
    def forward(self, batch):
        out = super().forward(batch); self.calls += 1
        if self.calls == self.at: out.loss = out.loss * float("nan")
        return out

def nan_loss_run(out: Path):
    cfg = TrainConfig(output_dir=str(out / "nan_loss_run"), max_steps=4, batch_size=4, lr=1e-2, warmup_steps=0,
                      mixed_precision="no", save_every=1000, log_every=1, wandb="disabled")
    acc = make_accelerator(cfg)
    torch.manual_seed(0)
    model = NaNLossAt(at=2 if acc.process_index == 1 else 10**9)
    tr = Trainer(model, cfg, accelerator=acc, progress=False)
    msg = None
    try: tr.fit(toy_batches(4, rank=acc.process_index, world_size=acc.num_processes))
    except FloatingPointError as e: msg = str(e)
    torch.save({"message": msg, "step": tr.step, "final": _cpu_state(tr.unwrapped_model)}, out / f"nan_loss_rank{acc.process_index}.pt")

if __name__ == "__main__":
    if sys.argv[1] == "--nan-gradient": nan_gradient_run(Path(sys.argv[2]))
    elif sys.argv[1] == "--nan-loss": nan_loss_run(Path(sys.argv[2]))
    else: train_run(sys.argv[1], Path(sys.argv[2]))
