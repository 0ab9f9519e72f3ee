# Two entry points matter: `make demo` (the operator end to end on a local control plane) and
# `make test` (everything CI runs). Both install what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-prerequisites lint unit e2e bench tools test-deps node-deps image seldon-images crds deploy-manifests venv clean zenml-venv zenml-lint zenml-test zenml-bench

# What the demo and the tests need is made side by side (-j): the Go builds keep both cores busy while the
# others mostly wait on the package registries, which on a cold machine saves minutes.
PARALLEL := $(MAKE) -j4 --output-sync=target

demo:
	$(PARALLEL) $(VENV)/.installed tools seldon-images
	PYTHONPATH=tests $(BIN)/python hack/demo.py

test-prerequisites:
	$(PARALLEL) $(VENV)/.installed node-deps tools test-deps image seldon-images $(ZENML_VENV)/.installed

test: test-prerequisites
	$(MAKE) lint zenml-lint
	$(BIN)/pytest
	$(MAKE) zenml-test

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

e2e: $(VENV)/.installed tools
	$(BIN)/pytest tests/e2e

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Figures, not pass/fail, on the local control plane: rotation latency (goal < 2 s); the operator beside
# a bare client and a 1 s poll loop at 1,000 objects, and its memory at 10,000 (that step is bounded);
# leader failover.
bench: $(VENV)/.installed tools
	PYTHONPATH=tests $(BIN)/python benchmarks/rotation.py --parents 1
	PYTHONPATH=tests $(BIN)/python benchmarks/rotation.py --parents 20
	PYTHONPATH=tests $(BIN)/python benchmarks/scale.py --objects 1000 --scale-objects 10000 --scale-timeout 900
	PYTHONPATH=tests $(BIN)/python benchmarks/failover.py

# hack/tools.sh compiles the pod sandbox's pause binary with the C compiler node-deps installs.
tools: node-deps
	bash hack/tools.sh >/dev/null

test-deps:
	bash hack/test-deps.sh

# What a real node and the image need from Debian: containerd, runc, CNI plugins, podman, debootstrap, ...
node-deps:
	bash hack/node-deps.sh

# The operator's image, built here from the Dockerfile; the last line printed is its reference.
image: node-deps
	@bash hack/image.sh

# Stand-ins for the images Seldon Core's pods run for a SKLEARN_SERVER v2 model (images/), built here under
# the references Seldon's seldon-config names; prints "<directory> <reference>" per image.
seldon-images: $(VENV)/.installed node-deps
	@bash hack/seldon-images.sh

# Regenerates every copy of the CRD from the pydantic models (a test fails if one is stale): crds/, the
# Helm chart's (its CRD template reads it) and deploy/'s.
crds: $(VENV)/.installed
	$(BIN)/zenmodel-operator crd > crds/zenml.io_zenmodeldeployments.yaml
	cp crds/zenml.io_zenmodeldeployments.yaml charts/zenmodel-operator/files/zenml.io_zenmodeldeployments.yaml
	cp crds/zenml.io_zenmodeldeployments.yaml deploy/zenml.io_zenmodeldeployments.yaml

# Regenerates deploy/ from the chart (a test fails if it is stale).
deploy-manifests: tools
	bash hack/render-deploy.sh

venv: $(VENV)/.installed

# The ZenML flavor (integrations/zenml) is its own distribution in its own environment: zenml pins pydantic
# below what the operator's kubernetes client needs, so the two cannot share one.
ZENML_DIR := integrations/zenml
ZENML_VENV := $(ZENML_DIR)/.venv

zenml-venv: $(ZENML_VENV)/.installed

$(ZENML_VENV)/.installed: $(ZENML_DIR)/pyproject.toml $(ZENML_DIR)/constraints.txt
	$(PYTHON) -m venv $(ZENML_VENV)
	$(ZENML_VENV)/bin/pip install --quiet --upgrade pip
	$(ZENML_VENV)/bin/pip install --quiet -c $(ZENML_DIR)/constraints.txt -e '$(ZENML_DIR)[test]'
	touch $@

zenml-lint: $(ZENML_VENV)/.installed
	cd $(ZENML_DIR) && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

# Its end-to-end tests drive the operator from the operator's own environment, as a process.
zenml-test: $(ZENML_VENV)/.installed $(VENV)/.installed tools
	cd $(ZENML_DIR) && .venv/bin/pytest

# A figure: deploy_model -> served through this flavor and through ZenML's stock Seldon deployer.
zenml-bench: $(ZENML_VENV)/.installed $(VENV)/.installed tools
	cd $(ZENML_DIR) && .venv/bin/pytest -s -q tests/e2e/bench_seldon_side_by_side.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) $(ZENML_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
