# One entry point for the whole workspace. `go test ./...` at a go.work root
# matches nothing, so every target expands the workspace's modules.
SHELL := /bin/bash
GO ?= go
MODULES := $(shell $(GO) list -f '{{.Dir}}/...' -m)
STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell $(GO) env GOPATH)/bin
FUZZTIME ?= 5s
BENCHTIME ?= 1s

# The release version: the latest vN.N.N tag (and how far past it), or
# 0.0.0+git<commit> with no tag (a .deb version must start with a digit).
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo 0.0.0+git$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
# GOOS/GOARCH[/GOARM] of the release builds: 64-bit PCs and Pis, ARMv6
# (Pi Zero and 1; Raspberry Pi OS 32-bit) and ARMv7 (Pi 2, other boards).
RELEASE_TARGETS := linux/amd64 linux/arm64 linux/arm/6 linux/arm/7

.PHONY: test vet lint fuzz bench build run fmt tidy standalone release

# tools/meshsim runs whole meshes on one goroutine (a virtual clock; the
# package starts none), so the race detector has nothing to check there,
# and it made the package's simulations six times slower (12 minutes of the
# 15-minute limit on 2 cores): it runs without it, after the others.
RACE_PKGS = $(shell $(GO) list $(MODULES) | grep -v '/tools/meshsim$$')

## test: vet, each module built on its own, then every module's tests (race detector on, but for the single-goroutine simulator)
test: vet standalone
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 15m ./tools/meshsim

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

## release: static binaries for RELEASE_TARGETS in dist/, a .deb for amd64, arm64 and armhf (the ARMv6 build: it runs on ARMv7 too)
release:
	@rm -rf dist && mkdir -p dist
	@set -e; for t in $(RELEASE_TARGETS); do \
	  os=$$(echo $$t | cut -d/ -f1); arch=$$(echo $$t | cut -d/ -f2); arm=$$(echo $$t | cut -d/ -f3); \
	  name=mycelium-$(VERSION)-$$os-$$arch$${arm:+v$$arm}; \
	  echo "== $$name"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath \
	    -ldflags "-s -w -X github.com/mycelium-mesh/mycelium/tools/cli.Version=$(VERSION)" \
	    -o dist/$$name/mycelium ./tools/cmd/mycelium; \
	  tar -C dist -czf dist/$$name.tar.gz $$name; \
	  case $$arch$$arm in amd64) deb=amd64;; arm64) deb=arm64;; arm6) deb=armhf;; *) deb=;; esac; \
	  if [ -n "$$deb" ]; then $(GO) run ./tools/cmd/mkdeb --bin dist/$$name/mycelium --arch $$deb --version $(VERSION) --out dist; fi; \
	done
	@cd dist && sha256sum *.tar.gz *.deb > SHA256SUMS && cat SHA256SUMS

fmt:
	gofmt -w $$(git ls-files '*.go')

## tidy: go mod tidy in each module on its own (as it builds outside the workspace)
tidy:
	@for dir in $(MODULES:/...=); do (cd $$dir && GOWORK=off $(GO) mod tidy) || exit 1; done

## standalone: every module builds outside the workspace, through its replace lines
standalone:
	@for dir in $(MODULES:/...=); do (cd $$dir && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...) || exit 1; done
