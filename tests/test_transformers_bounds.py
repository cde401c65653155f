"""The `transformers` pin in settings.ini is a tested range: it has a lower and an upper bound, and the lower bound works.

The notebooks (nbdev_test) run against the installed `transformers`, normally the newest the pin allows. This file
checks the other end: it installs exactly the lower bound of the pin (plus the `tokenizers` / `huggingface_hub` ...
that version needs and this environment lacks) into a cache folder, `~/.cache/vlaos/transformers-<version>` (reused
when present; `VLAOS_CACHE` moves it), and runs a tiny model through every `transformers` API vlaos uses in a
subprocess that imports that copy first:

- `VLM.forward`: `llm.model(inputs_embeds=..., use_cache=True).past_key_values.layers[i].keys / .values`
  (`DynamicCache.layers`, new in 4.54), `.last_hidden_state`;
- `build_llm` random init (`AutoConfig.for_model`, `AutoModelForCausalLM.from_config(attn_implementation=)`) and
  pretrained (`AutoModelForCausalLM.from_pretrained(dtype / torch_dtype=)`, `resize_token_embeddings`) from a local
  folder; `llm_from_hf_config` (`config.to_dict()` round trip) through `save_pretrained` / `from_pretrained`;
- tokenizers: `PreTrainedTokenizerFast(tokenizer_object=)`, `add_tokens`, `save_pretrained`, `AutoTokenizer`;
- the hierarchical text-encoder path: `AutoModel.from_pretrained`, `output_hidden_states=True`;
- `ActionOnlyVLA` and `IntegratedVLA` (explicit language + visual planning): forward, backward, `predict_action`,
  `save_pretrained` -> `VLABase.from_pretrained` giving the same actions;
- no TensorFlow import by `transformers`: `vlaos_eval` renders with MuJoCo's EGL in the process that holds the model,
  and a process with TensorFlow loaded segfaults there (transformers 4.x imports TensorFlow with any model class when
  it is installed, and `tensorflow-cpu` is one of our requirements).

Skipped only when pip cannot reach a package index. Run: `pytest tests/test_transformers_bounds.py` from the
repository root (about 1 minute the first time, then about 30 s).
"""
import configparser, json, os, re, shlex, shutil, subprocess, sys, textwrap
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("VLAOS_CACHE") or Path.home() / ".cache" / "vlaos")
STAMP = "vlaos-install-2.json"  # written last: a folder without it is an interrupted (or older-recipe) install and is redone
# optional dependencies that transformers imports by itself whenever they are installed (transformers.integrations.hub_kernels
# imports `kernels` at `import transformers.activations`): when this environment holds a version outside the range the
# tested transformers declares for them (the newest transformers pulls in a newer one), the cache gets an allowed version,
# as a user of that transformers would have
IMPORTED_WHEN_PRESENT = ("kernels",)
NETWORK_ERRORS = re.compile(r"Retrying \(Retry|NewConnectionError|ConnectTimeout|ConnectionError|Max retries exceeded|"
                            r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
                            r"ProxyError|Could not fetch URL|connection broken")


def requirement(name: str = "transformers") -> Requirement:
    "The requirement on `name` in settings.ini's `requirements` line (parsed as setup.py does: shlex.split)."
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "settings.ini")
    reqs = [Requirement(r) for r in shlex.split(cfg["DEFAULT"]["requirements"])]
    found = [r for r in reqs if canonicalize_name(r.name) == canonicalize_name(name)]
    assert len(found) == 1, f"settings.ini requirements name {name!r} {len(found)} times: {[str(r) for r in found]}"
    return found[0]


def bounds(req: Requirement) -> tuple[Version | None, Version | None]:
    "(lowest allowed version, upper bound) of a requirement; None where it has no such bound."
    lower = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    upper = [Version(s.version) for s in req.specifier if s.operator in ("<", "<=", "==", "~=")]
    return (max(lower) if lower else None), (min(upper) if upper else None)


