"""Does a trained VLA's first action chunk follow where the object is? (issue 25's diagnosis)

For each checkpoint and task: at the first frame of episodes seeded `seed + i` (the arm always starts at the same
place, so the frames differ only by the placement), compare the summed motion of the model's first chunk (fixed action
noise) with the scripted expert's next `chunk` actions from the same state: per motion axis the expert's spread, the
model's spread, the least-squares slope of model on expert (1 = follows the placement fully, 0 = ignores it) and
their correlation. Also how well the placement can be read linearly from the model's VLM hidden states (ridge
regression, R^2 on held-out seeds): is the information there, and does the action expert use it?

    python scripts/first_chunk_readout.py --runs runs/study_see/demo/seed42,runs/study_see/vit4x128/seed42 \
        --tasks button-press-topdown-v3 --out results/first_chunk_readout.json
"""
import argparse, json, os, sys
os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np, torch
from vlaos.config import write_results_json
from vlaos.evaluate import ChunkedPolicy, _resolve_checkpoint
from vlaos.envs.metaworld import MetaWorldEnv, expert_policy, expert_action, placement_target
from vlaos.paradigms import VLABase

def ridge_r2(X, Y, n_train, lam=100.0):
    "R^2 per output of ridge regression fitted on the first n_train rows, scored on the rest (features standardized)."
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    A, b = X[:n_train], Y[:n_train] - Y[:n_train].mean(0)
    w = A.T @ np.linalg.solve(A @ A.T + lam * np.eye(len(A)), b)   # dual form: features >> samples
    P = X[n_train:] @ w + Y[:n_train].mean(0)
    return (1 - ((P - Y[n_train:]) ** 2).sum(0) / ((Y[n_train:] - Y[n_train:].mean(0)) ** 2).sum(0)).tolist()

def readout(run, task, seeds, chunk):
    ck, _ = _resolve_checkpoint(run)
    m = VLABase.from_pretrained(ck).eval()
    cams = getattr(m.processor, "observation_cameras", None) or ("corner2", "gripperPOV")
    size = getattr(m.processor, "observation_image_size", None) or 128
    env, pol, cp = MetaWorldEnv(task, image_size=size, cameras=tuple(cams)), expert_policy(task), ChunkedPolicy(m, 1)
    key = placement_target(task)
    M, E, H, Y = [], [], [], []
    for s in seeds:
        o = env.reset(seed=s)
        cp.reset(0); ob = cp.observation(0, o)
        with torch.no_grad():
            b = m.processor([ob])
            H.append(m.vlm(b["pixel_values"], b["input_ids"], b["attention_mask"]).hidden_states[0].flatten().numpy())
        M.append(m.predict_action(ob, generator=torch.Generator().manual_seed(0))[:, :3].sum(0))
        moves = []
        for _ in range(chunk):   # the expert's next actions from the same state
            a = expert_action(pol, env.raw_obs); moves.append(a[:3]); env.step(a)
        E.append(np.sum(moves, 0))
        Y.append(o[key][:2])
    env.close()
    M, E, H, Y = map(np.asarray, (M, E, H, Y))
    axes = []
    for d in range(3):
        e, mm = E[:, d] - E[:, d].mean(), M[:, d] - M[:, d].mean()
        axes.append({"axis": "xyz"[d], "expert_std": float(E[:, d].std()), "model_std": float(M[:, d].std()),
                     "slope": float(e @ mm / (e @ e)) if e @ e > 1e-9 else None,
                     "corr": float(np.corrcoef(e, mm)[0, 1]) if e.std() > 1e-9 and mm.std() > 1e-9 else None})
    return {"placement_key": key, "episodes": len(seeds), "first_chunk": axes,
            "hidden_state_readout_r2_xy": ridge_r2(H, Y, int(0.75 * len(seeds)))}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True); ap.add_argument("--tasks", default="button-press-topdown-v3")
    ap.add_argument("--seed", type=int, default=5000); ap.add_argument("--episodes", type=int, default=80)
    ap.add_argument("--chunk", type=int, default=8); ap.add_argument("--out", default="results/first_chunk_readout.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    res = {"command": "python scripts/first_chunk_readout.py " + " ".join(sys.argv[1:]), "runs": {}}
    for run in a.runs.split(","):
        res["runs"][run] = {t: readout(run, t, range(a.seed, a.seed + a.episodes), a.chunk) for t in a.tasks.split(",")}
        print(run, json.dumps(res["runs"][run]), flush=True)
    write_results_json(a.out, res, res["command"])
