"""The README's test command (`make test` runs it after `make install` and `make sync`): every notebook under
`nbdev_test`, each in its own process, and the multi-process pytest suite, `--jobs` at a time, longest first; prints
each job as it ends and, at the end, every job's wall seconds sorted, slowest first. Exits 1 if any job failed.

Why each notebook gets its own process: a process that renders with MuJoCo's EGL must never have TensorFlow loaded
(their LLVM copies crash on CPU machines), and nbdev_test's own worker pool reuses processes.

Why one torch / TensorFlow thread per job: with two jobs on two cores, a second intra-op thread per job only adds
contention, and small models stall at every thread-pool barrier when the CPU is shared: measured on the offline-RL
notebook's bandit training (5 algorithms x 100 steps, next to another test job), about 60 s with two threads, 13 s with
one. Set OMP_NUM_THREADS yourself to override. No test may depend on the thread count.

Usage: python scripts/run_tests.py [--jobs 2] [--flags slow] [--only 05_bsq,09_paradigms] [--no_pytest]
"""
import argparse, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = Path(os.environ.get("VLAOS_TEST_LOGS", "/tmp/vlaos_tests"))
# slowest first (longest-processing-time order keeps two workers busy to the end), as measured by this script from a
# fresh clone (2 cores); the rest run after these in name order
LONGEST_FIRST = ["pytest", "19b_dagger", "19e_continual", "16_study", "09_paradigms", "32a_three_d", "19a_offline_rl",
                 "11d_metaworld_data", "14_evaluate", "08_foresight", "05_bsq", "10_rlds", "20_end_to_end", "19c_online_rl",
                 "30_export", "11b_libero", "18c_recipe_contract", "13_train", "12_training", "06_action_head"]
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "VLAOS_TF_THREADS": "1"}


def jobs(only: list[str], flags: str, pytest: bool) -> list[tuple[str, list[str]]]:
    "(name, command) of every job, longest first."
    nbs = {p.stem: p for p in sorted((ROOT / "nbs").glob("*.ipynb"))}
    if only:
        unknown = [n for n in only if n not in nbs and n != "pytest"]
        if unknown: raise SystemExit(f"--only names no notebook: {unknown} (notebooks: {', '.join(nbs)})")
    todo = {n: ["nbdev_test", "--path", str(p)] + (["--flags", flags] if flags else []) for n, p in nbs.items()}
    if pytest: todo["pytest"] = [sys.executable, "-m", "pytest", "-q", "tests"]
    if only: todo = {n: c for n, c in todo.items() if n in only}
    order = [n for n in LONGEST_FIRST if n in todo] + [n for n in todo if n not in LONGEST_FIRST]
    return [(n, todo[n]) for n in order]


def run(name: str, cmd: list[str]) -> tuple[str, bool, float, Path]:
    log = LOGS / f"{name}.log"
    env = {**os.environ, **{k: v for k, v in THREAD_ENV.items() if k not in os.environ}}
    t = time.time()
    with open(log, "w") as f: rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    return name, rc == 0, time.time() - t, log


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="jobs at a time (default 2: one per core here)")
    ap.add_argument("--flags", default="", help="nbdev test flags to run as well (settings.ini tst_flags: slow, cuda)")
    ap.add_argument("--only", default="", help="comma-separated notebook stems (and/or 'pytest') to run")
    ap.add_argument("--no_pytest", action="store_true", help="skip the pytest suite")
    a = ap.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    todo = jobs([n for n in a.only.split(",") if n], a.flags, not a.no_pytest)
    t0, times, failed = time.time(), {}, []
    print(f"{len(todo)} jobs, {a.jobs} at a time, logs in {LOGS}", flush=True)
    with ThreadPoolExecutor(a.jobs) as ex:
        for fut in as_completed([ex.submit(run, n, c) for n, c in todo]):
            name, ok, s, log = fut.result()
            times[name] = s
            print(f"{'ok    ' if ok else 'FAILED'} {name} ({s:.0f} s)", flush=True)
            if not ok:
                failed.append(name)
                print("".join(log.read_text(errors="replace").splitlines(True)[-40:]), flush=True)
    wall = time.time() - t0
    print(f"\nseconds per job, slowest first ({wall:.0f} s wall in all, {sum(times.values()):.0f} s summed over jobs):")
    for n, s in sorted(times.items(), key=lambda kv: -kv[1]): print(f"{s:7.0f}  {n}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (logs in {LOGS})"); sys.exit(1)


if __name__ == "__main__":
    main()
