"""Parameters and inference time per action chunk of the trained checkpoints of a study (issue 11's comparison table).

    python scripts/recipe_inference.py configs/study_recipes.yaml [--out results/policy_families_inference.json]

For every cell with a finished run: `num_parameters()` of the saved model and the median wall time of `predict_action` on
one observation at the dataset's frame size (1 thread, after 2 warm-up calls; a stateful recipe is called without
per-episode state, so ACT returns its whole chunk and Helix runs both systems). Cells without a run are left out;
rerun after `vlaos_study` finishes more of them. The README table reads the output beside the study's results."""
import argparse, json, os, platform, statistics, sys, time
from pathlib import Path
import numpy as np, torch
from vlaos.config import write_results_json
from vlaos.study import load_study, cell_config, final_model_dir
from vlaos.paradigms import VLABase

def measure(model_dir: Path, calls: int=20) -> dict:
    torch.set_num_threads(1)
    m = VLABase.from_pretrained(model_dir).eval()
    S = m.processor.observation_image_size or m.cfg.vision.image_size
    rng = np.random.default_rng(0)
    obs = {"images": [rng.integers(0, 255, (S, S, 3), dtype=np.uint8) for _ in range(m.cfg.num_views * m.cfg.history)],
           "proprio": np.zeros(m.cfg.proprio_dim, np.float32), "instruction": "reach the goal"}
    times = []
    for i in range(calls + 2):
        g = torch.Generator().manual_seed(i)
        t = time.perf_counter(); m.predict_action(obs, generator=g); times.append(time.perf_counter() - t)
    return {"parameters": m.num_parameters(), "chunk_ms": 1000 * statistics.median(times[2:])}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study"); ap.add_argument("--out", default="results/policy_families_inference.json")
    a = ap.parse_args()
    spec = load_study(a.study)
    cells, raw = {}, {}
    for cell in spec.cells:
        d = final_model_dir(cell_config(spec, cell, spec.seeds[0]))
        if not (d / "vlaos.json").exists(): continue
        r = measure(d); raw[cell.name] = r
        cells[cell.name] = [f"{r['parameters'] / 1e6:.2f}", f"{r['chunk_ms']:.1f}"]
        print(cell.name, r, flush=True)
    cmd = "python scripts/recipe_inference.py " + a.study
    out = {"columns": ["parameters (M)", "inference ms / chunk"], "cells": cells, "raw": raw, "command": cmd,
           "protocol": "median of 20 predict_action calls on one observation, 1 CPU thread, after 2 warm-up calls",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"}
    write_results_json(a.out, out, cmd)

if __name__ == "__main__": main()
