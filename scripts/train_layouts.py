"""Training throughput of one run config under several process x thread layouts (issue 9), data loading included.

For each layout (processes, torch threads per process, TensorFlow threads per process) it runs `vlaos.train` for
`--steps` optimizer steps at the same global batch and reads the steady samples/s from the run's metrics.jsonl (logs
after the first `--skip` steps: pipeline start-up and the first epoch's decoding excluded); then it measures the
model alone (`vlaos.bench.bench_training` on a synthetic batch, one process per training process, run concurrently with
the same threads) so the two figures come from the same machine state. Writes a JSON file under results/.

    python scripts/train_layouts.py --config configs/metaworld_tiny.yaml --out results/train_layouts.json
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
from vlaos.config import write_results_json

LAYOUTS = [(2, 1, 1), (2, 1, 2), (1, 2, 1), (1, 2, 2)]  # (processes, torch threads each, TF threads each: its global pools and data.num_parallel_calls)

MODEL_ONLY = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[2]))
from vlaos.config import load_config
from vlaos.bench import bench_training
print(json.dumps(bench_training(load_config(sys.argv[1]), batch_size=int(sys.argv[3]), iters=int(sys.argv[4]))))
"""

def in_run(config, nproc, threads, tf_threads, global_batch, steps, skip, workdir):
    out = Path(workdir) / f"run_{nproc}p_{threads}t_{tf_threads}tf"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "VLAOS_TF_THREADS": str(tf_threads),
           "TF_CPP_MIN_LOG_LEVEL": "2", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate_ddp.yaml",
           "--num_processes", str(nproc), "--main_process_port", "0", "-m", "vlaos.train", "--config", config, "--set",
           f"train.output_dir={out}", f"train.max_steps={steps}", f"train.batch_size={global_batch // nproc}",
           "train.save_every=100000", "train.log_every=25", "train.wandb=disabled", f"data.num_parallel_calls={tf_threads}"]
    t0 = time.time()
    with open(str(out) + ".log", "w") as log: rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    if rc: raise SystemExit(f"training failed (exit {rc}); see {out}.log")
    logs = [json.loads(l) for l in open(out / "metrics.jsonl") if '"samples_per_s"' in l]
    steady = [r["samples_per_s"] for r in logs if r["step"] > skip]
    return {"in_run_samples_per_s": sum(steady) / len(steady), "wall_s": round(time.time() - t0, 1), "logs_averaged": len(steady)}

def model_only(config, nproc, threads, global_batch, iters):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen([sys.executable, "-c", MODEL_ONLY, config, str(threads), str(global_batch // nproc), str(iters)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True) for _ in range(nproc)]
    res = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return {"model_only_samples_per_s": sum(r["train_samples_per_s"] for r in res)}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/metaworld_tiny.yaml")
    ap.add_argument("--global_batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--skip", type=int, default=100, help="steps left out of the steady figure")
    ap.add_argument("--iters", type=int, default=10, help="timed steps of the model-only benchmark")
    ap.add_argument("--layouts", default=",".join("x".join(map(str, l)) for l in LAYOUTS), help="procs x threads x tf_threads, comma-separated")
    ap.add_argument("--out", default="results/train_layouts.json")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.layouts.split(","):
            nproc, threads, tf_threads = map(int, spec.split("x"))
            row = {"processes": nproc, "torch_threads_per_process": threads, "tf_threads_per_process": tf_threads}
            row.update(in_run(a.config, nproc, threads, tf_threads, a.global_batch, a.steps, a.skip, tmp))
            row.update(model_only(a.config, nproc, threads, a.global_batch, a.iters))
            row["in_run_over_model_only"] = row["in_run_samples_per_s"] / row["model_only_samples_per_s"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    cmd = "python " + " ".join(sys.argv)
    write_results_json(a.out, {"command": cmd, "config": a.config, "global_batch": a.global_batch, "steps": a.steps,
                               "cores": os.cpu_count(), "layouts": rows}, cmd)
    print(f"wrote {a.out}")

if __name__ == "__main__":
    main()
