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

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, which is not installable offline)
readme:
	$(PY) -c "import json; nb = json.load(open('nbs/index.ipynb')); open('README.md', 'w').write('\\n\\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown') + '\\n')"

install:
	$(PY) -m pip install -q -e ".[dev]"

# notebooks and library must be in sync (nbdev-ci does the same check)
sync:
	nbdev_export
	@git diff --quiet -- vlaos || (git diff --stat -- vlaos; echo "notebooks and library are not in sync: run nbdev_export"; exit 1)

test: install sync
	nbdev_test --n_workers 2 --timing
	$(PY) -m pytest -q tests

demo: install
	vlaos_metaworld --tasks $(DEMO_TASKS) --episodes 10 --out $(DEMO_DATA) --image_size 128 --workers 2
	accelerate launch --config_file configs/accelerate_ddp.yaml --num_processes 2 -m vlaos.train --config configs/metaworld_tiny.yaml
	vlaos_eval runs/metaworld_tiny --episodes 10

bench: install
	vlaos_bench --config configs/metaworld_tiny.yaml
