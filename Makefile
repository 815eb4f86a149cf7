# wuoffline — see README.md. Every target works on a fresh machine with Go 1.26;
# the tests' independent checkers come from Debian packages (.ci/run installs them).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X main.version=$(VERSION)
PLATFORMS := linux/amd64 linux/arm64 windows/amd64 windows/arm64
BIN := bin/wuoffline

.PHONY: all build native demo test test-short bench fuzz testimages vet clean

all: native

# Host binary used by demo and tests.
native:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/wuoffline

# Static binaries for every supported platform, in dist/.
build:
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  out=dist/wuoffline-$$os-$$arch$$ext; \
	  echo "build $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/wuoffline; \
	done

# The built-in example: a broken Windows disk image, end to end, in a temp dir.
demo: native
	@./scripts/demo.sh $(BIN)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# The whole test suite, including the independent-tool checks (mandatory when CI=true).
test: vet build
	$(GO) test -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short ./...

# Benchmarks: speed, bytes read/written and memory (figures go into closing notes).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./...

# A short coverage-guided run of every fuzz target (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x $$pkg; \
	  done; \
	done

# Rebuild the committed test images with independent tools (needs root, FUSE, ntfs-3g, sgdisk, hivex).
testimages:
	./testimages/build.sh

clean:
	rm -rf bin dist
