# pgstage: `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
# Majors to test (spaces or commas); default every major 10-18.
PGSTAGE_PG_VERSIONS ?= 10 11 12 13 14 15 16 17 18
export PGSTAGE_PG_VERSIONS
FUZZTIME ?= 10s

.PHONY: help install-postgres test test-quick demo bench fuzz lint

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install-postgres: ## install PostgreSQL 10-18 server bundles and Debian's 15 client tools (idempotent)
	@scripts/install-postgres >/dev/null

test: install-postgres ## run every test against real PostgreSQL of every major in PGSTAGE_PG_VERSIONS
	PGSTAGE_REQUIRE_PG=1 $(GO) test -count=1 -timeout 30m ./...

test-quick: ## the tests against PostgreSQL 15 only
	$(MAKE) test PGSTAGE_PG_VERSIONS=15

demo: ## run the main job on a throwaway local source
	@PGSTAGE_PG_VERSIONS="$${PGSTAGE_DEMO_MAJOR:-17}" scripts/install-postgres >/dev/null
	$(GO) run ./examples/demo

bench: install-postgres ## run the Go benchmarks and the comparisons in bench/
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@for s in bench/*.sh; do [ -e "$$s" ] || continue; echo "== $$s"; bash "$$s"; done

fuzz: ## run every fuzz test for FUZZTIME (default 10s) each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

lint: ## gofmt and go vet, as CI runs them
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags pgstagebench ./...
