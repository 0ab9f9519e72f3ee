# Two entry points matter: `make demo` (the operator end to end on a local control plane) and
# `make test` (everything CI runs). Both install what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint unit e2e bench tools test-deps node-deps image crds deploy-manifests venv clean

demo: $(VENV)/.installed tools
	PYTHONPATH=tests $(BIN)/python hack/demo.py

# node-deps first: hack/tools.sh compiles the pod sandbox's pause binary with the C compiler it installs.
test: $(VENV)/.installed node-deps tools test-deps image lint
	$(BIN)/pytest

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

tools:
	bash hack/tools.sh >/dev/null

test-deps:
	bash hack/test-deps.sh

# What a real node and the image need from Debian: containerd, runc, CNI plugins, podman, debootstrap, ...
node-deps:
	bash hack/node-deps.sh

# The operator's image, built here from the Dockerfile; the last line printed is its reference.
image:
	@bash hack/image.sh

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

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
