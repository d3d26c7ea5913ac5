# Build, run and test the orchestrator and its worker.
GO        ?= go
BIN       := bin
GOFLAGS   ?=
TEST_TIMEOUT ?= 25m

.PHONY: all build run test test-go interop-deps vet fmt bench clean

all: build

## build: compile bin/orchestrator and bin/worker
build:
	$(GO) build $(GOFLAGS) -o $(BIN)/orchestrator ./cmd/orchestrator
	@if [ -d cmd/worker ] && ls cmd/worker/*.go >/dev/null 2>&1; then $(GO) build $(GOFLAGS) -o $(BIN)/worker ./cmd/worker; fi

## run: start Redis if none is reachable, then the orchestrator (SQLite) and one worker
run:
	./scripts/run.sh

## interop-deps: install the official Node BullMQ packages used by the interop tests
interop-deps:
	cd test/interop && npm ci --no-audit --no-fund

## test: every test of the repository (needs Redis and PostgreSQL, see README)
test: interop-deps vet test-go

test-go:
	$(GO) test -count=1 -race -timeout $(TEST_TIMEOUT) ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the bullmq benchmark against the official Node package (same Redis, one run)
bench:
	$(GO) run ./cmd/bullmq-bench

clean:
	rm -rf $(BIN)
