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

## fuzz: every Fuzz target for FUZZTIME each (default 5s)
fuzz:
	@set -e; for dir in $(MODULES:/...=); do \
	  for pkg in $$(cd $$dir && $(GO) list ./...); do \
	    pdir=$$(cd $$dir && $(GO) list -f '{{.Dir}}' $$pkg); \
	    for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pdir/*_test.go 2>/dev/null | sed 's/func //'); do \
	      echo "== $$pkg $$f"; \
	      (cd $$dir && $(GO) test $$pkg -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME)) || exit 1; \
	    done; \
	  done; \
	done

## bench: every benchmark once
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(MODULES)

build:
	$(GO) build -o bin/mycelium ./tools/cmd/mycelium

fmt:
	gofmt -w $$(git ls-files '*.go')

## tidy: go mod tidy in each module on its own (as it builds outside the workspace)
tidy:
	@for dir in $(MODULES:/...=); do (cd $$dir && GOWORK=off $(GO) mod tidy) || exit 1; done

## standalone: every module builds outside the workspace, through its replace lines
standalone:
	@for dir in $(MODULES:/...=); do (cd $$dir && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...) || exit 1; done
