"""VLM pretraining (`vlaos.pretrain.train`, the `vlaos_pretrain` script) on 2 CPU processes under `accelerate launch`
(DDP, gloo), on the committed LLaVA fixture: the `align` stage, then `finetune` from it (`pretrain.init_from`).

With 8 conversations (5 image-text, 3 text-only) and 2 processes x 2 samples, the modality-split sampler gives every
global batch one modality, so the finetune stage sees text-only steps in which the vision path gets no gradient (DDP
must be told to expect unused parameters). Across the two stages the frozen vision backbone must stay bitwise equal,
while the projector (both stages) and the LLM (finetune only) move; the held-out losses are logged and the result is a
VLM checkpoint a VLA can start from.
Run: `pytest tests/test_pretrain_ddp.py` from the repository root.
"""
import json, os, subprocess, sys
from pathlib import Path
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from vlaos.config import preset, save_config  # noqa: E402

FIXTURE = REPO / "nbs/fixtures/llava_tiny/llava_tiny.json"


def _launch(config, *overrides):
    "Run `python -m vlaos.pretrain.train --config CONFIG --set ...` on 2 CPU processes; fail with its output if it fails."
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs/accelerate_ddp.yaml"),
           "--num_processes", "2", "--num_machines", "1", "--main_process_port", "0",
           "-m", "vlaos.pretrain.train", "--config", str(config), *(["--set", *overrides] if overrides else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"launch failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-6000:]}"
    return p.stdout


def test_align_then_finetune_on_two_processes(tmp_path):
    cfg = preset("tiny", pretrain={"data_path": str(FIXTURE), "heldout_path": str(FIXTURE), "eval_every": 2,
                                   "eval_batches": 2, "max_length": 64},
                 train={"max_steps": 4, "save_every": 4, "batch_size": 2, "log_every": 1, "wandb": "disabled",
                        "warmup_steps": 1, "lr": 1e-3})
    save_config(cfg, tmp_path / "pretrain.yaml")
    _launch(tmp_path / "pretrain.yaml", "pretrain.stage=align", f"train.output_dir={tmp_path / 'align'}")
    out = _launch(tmp_path / "pretrain.yaml", "pretrain.stage=finetune", f"pretrain.init_from={tmp_path / 'align'}",
                  f"train.output_dir={tmp_path / 'finetune'}")
    assert "heldout/image_text" in out and "heldout/text" in out, out[-2000:]
    from vlaos.backbones import vlm_from_checkpoint
    a, _, info_a = vlm_from_checkpoint(tmp_path / "align")
    f, _, info_f = vlm_from_checkpoint(tmp_path / "finetune")
    assert (info_a["stage"], info_f["stage"]) == ("align", "finetune")
    same = lambda x, y: all(torch.equal(p, q) for p, q in zip(x.parameters(), y.parameters()))
    assert same(a.vision, f.vision), "the frozen vision backbone changed during finetune"
    assert not same(a.projector, f.projector) and not same(a.llm, f.llm), "finetune did not train the projector and the LLM"
    steps = [json.loads(l)["step"] for l in (tmp_path / "finetune/heldout.jsonl").read_text().splitlines()]
    assert steps == [0, 2, 4], steps
    metrics = [json.loads(l) for l in (tmp_path / "finetune/metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4] and all(m["samples_per_s"] > 0 for m in metrics)
