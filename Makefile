# The two README commands. Everything they need is installed by `make install` (pins live in settings.ini).
SHELL := /bin/bash
PY ?= python
DEMO_TASKS ?= reach-v3,drawer-close-v3,button-press-topdown-v3
DEMO_DATA ?= data/metaworld_demo
DEMO_CAMERAS ?= corner2,gripperPOV
DEMO_EPISODES ?= 10
DEMO_CONFIG ?= configs/metaworld_demo.yaml
DEMO_RUN ?= runs/metaworld_demo
DEMO_PROCESSES ?= 2
DEMO_RECORD ?= results/demo.json
export MUJOCO_GL ?= egl
export TF_CPP_MIN_LOG_LEVEL ?= 2
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install sync test test_slow demo demo_heldout bench readme

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which is not installable offline),
# and the study tables in it are rendered from results/ (vlaos.study.render_study_tables), never typed
readme:
	$(PY) -c "import json; import vlaos.improve.offline, vlaos.improve.dagger, vlaos.improve.online_study, vlaos.improve.gail, vlaos.improve.continual; from vlaos.study import render_study_tables, register_table; from vlaos.deploy.serve import serve_table; from vlaos.deploy.export import format_bench_table; register_table('serve', serve_table); register_table('export', format_bench_table); nb = json.load(open('nbs/index.ipynb')); open('README.md', 'w').write(render_study_tables('\\n\\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')) + '\\n')"

install:
	$(PY) -m pip install -q -e ".[dev]"

# notebooks and library must be in sync (nbdev-ci does the same check)
sync:
	@before="$$(git diff -- vlaos; git ls-files -o --exclude-standard vlaos | xargs -r cat)"; nbdev_export; \
	after="$$(git diff -- vlaos; git ls-files -o --exclude-standard vlaos | xargs -r cat)"; \
	if [ "$$before" != "$$after" ]; then echo "notebooks and library were not in sync (nbdev_export changed vlaos/): commit the exported files"; exit 1; fi

# Every notebook under nbdev_test in its own process and the pytest suite, 2 at a time, longest first, one torch thread
# each; prints every job's seconds at the end (scripts/run_tests.py says why). `make test_slow` adds the cells flagged slow.
test: install sync
	$(PY) scripts/run_tests.py

test_slow: install sync
	$(PY) scripts/run_tests.py --flags slow

# the README's main job; every stage is timed. Layout: 2 processes x 1 torch thread x 1 TensorFlow thread, the fastest
# in-run layout measured on 2 cores (results/train_layouts.json, scripts/train_layouts.py); and the run is recorded in $(DEMO_RECORD) (README: `make readme`)
demo: install
	@set -e; t0=$$(date +%s); \
	vlaos_metaworld --tasks $(DEMO_TASKS) --episodes $(DEMO_EPISODES) --out $(DEMO_DATA) --image_size 128 --workers 2 --cameras $(DEMO_CAMERAS); t1=$$(date +%s); \
	VLAOS_TF_THREADS=1 accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes $(DEMO_PROCESSES) -m vlaos.train --config $(DEMO_CONFIG); t2=$$(date +%s); \
	vlaos_eval $(DEMO_RUN) --episodes 10 || echo "(a task failed every episode: recorded all the same)"; t3=$$(date +%s); \
	$(PY) -c "from vlaos.study import write_demo_record as w; w('$(DEMO_RECORD)', '$(DEMO_RUN)', dataset_s=$$((t1-t0)), train_s=$$((t2-t1)), eval_s=$$((t3-t2)))"; \
	echo "demo: $$((t3-t0)) s in all (dataset $$((t1-t0)) s, training $$((t2-t1)) s, evaluation $$((t3-t2)) s); recorded in $(DEMO_RECORD)"

# the demo checkpoint on seeds the README does not use (episode i seeded 3000 + i), 20 episodes per task, with the
# vision-reliance probe (each episode also run seeing a twin scene's frames: visual_reliance); added to the record
demo_heldout:
	@set -e; t0=$$(date +%s); \
	vlaos_eval $(DEMO_RUN) --episodes 20 --seed 3000 --no_video --probe --out $(DEMO_RUN)/eval_heldout; t1=$$(date +%s); \
	$(PY) -c "from vlaos.study import write_demo_record as w; w('$(DEMO_RECORD)', '$(DEMO_RUN)', '$(DEMO_RUN)/eval_heldout', heldout=True, eval_s=$$((t1-t0)))"

bench: install
	vlaos_bench --config configs/metaworld_tiny.yaml
