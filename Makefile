# wuoffline — see README.md. Every target works on a fresh machine with Go 1.26;
# the tests' independent checkers come from Debian packages (.ci/run installs them).
SHELL := /bin/bash
GO ?= go
# Version, commit and date come from git; the date is the commit's, so two
# builds of one commit are byte-identical (with -trimpath, an empty build ID
# and no VCS stamping, which would differ between a clone and a worktree).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DATE ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
export SOURCE_DATE_EPOCH
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'
PLATFORMS := linux/amd64 linux/arm64 windows/amd64 windows/arm64
BIN := bin/wuoffline

.PHONY: all build native release release-check check-static demo test test-short bench bench-large fuzz testimages vet clean

all: native

# Host binary used by demo and tests.
native:
	$(GOBUILD) -o $(BIN) ./cmd/wuoffline

# Static binaries for every supported platform, in dist/.
build:
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  out=dist/wuoffline-$$os-$$arch$$ext; \
	  echo "build $$out"; \
	  GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $$out ./cmd/wuoffline; \
	done

# The release: dist/ holds only the static binaries named with the version
# and their SHA256SUMS. Two runs on one commit give the same bytes
# (make release-check proves it).
release:
	@set -e; rm -rf dist; mkdir -p dist; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  out=dist/wuoffline-$(VERSION)-$$os-$$arch$$ext; \
	  echo "release $$out"; \
	  GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $$out ./cmd/wuoffline; \
	done; \
	cd dist && sha256sum wuoffline-* > SHA256SUMS && cat SHA256SUMS
	@$(MAKE) --no-print-directory check-static

# Builds the release twice, the second time with an empty build cache of its
# own, and compares the bytes.
release-check:
	@set -e; cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; \
	$(MAKE) --no-print-directory release >/dev/null; cp dist/SHA256SUMS "$$cache/SHA256SUMS.first"; \
	GOCACHE=$$cache/go $(MAKE) --no-print-directory release >/dev/null; \
	cmp dist/SHA256SUMS "$$cache/SHA256SUMS.first" && echo "release-check: two builds give identical bytes" && cat dist/SHA256SUMS

# Every Linux binary in dist/ must be statically linked: no program
# interpreter (PT_INTERP) and no dynamic section.
check-static:
	@set -e; n=0; for f in dist/wuoffline-*linux-*; do \
	  if readelf -lW "$$f" | grep -q INTERP || readelf -dW "$$f" | grep -q NEEDED; then \
	    echo "check-static: $$f is dynamically linked"; readelf -lW "$$f" | grep -A1 INTERP; exit 1; fi; \
	  n=$$((n+1)); echo "check-static: $$f: static"; \
	done; [ $$n -ge 2 ] || { echo "check-static: no linux binaries in dist/"; exit 1; }

# The built-in example: a broken Windows disk image, end to end, in a temp dir.
demo: native
	@./scripts/demo.sh $(BIN)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# The whole test suite, including the independent-tool checks (mandatory when CI=true).
test: vet build check-static
	$(GO) test -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short ./...

# Benchmarks: speed, bytes read/written and memory (README "Performance").
# First every package's small benchmarks; then, on the generated 1 GiB disk
# (54 MB SOFTWARE hive, 10,000-entry WinSxS; built once and kept in
# $$WUOFFLINE_BENCH_DIR, default $$TMPDIR/wuoffline-bench), the built binary's
# fix and diagnose beside the manual Linux route, raw/qcow2/VHDX in place
# beside the convert route, and 16 disks at once. Needs root, ntfs-3g,
# sgdisk, qemu-img, hivex, strace and GNU time. The 2 GiB / 300,000-entry
# BenchmarkFixLarge runs only when asked: make bench-large.
BENCH_DISK := BenchmarkDisk$$|BenchmarkFixIO$$|BenchmarkContainers$$|BenchmarkFleet$$
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x $$($(GO) list ./... | grep -v '/offline$$')
	$(GO) test -run '^$$' -skip 'BenchmarkFixLarge' -bench '$(BENCH_DISK)' -benchmem -benchtime 1x -timeout 60m ./offline/
	$(GO) test -run '^$$' -skip '$(BENCH_DISK)|BenchmarkFixLarge' -bench . -benchmem -benchtime 3x ./offline/

bench-large:
	$(GO) test -run '^$$' -bench 'BenchmarkFixLarge$$' -benchtime 1x -timeout 60m ./offline/

# A short coverage-guided run of every fuzz target (FUZZTIME per target).
# Go 1.26's fuzz coordinator can end a timed run with a bare "context
# deadline exceeded" and no failing input when a worker misses the stop
# deadline on a loaded machine (golang/go#75804): that run counts as clean
# only when no failing input was written; any other failure stops make.
FUZZTIME ?= 20s
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log $$log.rc' EXIT; \
	for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    { rc=0; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x $$pkg || rc=$$?; echo $$rc > $$log.rc; } 2>&1 | tee $$log; \
	    [ "$$(cat $$log.rc)" = 0 ] && continue; \
	    if grep -q '^    context deadline exceeded$$' $$log && ! grep -q 'Failing input written' $$log; then \
	      echo "fuzz $$pkg $$f: the coordinator's deadline race (golang/go#75804), no failing input: clean"; continue; \
	    fi; \
	    exit 1; \
	  done; \
	done

# Rebuild the committed test images with independent tools (needs root, FUSE, ntfs-3g, sgdisk, hivex).
testimages:
	./testimages/build.sh

clean:
	rm -rf bin dist
