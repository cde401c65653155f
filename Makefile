# The two README commands. Everything they need is installed by `make install` (pins live in settings.ini).
SHELL := /bin/bash
PY ?= python
DEMO_TASKS ?= reach-v3,drawer-close-v3,button-press-topdown-v3
DEMO_DATA ?= data/metaworld_demo
export MUJOCO_GL ?= egl
export TF_CPP_MIN_LOG_LEVEL ?= 2
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install sync test demo bench readme

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which is not installable offline),
# and the study tables in it are rendered from results/ (vlaos.study.render_study_tables), never typed
readme:
	$(PY) -c "import json; from vlaos.study import render_study_tables; nb = json.load(open('nbs/index.ipynb')); open('README.md', 'w').write(render_study_tables('\\n\\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')) + '\\n')"

install:
	$(PY) -m pip install -q -e ".[dev]"

# notebooks and library must be in sync (nbdev-ci does the same check)
sync:
	@before="$$(git diff -- vlaos; git ls-files -o --exclude-standard vlaos | xargs -r cat)"; nbdev_export; \
	after="$$(git diff -- vlaos; git ls-files -o --exclude-standard vlaos | xargs -r cat)"; \
	if [ "$$before" != "$$after" ]; then echo "notebooks and library were not in sync (nbdev_export changed vlaos/): commit the exported files"; exit 1; fi

# Each notebook runs in its own process (2 at a time): a process that renders with MuJoCo's EGL must never have
# TensorFlow loaded (their LLVM copies crash on CPU machines), and nbdev_test's worker pool would reuse processes.
NOTEBOOKS := $(sort $(wildcard nbs/*.ipynb))
test: install sync
	@echo "$(NOTEBOOKS)" | tr ' ' '\n' | xargs -P 2 -I{} sh -c 'start=$$(date +%s); if nbdev_test --path {} > /tmp/vlaos_nbtest_$$(basename {}).log 2>&1; then echo "ok     {} ($$(( $$(date +%s) - start )) s)"; else echo "FAILED {}"; tail -40 /tmp/vlaos_nbtest_$$(basename {}).log; exit 1; fi'
	$(PY) -m pytest -q tests

demo: install
	vlaos_metaworld --tasks $(DEMO_TASKS) --episodes 10 --out $(DEMO_DATA) --image_size 128 --workers 2
	accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes 2 -m vlaos.train --config configs/metaworld_tiny.yaml
	vlaos_eval runs/metaworld_tiny --episodes 10

bench: install
	vlaos_bench --config configs/metaworld_tiny.yaml
