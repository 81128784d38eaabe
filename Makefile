# One entry point for the whole workspace. `go test ./...` at a go.work root
# matches nothing, so every target expands the workspace's modules.
SHELL := /bin/bash
GO ?= go
MODULES := $(shell $(GO) list -f '{{.Dir}}/...' -m)
STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell $(GO) env GOPATH)/bin
FUZZTIME ?= 5s
BENCHTIME ?= 1s

.PHONY: test vet lint fuzz bench build run fmt tidy standalone

## test: vet, each module built on its own, then every module's tests (race detector on)
test: vet standalone
	$(GO) test -race -count=1 -timeout 15m $(MODULES)

vet:
	$(GO) vet $(MODULES)

## lint: gofmt, go vet and staticcheck must all be clean
lint: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck $(MODULES)

## fuzz: every Fuzz target for FUZZTIME each (default 5s). A target that
## ends with "context deadline exceeded" but wrote no crasher under
## testdata/fuzz/ hit the fuzz engine's shutdown race (go.dev/issue/75804)
## and passes; a new crasher file fails (tools/cmd/fuzzall).
fuzz:
	$(GO) run ./tools/cmd/fuzzall -go $(GO) -fuzztime $(FUZZTIME) $(MODULES:/...=)

## bench: every benchmark once
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(MODULES)

## build: bin/mycelium, its --version naming the commit
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
build:
	$(GO) build -ldflags "-X github.com/mycelium-mesh/mycelium/tools/cli.Version=$(VERSION)" -o bin/mycelium ./tools/cmd/mycelium

fmt:
	gofmt -w $$(git ls-files '*.go')

## tidy: go mod tidy in each module on its own (as it builds outside the workspace)
tidy:
	@for dir in $(MODULES:/...=); do (cd $$dir && GOWORK=off $(GO) mod tidy) || exit 1; done

## standalone: every module builds outside the workspace, through its replace lines
standalone:
	@for dir in $(MODULES:/...=); do (cd $$dir && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...) || exit 1; done
