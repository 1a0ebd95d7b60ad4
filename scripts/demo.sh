#!/usr/bin/env bash
# make demo: a real parallel import on this host. A private MariaDB on a free
# loopback port with a temp datadir, a generated dump (CSV and SQL, several
# tables), three storm nodes -- the first embeds etcd -- and the barrier.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/devdb.sh

ROWS=${ROWS:-1000000}
NODES=${NODES:-3}
WORK=${WORK:-.demo}
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

go build -o bin/storm .
go build -o bin/devdb ./scripts/devdb
go build -o bin/gen ./scripts/gen

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== starting a private MariaDB"
start_devdb "$WORK" 120
echo "   MariaDB on 127.0.0.1:$DBPORT"

echo "== generating a dump of $ROWS rows (CSV and SQL)"
bin/gen -dir "$WORK/dump" -rows "$ROWS" -format mixed -files 4 -header=true

cat >"$WORK/storm.toml" <<TOML
[job]
id = "demo"

[etcd]
endpoints = ["http://127.0.0.1:$ETCDPORT"]
embed-dir = "$WORK/etcd"

[source]
dir = "$WORK/dump"

[source.csv]
header = true

[target]
host = "127.0.0.1"
port = $DBPORT
user = "$DBUSER"
# In production prefer STORM_TARGET_PASSWORD or a file readable by storm only.
password = "$DBPASS"

[node]
workers = 2

[import]
shard-size = 8388608
TOML
echo "== config: $WORK/storm.toml"

echo "== starting $NODES nodes (n1 embeds etcd on 127.0.0.1:$ETCDPORT)"
start=$(date +%s%N)
bin/storm node --config "$WORK/storm.toml" --node-id n1 --embed-etcd >"$WORK/n1.out" 2>"$WORK/n1.log" &
pids+=($!); nodepids=($!)
sleep 1
for i in $(seq 2 "$NODES"); do
  bin/storm node --config "$WORK/storm.toml" --node-id "n$i" >"$WORK/n$i.out" 2>"$WORK/n$i.log" &
  pids+=($!); nodepids+=($!)
done

# How a script waits for the whole parallel import: one barrier key.
bin/storm wait --config "$WORK/storm.toml" --json >"$WORK/barrier.json" 2>"$WORK/wait.log" &
waitpid=$!

# Progress, as an operator would read it.
while :; do
  sleep 3
  alive=0
  for p in "${nodepids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive+1)); done
  [ "$alive" -eq 0 ] && break
  # A short leash: once n1 is gone its etcd is too, and status would retry
  # for node.start-timeout (30 s) before giving up.
  timeout 2 bin/storm status --config "$WORK/storm.toml" 2>/dev/null | sed -n '1,3p' | sed 's/^/   /' || true
done
codes=()
for p in "${nodepids[@]}"; do
  if wait "$p"; then codes+=(0); else codes+=($?); fi
done
end=$(date +%s%N)

echo "== nodes exited with: ${codes[*]}"
for i in $(seq 1 "$NODES"); do sed 's/^/   n'"$i"': /' "$WORK/n$i.out"; done
wait "$waitpid" || true
echo "== the barrier (/storm/jobs/demo/barrier):"
sed 's/^/   /' "$WORK/barrier.json"
ms=$(( (end - start) / 1000000 ))
printf '   wall time: %d.%03ds for %s rows\n' $((ms / 1000)) $((ms % 1000)) "$ROWS"
for c in "${codes[@]}"; do [ "$c" -eq 0 ] || exit "$c"; done
