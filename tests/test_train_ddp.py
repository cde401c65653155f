"""The real Action-Only VLA trained by `vlaos.train` on 2 CPU processes under `accelerate launch` (DDP, gloo).

Both ranks must start from identical weights (DDP broadcasts rank 0's) and end with identical weights after the
training steps (DDP averages gradients and every rank applies the same update), the weights must have moved from the
initial checkpoint-free model (every tensor the training updates: each trainable parameter of the action path), and
the run must write its checkpoint with a reloadable `model/`. A NaN gradient from one rank's batch (finite loss) must stop
every rank at the same step, before the optimizer step, naming both ranks' batches; so must a NaN loss on one rank only
(before `backward`, whose all-reduce the other rank would otherwise wait in forever).
Run: `pytest tests/test_train_ddp.py` from the repository root.
"""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from vlaos.config import preset, save_config  # noqa: E402
from vlaos.data.rlds import write_toy_rlds  # noqa: E402


def _launch(args):
    "Run tests/train_worker.py with `args` on 2 CPU processes under `accelerate launch`; fail with its output if it fails."
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs/accelerate_ddp.yaml"),
           "--num_processes", "2", "--num_machines", "1", "--main_process_port", "0",
           str(REPO / "tests/train_worker.py"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"launch failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-6000:]}"


def test_two_process_training_keeps_ranks_identical(tmp_path):
    ds = write_toy_rlds(tmp_path / "data", schema="metaworld", episodes=4, steps=12, image_size=32)
    cfg = preset("tiny", data={"dataset_dir": str(ds), "image_size": 32, "shuffle_buffer": 50},
                 train={"output_dir": str(tmp_path / "run"), "max_steps": 3, "save_every": 3, "batch_size": 4,
                        "log_every": 1, "wandb": "disabled", "warmup_steps": 1})
    cfg.model.vision.image_size = 32
    cfg.model.vision.timm_kwargs["img_size"] = 32
    save_config(cfg, tmp_path / "run.yaml")
    _launch([str(tmp_path / "run.yaml"), str(tmp_path)])
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert (r0["world_size"], r1["world_size"], r0["step"], r1["step"]) == (2, 2, 3, 3)
    for k in r0["final"]:
        assert torch.equal(r0["initial"][k], r1["initial"][k]), f"{k} differs between ranks before training"
        assert torch.equal(r0["final"][k], r1["final"][k]), f"{k} differs between ranks"
    moved = [k for k in r0["final"] if not torch.equal(r0["initial"][k], r0["final"][k])]
    assert moved, "no weight moved in 3 training steps: the optimizer did not update the model"
    # the action head learns in every paradigm: each of its parameters must have been updated
    action = [k for k in r0["final"] if k.startswith("action_head.") and r0["final"][k].is_floating_point()]
    assert action and set(action) <= set(moved), f"action-head tensors that did not move: {sorted(set(action) - set(moved))}"
    ck = tmp_path / "run/checkpoints/step_00000003"
    assert (ck / "model/model.safetensors").is_file() and (ck / "trainer_state.json").is_file()
    from vlaos.paradigms import VLABase
    vla = VLABase.from_pretrained(ck / "model")
    for k, v in vla.state_dict().items():
        torch.testing.assert_close(v, r0["final"][k], msg=lambda m: f"{k}: {m}")
    obs = {"images": np.zeros((2, 32, 32, 3), np.uint8), "proprio": np.zeros(4, np.float32), "instruction": "reach"}
    assert vla.predict_action(obs).shape == (8, 4)
    lines = (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_nonfinite_gradient_stops_every_rank(tmp_path):
    "A NaN gradient from one rank's batch reaches every rank through the all-reduce: all stop together, before the update."
    _launch(["--nan-gradient", str(tmp_path)])
    r0, r1 = (torch.load(tmp_path / f"nan_rank{r}.pt", weights_only=False) for r in range(2))
    for r in (r0, r1):
        msg = r["message"]
        assert msg is not None and msg.startswith("non-finite gradient") and "at step 2 " in msg, msg
        # rank r reads toy batches r, r + 2, ...: step 2 is batch 2 on rank 0 and batch 3 on rank 1
        assert "'rank 0': ['b2/s0'" in msg and "'rank 1': ['b3/s0'" in msg, msg
        assert r["step"] == 1
        for k, v in r["final"].items():
            assert torch.equal(v, r["after_step1"][k]), f"{k} was updated by the NaN step"
            assert torch.equal(v, r0["final"][k]), f"{k} differs between ranks"


def test_nonfinite_loss_on_one_rank_stops_every_rank(tmp_path):
    "A NaN loss on rank 1 only: both ranks raise at the same step (neither waits forever in the all-reduce), same weights."
    _launch(["--nan-loss", str(tmp_path)])
    r0, r1 = (torch.load(tmp_path / f"nan_loss_rank{r}.pt", weights_only=False) for r in range(2))
    for rank, r in enumerate((r0, r1)):
        msg = r["message"]
        assert msg is not None and msg.startswith("non-finite loss nan at step 2 ") and "ranks with a non-finite loss: [1]" in msg, msg
        assert f"this is rank {rank}" in msg and r["step"] == 1, msg
    for k, v in r0["final"].items(): assert torch.equal(v, r1["final"][k]), f"{k} differs between ranks"
