# opsgate — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
TOOLS := .tools/bin
STAMP := $(VENV)/.installed
POLICY_COVERAGE_MIN ?= 95
BUILD := build

# Same lookup as the runner: $$OPSGATE_OPA_BIN, then PATH, then .tools/bin.
OPA = $(shell $(PY) -m engine.toolchain opa)
REGAL = $(shell $(PY) -m engine.toolchain regal)

.PHONY: help install tools kube-tools kube-tool-module kube-up kube-down kube-status demo demo-kube demo-docs test policy-check python-check bench clean

help:
	@echo "make install  create .venv, install opsgate with its dev tools, get opa and regal"
	@echo "make demo     install if needed, then run the main job on the embedded defaults"
	@echo "make test     install if needed, then every check (CI runs this)"
	@echo "make bench    benchmarks that print figures, and the scorecard against the HPA, which"
	@echo "              rewrites its table in docs/PERFORMANCE.md (not part of make test)"
	@echo "make kube-up  start a local Kubernetes control plane (etcd, apiserver, controllers, kwok) on loopback"
	@echo "make kube-down  stop it"
	@echo "make demo-kube  start it, then run the five demonstrations on it (opsgate demo all --cluster kube)"

install: $(STAMP) tools

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# Build pinned opa/regal only when no new-enough one is found outside .tools.
tools: $(STAMP)
	@$(PY) -m engine.toolchain --no-local opa >/dev/null 2>&1 || $(MAKE) --no-print-directory $(TOOLS)/opa
	@$(PY) -m engine.toolchain --no-local regal >/dev/null 2>&1 || $(MAKE) --no-print-directory $(TOOLS)/regal
	@echo "opa:   $$($(PY) -m engine.toolchain opa)"
	@echo "regal: $$($(PY) -m engine.toolchain regal)"

# Static (no cgo: this OPA has no WebAssembly runtime to link), so the same binary also
# makes the tests' FROM-scratch image for the Docker launcher (tests/opa/test_docker.py).
$(TOOLS)/opa: tools/opa/go.mod tools/opa/go.sum
	@mkdir -p $(TOOLS)
	@echo "building opa from the pinned Go module in tools/opa (first time: a few minutes)"
	cd tools/opa && CGO_ENABLED=0 go build -trimpath -o $(CURDIR)/$@ github.com/open-policy-agent/opa

$(TOOLS)/regal: tools/regal/go.mod tools/regal/go.sum
	@mkdir -p $(TOOLS)
	@echo "building regal from the pinned Go module in tools/regal"
	cd tools/regal && go build -trimpath \
	  -ldflags "-X github.com/open-policy-agent/regal/pkg/version.Version=$$(go list -m -f '{{.Version}}' github.com/open-policy-agent/regal)" \
	  -o $(CURDIR)/$@ github.com/open-policy-agent/regal

# The local Kubernetes control plane for the real-cluster tests, pinned in tools/kube
# (kube-apiserver, kube-controller-manager, kube-scheduler, etcd), tools/kwok and
# tools/metrics-server.
# Each is built from the Go module proxy only when missing or when its --version is not
# the version pinned (a go.mod touched by git or by `go mod tidy` rebuilds nothing):
# about 16 minutes cold on 2 shared cores.
KUBE_BINS := $(TOOLS)/etcd $(TOOLS)/kube-apiserver $(TOOLS)/kube-controller-manager \
  $(TOOLS)/kube-scheduler $(TOOLS)/kwok $(TOOLS)/metrics-server
# Stripped (-s -w) and without local paths (-trimpath): 27-104 MB each.
GO_BUILD := nice go build -trimpath
PINNED = sed -n 's|^\(require\)\{0,1\}[[:space:]]*$(1) \(v[0-9.]*\).*|\2|p' $(2) | head -1
KUBE_VERSION ?= $$($(call PINNED,k8s.io/kubernetes,tools/kube/go.mod))

kube-tools:
	@kube=$$($(call PINNED,k8s.io/kubernetes,tools/kube/go.mod)); \
	etcd=$$($(call PINNED,go.etcd.io/etcd/server/v3,tools/kube/go.mod)); \
	kwok=$$($(call PINNED,sigs.k8s.io/kwok,tools/kwok/go.mod)); \
	ms=$$($(call PINNED,sigs.k8s.io/metrics-server,tools/metrics-server/go.mod)); \
	for b in kube-apiserver kube-controller-manager kube-scheduler; do \
	  $(TOOLS)/$$b --version 2>/dev/null | grep -qx "Kubernetes $$kube" || rm -f $(TOOLS)/$$b; \
	done; \
	$(TOOLS)/etcd --version 2>/dev/null | grep -qx "etcd Version: $${etcd#v}" || rm -f $(TOOLS)/etcd; \
	$(TOOLS)/kwok --version 2>/dev/null | grep -q "^kwok version $$kwok " || rm -f $(TOOLS)/kwok; \
	$(TOOLS)/metrics-server --version 2>/dev/null | grep -qx "$$ms" || rm -f $(TOOLS)/metrics-server
	@$(MAKE) --no-print-directory -s $(KUBE_BINS)

