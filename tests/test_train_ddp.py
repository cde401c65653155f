"""The real Action-Only VLA trained by `vlaos.train` on 2 CPU processes under `accelerate launch` (DDP, gloo).

Both ranks must end with identical weights after the training steps (DDP averages gradients and every rank applies
the same update), the weights must have moved from the initial checkpoint-free model, and the run must write its
checkpoint with a reloadable `model/`. Run: `pytest tests/test_train_ddp.py` from the repository root.
"""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from vlaos.config import preset, save_config  # noqa: E402
from vlaos.data.rlds import write_toy_rlds  # noqa: E402


def test_two_process_training_keeps_ranks_identical(tmp_path):
    ds = write_toy_rlds(tmp_path / "data", schema="metaworld", episodes=4, steps=12, image_size=32)
    cfg = preset("tiny", data={"dataset_dir": str(ds), "image_size": 32, "shuffle_buffer": 50},
                 train={"output_dir": str(tmp_path / "run"), "max_steps": 3, "save_every": 3, "batch_size": 4,
                        "log_every": 1, "wandb": "disabled", "warmup_steps": 1})
    cfg.model.vision.image_size = 32
    cfg.model.vision.timm_kwargs["img_size"] = 32
    save_config(cfg, tmp_path / "run.yaml")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs/accelerate_ddp.yaml"),
           "--num_processes", "2", "--num_machines", "1", "--main_process_port", "0",
           str(REPO / "tests/train_worker.py"), str(tmp_path / "run.yaml"), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"launch failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-6000:]}"
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert (r0["world_size"], r1["world_size"], r0["step"], r1["step"]) == (2, 2, 3, 3)
    for k in r0["final"]:
        assert torch.equal(r0["final"][k], r1["final"][k]), f"{k} differs between ranks"
    ck = tmp_path / "run/checkpoints/step_00000003"
    assert (ck / "model/model.safetensors").is_file() and (ck / "trainer_state.json").is_file()
    from vlaos.paradigms import VLABase
    vla = VLABase.from_pretrained(ck / "model")
    moved = 0
    for k, v in vla.state_dict().items():
        torch.testing.assert_close(v, r0["final"][k], msg=lambda m: f"{k}: {m}")
    obs = {"images": np.zeros((2, 32, 32, 3), np.uint8), "proprio": np.zeros(4, np.float32), "instruction": "reach"}
    assert vla.predict_action(obs).shape == (8, 4)
    lines = (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
