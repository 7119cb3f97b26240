# Everyday tasks. `make help` lists them.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.stamped=$(VERSION)

.PHONY: help build test lint vuln bench demo ci

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-7s %s\n", $$1, $$2}'

build: ## build ./livemigrate with its version stamped from git describe
	go build -ldflags "$(LDFLAGS)" -o livemigrate ./cmd/livemigrate

test: ## the README's test command
	go test -race -timeout 45m ./...

lint: ## gofmt, go vet, golangci-lint (installed by .ci/run), go mod tidy -diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	golangci-lint run ./...
	go mod tidy -diff

vuln: ## govulncheck, offline (the database built from golang.org/x/vulndb; see .ci/vulncheck)
	GOTOOLCHAIN=auto .ci/vulncheck

bench: ## the benchmark programs (tables on stdout, JSON under bench/out/)
	go run ./bench copy
	go run ./bench cdc
	go run ./bench verify

demo: ## a full demo migration on local servers
	go run ./cmd/livemigrate demo

ci: ## what CI runs on a fresh machine
	bash .ci/run
