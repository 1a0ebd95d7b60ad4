GO      ?= go
BIN     ?= bin/storm
# Coordination code runs under the race detector.
RACE_PKGS = ./meta/... ./election/... ./node/... ./jobctl/...

.PHONY: all build test test-tidb tidb-server versitygw vet fmt-check demo bench sim fuzz clean setup

# TiDB's own server, for the tests against the real TiDB SQL layer: built
# from internal/tidbserver, a module of its own (TiDB pins an older gRPC
# than etcd 3.7 needs). A cold build takes about 4 minutes here.
TIDB_SERVER = bin/tidb-server

# versitygw, the S3 server the object-storage tests read dumps from
# (internal/s3test): built from internal/versitygw, a module of its own so
# that its dependencies stay out of storm's go.mod. About a minute cold.
VERSITYGW = bin/versitygw

all: build

build:
	$(GO) build -o $(BIN) .

setup:
	scripts/setup.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags tidb ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The README's test command: set-up, static checks, every test (real MariaDB,
# real etcd, real storm processes), the coordination packages under -race,
# then the TiDB suite.
test: setup vet fmt-check $(VERSITYGW)
	$(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -race -timeout 10m $(RACE_PKGS)
	$(MAKE) test-tidb

# The tests against TiDB (build tag tidb): the sink's tests in both
# transaction modes, multi-node imports with a SIGKILL, TiDB's key kinds,
# transaction size limits, ADMIN CHECKSUM TABLE.
test-tidb: setup $(TIDB_SERVER)
	STORM_TIDB_SERVER=$(abspath $(TIDB_SERVER)) $(GO) test -count=1 -tags tidb -timeout 20m -run 'TiDB' . ./e2e/ ./import/... ./internal/tidbtest/

tidb-server: $(TIDB_SERVER)

versitygw: $(VERSITYGW)

$(VERSITYGW): internal/versitygw/go.mod internal/versitygw/go.sum
	cd internal/versitygw && $(GO) build -o $(abspath $(VERSITYGW)) github.com/versity/versitygw/cmd/versitygw

$(TIDB_SERVER): internal/tidbserver/go.mod internal/tidbserver/go.sum
	cd internal/tidbserver && $(GO) build -o $(abspath $(TIDB_SERVER)) github.com/pingcap/tidb/cmd/tidb-server

# A real import on this host: a private MariaDB, a generated dump of 1,000,000
# rows (CSV and SQL), three nodes, one of them embedding etcd.
demo: setup build
	scripts/demo.sh

# storm (default config) against LOAD DATA, LOAD DATA with deferred indexes
# and myloader, on a generated and a sysbench dataset, on a private MariaDB
# (ROWS, RUNS, DATASETS, LOADERS, ...: see scripts/bench/run.sh and
# docs/bench-method.md), then `make sim` unless SIM=0. Figures:
# docs/performance.md.
bench: setup build $(VERSITYGW)
	scripts/bench/run.sh

# The coordination simulation (node/sim_test.go): 100 virtual nodes and
# 100,000 shards against one embedded etcd with a sink that sleeps 1 s,
# then 20 nodes at full speed (STORM_SIM_SIZES); about 14 minutes.
sim:
	STORM_SIM=1 $(GO) test -count=1 -run '^TestSimulation$$' -v -timeout 60m ./node/

fuzz:
	$(GO) test ./import/source/ -run '^$$' -fuzz FuzzCSV -fuzztime 30s
	$(GO) test ./import/source/ -run '^$$' -fuzz FuzzSQL -fuzztime 30s

clean:
	rm -rf bin .demo .bench
