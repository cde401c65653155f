"""Multi-process tests of vlaos.training (cannot live in a notebook): 2 CPU processes under `accelerate launch`.

Each rank trains the toy model on different data; the ranks must end with identical weights, different from the
initial ones, and equal to a single-process run whose batches are the two ranks' batches concatenated (DDP and
ZeRO-2 average gradients over ranks). Run: `pytest tests/test_ddp.py` from the repository root.
"""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # vlaos from this checkout; ddp_worker
from ddp_worker import train_cfg  # noqa: E402
from vlaos.training import ToyRegressor, Trainer, toy_batch  # noqa: E402

STEPS, WORLD, BATCH = 4, 2, 4


def launch(config: str, out: Path, grad_accum: int = 1, env: dict | None = None):
    "Run tests/ddp_worker.py on 2 CPU processes with configs/`config`; return the ranks' result dicts."
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "configs" / config),
           "--num_processes", str(WORLD), "--num_machines", "1", "--main_process_port", "0",
           str(REPO / "tests" / "ddp_worker.py"), str(out), str(STEPS), str(grad_accum)]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": "",
                "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    p = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"launch failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-6000:]}"
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def reference_weights(init: dict, out: Path, grad_accum: int) -> dict:
    "Single process, same init and config, batch = concatenation of the ranks' batches (size WORLD * BATCH)."
    cfg = train_cfg(out, STEPS, grad_accum)
    cfg.batch_size = WORLD * BATCH
    model = ToyRegressor(); model.load_state_dict(init)
    def batches():
        for i in range(STEPS * grad_accum):
            parts = [toy_batch(i * WORLD + r, BATCH, 0) for r in range(WORLD)]
            yield {k: torch.cat([p[k] for p in parts]) if torch.is_tensor(parts[0][k]) else sum((p[k] for p in parts), [])
                   for k in parts[0]}
    tr = Trainer(model, cfg, progress=False)
    tr.fit(batches())
    return {k: v.detach().clone() for k, v in tr.unwrapped_model.state_dict().items()}


def read_losses(path: Path) -> list:
    return [(r["step"], r["loss"]) for r in map(json.loads, path.read_text().splitlines())]


def check_ranks(ranks, expected_type: str, out: Path, grad_accum: int):
    r0, r1 = ranks
    assert (r0["world_size"], r1["world_size"]) == (WORLD, WORLD)
    assert r0["distributed_type"].endswith(expected_type), r0["distributed_type"]
    assert set(r0["ids"]).isdisjoint(r1["ids"]), "ranks must train on different data"
    assert len(r0["ids"]) == STEPS * grad_accum * BATCH
    # ranks started from different random weights; prepare() broadcast rank 0's
    assert not torch.equal(r0["own_init"]["fc1.weight"], r1["own_init"]["fc1.weight"])
    for k in r0["init"]: assert torch.equal(r0["init"][k], r1["init"][k]), k
    for k in r0["final"]:
        assert torch.equal(r0["final"][k], r1["final"][k]), f"{k} differs between ranks"
    assert not torch.allclose(r0["final"]["fc1.weight"], r0["init"]["fc1.weight"]), "training did not change the weights"
    assert r0["result"]["step"] == STEPS and r0["result"]["samples_seen"] == STEPS * grad_accum * BATCH * WORLD
    ref = reference_weights(r0["init"], out / "reference", grad_accum)
    for k in ref:
        torch.testing.assert_close(r0["final"][k], ref[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")
    # the logged loss is the mean over ranks, i.e. the reference run's loss on the concatenated batch
    logged, ref_logged = (read_losses(d / "metrics.jsonl") for d in (out, out / "reference"))
    assert [s for s, _ in logged] == list(range(1, STEPS + 1))
    torch.testing.assert_close([l for _, l in logged], [l for _, l in ref_logged], rtol=1e-4, atol=1e-6)
    ck = out / "checkpoints" / f"step_{STEPS:08d}"
    assert (ck / "trainer_state.json").is_file() and (ck / "random_states_1.pkl").is_file()
    assert not list((out / "checkpoints").glob("*.tmp"))
    exported = ToyRegressor.from_pretrained(ck / "model")  # save_fn ran on the main process with full weights
    for k, v in exported.state_dict().items(): assert torch.equal(v, r0["final"][k]), k


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_ddp_two_cpu_processes(tmp_path, grad_accum):
    ranks = launch("accelerate_ddp.yaml", tmp_path, grad_accum)
    check_ranks(ranks, "MULTI_CPU", tmp_path, grad_accum)


def test_deepspeed_zero2_two_cpu_processes(tmp_path):
    """ZeRO-2 on CPU (DS_ACCELERATOR=cpu, gloo). The first DeepSpeed CPU run on a machine JIT-compiles DeepSpeed's
    shared-memory comm op (needs a C++ compiler; ~40 s on 2 cores, then cached in ~/.cache/torch_extensions)."""
    pytest.importorskip("deepspeed")
    ranks = launch("accelerate_deepspeed_zero2.yaml", tmp_path, 2, env={"DS_ACCELERATOR": "cpu"})
    check_ranks(ranks, "DEEPSPEED", tmp_path, 2)
    ck = tmp_path / "checkpoints" / f"step_{STEPS:08d}"
    assert (ck / "pytorch_model").is_dir()  # DeepSpeed's engine checkpoint (ZeRO shards per rank)
