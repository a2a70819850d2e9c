# email-engine: the two commands are `make run` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# What the venv holds: build and test tools by default; the image's runtime venv is made with requirements.txt.
REQUIREMENTS ?= requirements-dev.txt

.PHONY: run test bench gen venv lint system-packages clean k8s-monitoring

run: gen
	@mkdir -p var
	EE_IPPOOL_SEED_TENANTS=$${EE_IPPOOL_SEED_TENANTS-sos-expat,ulixai} $(VENV)/bin/emailengine run

# The pure unit tests (CPU only, no server, no clock) on every core, up to four; then everything that starts
# servers, one test at a time. Both run whatever the first gives; any failure fails the target.
test: gen system-packages
	$(VENV)/bin/ruff check .
	status=0; \
	$(PY) -m pytest -q -n auto --maxprocesses=4 tests/unit || status=1; \
	$(PY) -m pytest -q --ignore=tests/unit || status=1; \
	exit $$status

# Every benchmark under bench/ (median and spread of repeated runs beside each one's baseline), then BENCHMARKS.md.
bench: gen system-packages
	$(PY) bench/run_all.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The Kubernetes base's copies of the alerting rules and the dashboard (kustomize reads only under its directory).
k8s-monitoring:
	cp deploy/prometheus/rules.yml deploy/grafana/email-engine.json deploy/k8s/base/monitoring/

system-packages:
	@tools/ensure_system_packages.sh

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r $(REQUIREMENTS)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@# The import roots: libs/ and tests/ at the top, each service folder, and the generated stubs.
	@printf '%s\n' $(CURDIR) $(CURDIR)/gen $(CURDIR)/services/ip-pool $(CURDIR)/services/reputation \
		$(CURDIR)/services/campaign-gateway $(CURDIR)/services/notifier \
		> $$($(PY) -c 'import site; print(site.getsitepackages()[0])')/emailengine-paths.pth
	@touch $@

gen: venv
	@PY=$(PY) tools/gen_protos.sh

clean:
	rm -rf gen var .pytest_cache .ruff_cache
