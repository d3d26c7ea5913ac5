# Build, run and test the orchestrator and its worker.
GO        ?= go
BIN       := bin
GOFLAGS   ?=
TEST_TIMEOUT ?= 25m
# golangci-lint, pinned in tools/go.mod (a module of its own, so that the
# linter's dependencies stay out of go.mod); built on first use.
LINT      := $(GO) tool -modfile=tools/go.mod golangci-lint
# The toolchain is the one go.mod names (its toolchain line), downloaded by
# the go command when the installed one is older. GOTOOLCHAIN=local in the
# environment would ignore that line and build with the installed Go, so it
# is overridden here; `make GOTOOLCHAIN=local …` still wins.
export GOTOOLCHAIN := auto

.PHONY: all build run test test-go node-deps interop-deps claude-deps vet lint fmt bench clean

all: build

## build: compile bin/orchestrator and bin/worker
build:
	$(GO) build $(GOFLAGS) -o $(BIN)/orchestrator ./cmd/orchestrator
	@if [ -d cmd/worker ] && ls cmd/worker/*.go >/dev/null 2>&1; then $(GO) build $(GOFLAGS) -o $(BIN)/worker ./cmd/worker; fi

## run: start Redis if none is reachable, then the orchestrator (SQLite) and one worker
run:
	./scripts/run.sh

## node-deps: install the pinned official BullMQ packages of the Node driver (test/node)
node-deps:
	cd test/node && npm ci --no-audit --no-fund

## claude-deps: install the pinned Claude Code CLI (test/claude) that tests run against a fake API
# The package's postinstall puts the native binary in place; it is run
# explicitly, since newer npm versions skip install scripts not allowed.
# Skipped when the pinned version is already installed.
claude-deps:
	cd test/claude && { node_modules/.bin/claude --version 2>/dev/null | grep -qxF "$$(node -p 'require("./package.json").dependencies["@anthropic-ai/claude-code"]') (Claude Code)" || { npm ci --no-audit --no-fund --ignore-scripts && node node_modules/@anthropic-ai/claude-code/install.cjs; }; } && node_modules/.bin/claude --version

## interop-deps: what the interop and e2e tests need from npm (the Node driver's packages)
interop-deps: node-deps

## test: every test of the repository, after vet and lint (needs Redis and PostgreSQL, see README)
test: interop-deps claude-deps vet lint test-go

test-go:
	$(GO) test -count=1 -race -timeout $(TEST_TIMEOUT) ./...

vet:
	$(GO) vet ./...

## lint: golangci-lint with .golangci.yml: the layering rules (depguard), staticcheck, errcheck, gofmt…
lint:
	$(LINT) run ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the bullmq benchmark against the official Node package (same Redis, one run)
bench:
	$(GO) run ./cmd/bullmq-bench

clean:
	rm -rf $(BIN)