def test_transformers_requirement_has_both_bounds():
    req = requirement()
    lower, upper = bounds(req)
    assert lower is not None, (f"settings.ini pins {req} without a lower bound (>=X): the code reads DynamicCache.layers "
                               "and needs a known oldest release, tested here")
    assert upper is not None, (f"settings.ini pins {req} without an upper bound (<Y): a new major transformers release "
                               "may break the cache / loading APIs vlaos uses")
    assert lower in req.specifier, f"the lower bound {lower} does not satisfy {req} itself"
    assert not any(s.operator == ">" for s in req.specifier), f"{req}: use >=X (the tested oldest version), not >X"


def test_installed_transformers_is_in_range():
    "The notebooks test the installed transformers: it must be one the pin allows (`make install` makes it so)."
    req = requirement()
    v = metadata.version("transformers")
    assert req.specifier.contains(v, prereleases=True), f"installed transformers {v} is outside settings.ini's {req}"


def _pip(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"],
                          capture_output=True, text=True, timeout=timeout)


def _installed(paths: list[str] | None = None) -> dict[str, Version]:
    "Distribution name -> version on `paths` (None: this interpreter's sys.path); the first on the path wins."
    out = {}
    for d in metadata.distributions(**({"path": paths} if paths is not None else {})):
        name = d.metadata["Name"]
        if name: out.setdefault(canonicalize_name(name), Version(d.version))
    return out


def _unsatisfied(target: Path) -> list[str]:
    """Requirements (no extras) of the distributions in `target` that neither `target` nor this environment meets, and
    the extras' ranges of the `IMPORTED_WHEN_PRESENT` packages this environment holds in another version."""
    have = {**_installed(), **_installed([str(target)])}
    out = []
    for d in metadata.distributions(path=[str(target)]):
        for r in map(Requirement, d.requires or []):
            optional = r.marker is not None and not r.marker.evaluate({"extra": ""})
            if optional and not (canonicalize_name(r.name) in IMPORTED_WHEN_PRESENT and canonicalize_name(r.name) in have): continue
            v = have.get(canonicalize_name(r.name))
            if v is None or not r.specifier.contains(v, prereleases=True):
                out.append(f"{r.name}{r.specifier}")
    return sorted(set(out))


def install_transformers(version: Version) -> Path:
    """`transformers==version` and the dependencies this environment does not satisfy, installed with `--no-deps`
    into the cache folder (everything else comes from this environment). Reused when already there."""
    target = CACHE / f"transformers-{version}"
    if (target / STAMP).exists(): return target
    tmp = CACHE / f"transformers-{version}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir(parents=True)
    todo, done = [f"transformers=={version}"], []
    for _ in range(6):  # a few rounds: the dependencies of what was just installed
        if not todo: break
        p = _pip("install", "--quiet", "--no-deps", "--no-compile", "--retries", "2", "--target", str(tmp), *todo)
        if p.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            log = p.stdout + p.stderr
            if NETWORK_ERRORS.search(log):
                pytest.skip(f"pip cannot reach the package index to install {todo}: {log.strip()[-600:]}")
            pytest.fail(f"pip install --target {tmp} {' '.join(todo)} failed (rc {p.returncode}):\n{log[-3000:]}")
        done += todo
        todo = [r for r in _unsatisfied(tmp) if r not in done]
    assert not todo, f"dependencies of transformers=={version} still unsatisfied after installing {done}: {todo}"
    (tmp / STAMP).write_text(json.dumps({"installed": done, "python": sys.version}, indent=1))
    if (target / STAMP).exists(): shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    else:
        shutil.rmtree(target, ignore_errors=True)  # an interrupted install
        os.replace(tmp, target)
    return target


