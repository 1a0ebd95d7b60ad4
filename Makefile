GO      ?= go
BIN     ?= bin/storm
# Coordination code runs under the race detector.
RACE_PKGS = ./meta/... ./election/... ./node/...

.PHONY: all build test vet fmt-check demo bench sim fuzz clean setup

all: build

build:
	$(GO) build -o $(BIN) .

setup:
	scripts/setup.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The README's test command: set-up, static checks, every test (real MariaDB,
# real etcd, real storm processes), the coordination packages under -race.
test: setup vet fmt-check
	$(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -race -timeout 10m $(RACE_PKGS)

# A real import on this host: a private MariaDB, a generated dump of 1,000,000
# rows (CSV and SQL), three nodes, one of them embedding etcd.
demo: setup build
	scripts/demo.sh

# storm against myloader and LOAD DATA on a private MariaDB (ROWS, THREADS,
# RUNS, ...: see scripts/bench/run.sh), then `make sim`. Figures: README.md,
# "Performance".
bench: setup build
	scripts/bench/run.sh

# The coordination simulation (node/sim_test.go): 100 virtual nodes and
# 100,000 shards against one embedded etcd, then 20 x 20,000
# (STORM_SIM_SIZES); a sink that only sleeps.
sim:
	STORM_SIM=1 $(GO) test -count=1 -run '^TestSimulation$$' -v -timeout 60m ./node/

fuzz:
	$(GO) test ./import/source/ -run '^$$' -fuzz FuzzCSV -fuzztime 30s
	$(GO) test ./import/source/ -run '^$$' -fuzz FuzzSQL -fuzztime 30s

clean:
	rm -rf bin .demo .bench