$(TOOLS)/kube-%: | tools/kube/go.mod tools/kube/go.sum
	@mkdir -p $(TOOLS)
	@echo "building kube-$* from the pinned Go module in tools/kube (first time: several minutes)"
	cd tools/kube && v=$$(go list -m -f '{{.Version}}' k8s.io/kubernetes) && \
	  minor=$$(echo "$$v" | cut -d. -f2) && \
	  x="-X k8s.io/component-base/version.gitVersion=$$v -X k8s.io/component-base/version.gitMajor=1" && \
	  x="$$x -X k8s.io/component-base/version.gitMinor=$$minor -X k8s.io/component-base/version.gitTreeState=clean" && \
	  x="$$x -X k8s.io/client-go/pkg/version.gitVersion=$$v -X k8s.io/client-go/pkg/version.gitMajor=1" && \
	  x="$$x -X k8s.io/client-go/pkg/version.gitMinor=$$minor" && \
	  $(GO_BUILD) -ldflags "-s -w $$x" -o $(CURDIR)/$@ k8s.io/kubernetes/cmd/kube-$*

$(TOOLS)/etcd: | tools/kube/go.mod tools/kube/go.sum tools/kube/etcd/main.go
	@mkdir -p $(TOOLS)
	@echo "building etcd from the pinned Go module in tools/kube"
	cd tools/kube && $(GO_BUILD) -ldflags "-s -w" -o $(CURDIR)/$@ ./etcd

$(TOOLS)/kwok: | tools/kwok/go.mod tools/kwok/go.sum
	@mkdir -p $(TOOLS)
	@echo "building kwok from the pinned Go module in tools/kwok"
	cd tools/kwok && $(GO_BUILD) -ldflags "-s -w" -o $(CURDIR)/$@ sigs.k8s.io/kwok/cmd/kwok

# The version goes where metrics-server's own Makefile puts it, so --version can be checked.
$(TOOLS)/metrics-server: | tools/metrics-server/go.mod tools/metrics-server/go.sum
	@mkdir -p $(TOOLS)
	@echo "building metrics-server from the pinned Go module in tools/metrics-server"
	cd tools/metrics-server && v=$$(go list -m -f '{{.Version}}' sigs.k8s.io/metrics-server) && \
	  $(GO_BUILD) -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$$v" \
	  -o $(CURDIR)/$@ sigs.k8s.io/metrics-server/cmd/metrics-server

# Regenerate tools/kube for another release: make kube-tool-module KUBE_VERSION=v1.36.0
# (the next make kube-tools rebuilds whatever --version no longer matches)
kube-tool-module:
	$(PY) scripts/kube_tool_module.py $(KUBE_VERSION)

kube-up: kube-tools
	$(PY) scripts/kube_local.py up

kube-down:
	$(PY) scripts/kube_local.py down

kube-status:
	$(PY) scripts/kube_local.py status

demo: install
	$(BIN)/opsgate validate blueprints
	$(BIN)/opsgate compile blueprints -o $(BUILD)
	scripts/demo.sh $(BUILD)/demo-state

# The five demonstrations on the local control plane (README: "The demonstrations on the
# local control plane"); it stays up afterwards: make kube-down
demo-kube: install kube-up
	$(BIN)/opsgate demo all --cluster kube --kubeconfig .kube/runner.kubeconfig \
	  --admin-kubeconfig .kube/admin.kubeconfig --state-dir $(BUILD)/demo-kube

test: install kube-tools policy-check python-check

policy-check:
	$(OPA) fmt --list --fail policies policy-tests
	$(OPA) check --strict policies policy-tests
	$(REGAL) lint --format compact policies policy-tests
	$(OPA) test --timeout 120s policies policy-tests
	@mkdir -p .cache
	@$(OPA) test --timeout 120s --coverage --threshold $(POLICY_COVERAGE_MIN) policies policy-tests > .cache/policy-coverage.json \
	  || { $(PY) scripts/coverage_report.py .cache/policy-coverage.json; echo "policy coverage below $(POLICY_COVERAGE_MIN)%"; exit 1; }
	@$(PY) scripts/coverage_report.py .cache/policy-coverage.json

python-check:
	$(BIN)/ruff check engine tests scripts
	$(BIN)/ruff format --check engine tests scripts
	$(BIN)/mypy engine
	$(BIN)/lint-imports
	$(BIN)/pytest -q

bench: install kube-tools
	$(PY) scripts/bench_compile.py
	cd scripts && ../$(PY) bench_policies.py
	cd scripts && ../$(PY) bench_tick.py
	$(PY) scripts/bench_opa_costs.py
	$(PY) scripts/bench_kube_tick.py
	$(PY) scripts/bench_mcp.py
	$(PY) scripts/scorecard.py
	$(PY) scripts/audit_size.py

clean:
	rm -rf $(BUILD) .cache .pytest_cache .mypy_cache .ruff_cache

demo-docs: install
	$(PY) scripts/demo_docs.py
	$(PY) scripts/blueprint_docs.py
	$(PY) scripts/rule_docs.py
