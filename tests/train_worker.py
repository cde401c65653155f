"""One rank of a 2-process run of the real training script (`vlaos.train.train`), launched by tests/test_train_ddp.py.

Usage: accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes 2 tests/train_worker.py CONFIG OUT
Writes OUT/rank{R}.pt with the rank's final weights, its step and the number of processes.
"""
import sys
from pathlib import Path
import torch
from vlaos.config import load_config
from vlaos.train import train

if __name__ == "__main__":
    cfg = load_config(sys.argv[1])
    trainer = train(cfg, return_trainer=True)
    acc = trainer.accelerator
    sd = {k: v.detach().cpu().clone() for k, v in trainer.unwrapped_model.state_dict().items()}
    torch.save({"final": sd, "step": trainer.step, "world_size": acc.num_processes, "rank": acc.process_index},
               Path(sys.argv[2]) / f"rank{acc.process_index}.pt")