# runs in the subprocess: argv[1] = the version it must import, argv[2] = the folder it must import it from
CHECK = textwrap.dedent('''
    import copy, importlib.util, sys, tempfile
    from pathlib import Path
    import numpy as np, torch, transformers
    from packaging.version import Version
    want, where = sys.argv[1], Path(sys.argv[2]).resolve()
    assert Version(transformers.__version__) == Version(want) and where in Path(transformers.__file__).resolve().parents, \\
        f"imported transformers {transformers.__version__} from {transformers.__file__}, not {want} from {where}"
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from vlaos.config import preset, VisionConfig
    from vlaos.backbones import VLM
    from vlaos.prompting import train_bpe_tokenizer, build_prompt
    from vlaos.paradigms import ActionOnlyVLA, IntegratedVLA, VLABase
    from vlaos.heads.planning import plan_targets
    torch.manual_seed(0)

    # VLM.forward (nbs/01_backbones): per-layer K/V from the DynamicCache
    mcfg = preset("tiny").model
    mcfg.vision = VisionConfig(backbone="vit_tiny_patch16_224", image_size=32,
                               timm_kwargs=dict(patch_size=8, embed_dim=32, depth=3, num_heads=2))
    mcfg.llm.config_overrides.update(num_hidden_layers=3)
    vlm = VLM(mcfg, vocab_size=100).eval()
    am = torch.ones(2, 7, dtype=torch.bool); am[1, 5:] = False
    o = vlm(torch.rand(2, 2, 3, 32, 32), torch.randint(0, 100, (2, 7)), am)
    assert o.keys.shape == o.values.shape == (3, 2, 32 + 7, 2 * 16), o.keys.shape
    assert o.prefix_mask[1].sum().item() == 32 + 5 and o.num_image_tokens == 32
    print("VLM.forward ok", flush=True)

    # paradigms (nbs/09_paradigms), with a BPE tokenizer trained here
    instructions = ["reach the red goal position", "push the puck to the goal", "open the drawer"]
    plans = [f"1. reach the {x} 2. move it to the goal" for x in ("puck", "drawer handle", "button")]
    tok = train_bpe_tokenizer([build_prompt(i) for i in instructions] + plans, vocab_size=300)
    stats = {k: {"min": [-2.] * 4, "max": [2.] * 4, "q01": [-1.] * 4, "q99": [1.] * 4, "mean": [0.] * 4,
                 "std": [1.] * 4} for k in ("action", "proprio")}
    rng = np.random.default_rng(0)
    obs = {"images": [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for _ in range(2)],
           "proprio": np.zeros(4, np.float32), "instruction": "push the puck to the goal"}

    def tiny_cfg():
        c = preset("tiny").model
        c.vision.image_size = 32; c.vision.timm_kwargs["img_size"] = 32
        return c

    def batch(m, B=2):
        g = torch.Generator().manual_seed(0)
        b = m.processor.prompts([instructions[i % 3] for i in range(B)])
        b.update(pixel_values=torch.rand(B, 2, 3, 32, 32, generator=g), proprio=torch.randn(B, 1, 4, generator=g),
                 actions=torch.rand(B, 8, 4, generator=g) * 2 - 1, action_pad_mask=torch.ones(B, 8, dtype=torch.bool))
        return b

    def round_trip(m, b, name):
        out = m(b)
        assert out.loss.ndim == 0 and torch.isfinite(out.loss), out
        out.loss.backward()
        m.eval()
        a = m.predict_action(obs, generator=torch.Generator().manual_seed(0))
        assert a.shape == (8, 4) and np.isfinite(a).all(), a
        with tempfile.TemporaryDirectory() as d:
            m.save_pretrained(d)
            m2 = VLABase.from_pretrained(d)
            assert type(m2) is type(m) and len(m2.tokenizer) == len(m.tokenizer)
            a2 = m2.predict_action(obs, generator=torch.Generator().manual_seed(0))
            assert np.abs(a2 - a).max() < 1e-5, (a, a2)
        print(name, "forward / predict_action / save-reload ok", flush=True)

    m = ActionOnlyVLA(tiny_cfg(), copy.deepcopy(tok), stats, action_skip_dims=[3])
    round_trip(m, batch(m), "ActionOnlyVLA")

    c = tiny_cfg()
    c.paradigm, c.planning_heads, c.planning_mode = "integrated", ["language_planning", "visual_planning"], "explicit"
    c.num_location_tokens, c.max_language_plan_length, c.max_visual_plan_length = 256, 112, 40
    m = IntegratedVLA(c, copy.deepcopy(tok), stats, action_skip_dims=[3])
    assert len(m.tokenizer) == len(tok) + 256  # <loc_*> tokens added
    b = batch(m)
    b["instructions"] = instructions[:2]
    anns = []
    for i in range(2):
        obj, goal, ee = rng.uniform(10, 54, 2), rng.uniform(10, 54, 2), rng.uniform(5, 59, 2)
        anns.append({"plan": plans[i], "subtask": "reach", "subtask_reasoning": "far from it, so: reach",
                     "move": "move left", "move_reasoning": "it is that way", "visible_objects": "puck, goal",
                     "ee_pixel": ee.astype(np.float32), "object_names": ["puck", "goal"],
                     "object_pixels": np.stack([obj, goal]).astype(np.float32),
                     "object_bboxes": np.concatenate([np.stack([obj, goal]) - 4, np.stack([obj, goal]) + 4], 1).astype(np.float32),
                     "goal_pixel": goal.astype(np.float32)})
    b["annotations"] = {k: [a[k] for a in anns] for k in anns[0]}
    b.update(plan_targets(b, m.tokenizer, c.planning_heads, c, 64))
    round_trip(m, b, "IntegratedVLA (explicit language + visual planning)")

    # a pretrained LLM (model.llm.name_or_path: a local folder; embeddings resized to the tokenizer), and the
    # hierarchical paradigm's separate text encoder (AutoModel / AutoTokenizer from a folder)
    with tempfile.TemporaryDirectory() as d:
        AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen2", vocab_size=100, hidden_size=32,
            intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1)).save_pretrained(d)
        copy.deepcopy(tok).save_pretrained(d)
        c = tiny_cfg(); c.llm.name_or_path = d
        m = ActionOnlyVLA(c, copy.deepcopy(tok), stats, action_skip_dims=[3])
        assert m.vlm.llm.dtype == torch.float32
        assert m.vlm.llm.get_input_embeddings().num_embeddings >= len(tok)
        round_trip(m, batch(m), "ActionOnlyVLA (pretrained LLM from a folder, embeddings resized)")
        m.vlm.llm.save_pretrained(d)
        enc, etok = AutoModel.from_pretrained(d).eval(), AutoTokenizer.from_pretrained(d)
        e = etok(plans[:2], return_tensors="pt", padding=True, truncation=True, max_length=16)
        h = enc(**e, output_hidden_states=True).hidden_states[-1]
        assert h.shape[:2] == e["attention_mask"].shape and h.shape[-1] == 32, h.shape
        print("text encoder (AutoModel / AutoTokenizer) ok", flush=True)

    if importlib.util.find_spec("tensorflow") is not None:
        assert "tensorflow" not in sys.modules, (
            f"transformers {want} imported TensorFlow while building / loading the models: vlaos_eval renders with "
            "MuJoCo EGL in this process and segfaults with TensorFlow loaded (transformers 4.x does this; 5.0 does not)")
    print("ALL OK", flush=True)
''')


def test_lower_bound_runs_vlaos(tmp_path):
    req = requirement()
    lower, _ = bounds(req)
    if lower is None: pytest.fail(f"settings.ini pins {req} without a lower bound")
    target = install_transformers(lower)
    (tmp_path / "check.py").write_text(CHECK)
    env = {k: v for k, v in os.environ.items() if k not in ("USE_TF", "USE_TORCH", "TRANSFORMERS_CACHE")}
    env.update(PYTHONPATH=os.pathsep.join([str(target), str(REPO)]), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", WANDB_MODE="disabled", TF_CPP_MIN_LOG_LEVEL="3")
    p = subprocess.run([sys.executable, str(tmp_path / "check.py"), str(lower), str(target)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and "ALL OK" in p.stdout, (
        f"vlaos fails with transformers=={lower}, the lower bound of settings.ini's {req} "
        f"(rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}")
