#!/usr/bin/env bash
# make bench: storm against myloader and LOAD DATA on one private MariaDB,
# then the coordination simulation. See README.md, "Performance".
#
#   ROWS=5000000 THREADS=4 RUNS=3 scripts/bench/run.sh
#
# Environment:
#   ROWS        rows of the generated dump (default 5,000,000)
#   THREADS     loader threads: myloader --threads, storm node.workers (4)
#   RUNS        runs of every loader; the report shows each and the median (3)
#   LOADERS     which loaders, in the order they run within a round (default:
#               load-data myloader storm storm-s3 storm-digest storm-digest64 storm-embedded storm-3nodes storm-sql)
#                 load-data       the mariadb client, LOAD DATA LOCAL INFILE, a stream per table
#                 myloader        myloader --threads THREADS on a mydumper dump of the data
#                 storm           one node, verify.mode = off, etcd already running (the
#                                 production shape: the bench starts one etcd for all runs)
#                 storm-s3        storm, but the CSV dump is read from an S3 server on this host
#                                 (bin/versitygw, `make versitygw`), uploaded to it once per bench
#                 storm-digest    the same with verify.mode = digest (32-bit row hash, the default)
#                 storm-digest64  the same with verify.row-hash-bits = 64
#                 storm-embedded  one node with --embed-etcd: pays the embedded etcd's start
#                 storm-3nodes    three nodes, the first with --embed-etcd, verify off
#                 storm-sql       one node on the mydumper dump (SQL), verify off
#   SHARD_SIZE  storm's import.shard-size in bytes (16 MiB)
#   BATCH_SIZE  storm's import.batch-size in bytes (4 MiB, storm's default)
#   SIM         1: also run the coordination simulation (make sim); 0: don't (1)
#   WORK        working directory, kept for inspection (.bench)
#   KEEP_DUMP   1: reuse the dumps in WORK if they were made for the same ROWS (1)
#
# Every run starts from an empty target (both databases dropped), each
# loader's peak RSS is measured by scripts/bench/runner (wait4's ru_maxrss:
# the largest process, see there), and the results and the exact command go
# to WORK/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/devdb.sh
ROOT=$(pwd)

ROWS=${ROWS:-5000000}
THREADS=${THREADS:-4}
RUNS=${RUNS:-3}
LOADERS=${LOADERS:-"load-data myloader storm storm-s3 storm-digest storm-digest64 storm-embedded storm-3nodes storm-sql"}
SHARD_SIZE=${SHARD_SIZE:-16777216}
BATCH_SIZE=${BATCH_SIZE:-4194304}
SIM=${SIM:-1}
WORK=${WORK:-.bench}
KEEP_DUMP=${KEEP_DUMP:-1}
DB=storm_demo
COMMAND="ROWS=$ROWS THREADS=$THREADS RUNS=$RUNS SHARD_SIZE=$SHARD_SIZE BATCH_SIZE=$BATCH_SIZE LOADERS=\"$LOADERS\" make bench"

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
scripts/bench/setup.sh

echo "== building"
go build -o bin/storm .
go build -o bin/devdb ./scripts/devdb
go build -o bin/gen ./scripts/gen
go build -o bin/bench-runner ./scripts/bench/runner
go build -o bin/bench-report ./scripts/bench/report

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== starting a private MariaDB"
rm -rf "$WORK/db"
start_devdb "$WORK" 240
SERVERPID=$(pgrep -f -- "--datadir=$WORK/db/data" | head -1)
echo "   MariaDB $(mariadbd --version | sed 's/.*Ver //; s/ for .*//') on 127.0.0.1:$DBPORT (pid $SERVERPID)"
CNF="$WORK/client.cnf"
cat >"$CNF" <<CNF
[client]
host=127.0.0.1
port=$DBPORT
user=$DBUSER
password=$DBPASS
CNF
chmod 600 "$CNF"
sql() { mariadb --defaults-file="$CNF" "$@"; }

# An etcd for the runs that do not embed one, as a job would find it in
# production: already running.
# (not the port the embedding runs serve, nor its peer port, the next one)
while :; do
  ports=($(bin/bench-runner -free-ports 2))
  EXTPORT=${ports[0]} EXTPEER=${ports[1]}
  for p in $EXTPORT $EXTPEER; do [ "$p" = "$ETCDPORT" ] || [ "$p" = $((ETCDPORT + 1)) ] && continue 2; done
  break
done
rm -rf "$WORK/etcd-ext"
etcd --name bench --data-dir "$WORK/etcd-ext" --log-level error \
  --listen-client-urls "http://127.0.0.1:$EXTPORT" --advertise-client-urls "http://127.0.0.1:$EXTPORT" \
  --listen-peer-urls "http://127.0.0.1:$EXTPEER" --initial-advertise-peer-urls "http://127.0.0.1:$EXTPEER" \
  --initial-cluster "bench=http://127.0.0.1:$EXTPEER" >"$WORK/etcd-ext.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  etcdctl --endpoints "127.0.0.1:$EXTPORT" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
echo "   etcd $(etcd --version | awk '/etcd Version/{print $3}') on 127.0.0.1:$EXTPORT"

# --- the dumps ---------------------------------------------------------------
CSV="$WORK/dump-csv"
MYD="$WORK/dump-mydumper"
stamp="rows=$ROWS"
if [ "$KEEP_DUMP" != 1 ] || [ "$(cat "$CSV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "== generating $ROWS rows as CSV (one file per table)"
  rm -rf "$CSV" "$MYD"
  bin/gen -dir "$CSV" -rows "$ROWS" -format csv -files 1 -header=true
  echo "$stamp" >"$CSV/.stamp"
fi
BYTES=$(cat "$CSV"/*.csv | wc -c)
TABLES=$(for f in "$CSV"/$DB.*-schema.sql; do b=${f##*/}; b=${b#$DB.}; echo "${b%-schema.sql}"; done)

reset() {
  sql -e "DROP DATABASE IF EXISTS $DB; DROP DATABASE IF EXISTS storm_meta"
  settle
}

# settle waits until the server has been idle (< 5% of a core) for a second,
# for at most 30 s: a run must not pay for the last one's background work.
settle() {
  local a b
  for _ in $(seq 1 30); do
    a=$(awk '{print $14+$15}' "/proc/$SERVERPID/stat")
    sleep 1
    b=$(awk '{print $14+$15}' "/proc/$SERVERPID/stat")
    [ $((b - a)) -lt 5 ] && return 0
  done
}

# The LOAD DATA baseline: the mariadb client, one stream per table, all at
# once, each LOAD DATA LOCAL INFILE of a whole file (one transaction).
LOADDATA="$WORK/load-data.sh"
mkdir -p "$WORK/load-data"
for t in $TABLES; do
  # The dialect gendump writes (mydumper's CSV): quoted fields, backslash
  # escapes, \N for NULL, a header line.
  printf '%s\n' "LOAD DATA LOCAL INFILE '$CSV/$DB.$t.00000.csv' INTO TABLE \`$t\` CHARACTER SET utf8mb4" \
    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' IGNORE 1 LINES;" \
    >"$WORK/load-data/$t.sql"
done
{
  echo '#!/usr/bin/env bash'
  echo 'set -e'
  echo "mariadb --defaults-file=$CNF -e 'CREATE DATABASE $DB'"
  for t in $TABLES; do echo "mariadb --defaults-file=$CNF $DB < $CSV/$DB.$t-schema.sql"; done
  for t in $TABLES; do echo "mariadb --defaults-file=$CNF --local-infile=1 $DB < $WORK/load-data/$t.sql &"; done
  echo 'for j in $(jobs -p); do wait "$j"; done'
} >"$LOADDATA"
chmod +x "$LOADDATA"

# myloader's input is a genuine mydumper dump of the loaded database.
if [ ! -f "$MYD/.stamp" ] || [ "$(cat "$MYD/.stamp")" != "$stamp" ]; then
  echo "== making the mydumper dump (mydumper $(mydumper --version | awk '{print $2}'))"
  reset
  "$LOADDATA"
  rm -rf "$MYD"
  chunk=$(( ROWS / 16 > 10000 ? ROWS / 16 : 10000 ))
  mydumper --host 127.0.0.1 --port "$DBPORT" --user "$DBUSER" --password "$DBPASS" \
    --database "$DB" --outputdir "$MYD" --threads "$THREADS" --rows "$chunk" --verbose 1
  echo "$stamp" >"$MYD/.stamp"
fi
MYDBYTES=$(cat "$MYD"/$DB.*.sql | wc -c)

# storm-s3's bucket: the CSV dump in a private S3 server (versitygw), put
# there with curl's own request signing.
if [[ " $LOADERS " == *" storm-s3 "* ]]; then
  S3PORT=$(bin/bench-runner -free-ports 1)
  S3KEY=bench S3SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  rm -rf "$WORK/s3" && mkdir -p "$WORK/s3/root" "$WORK/s3/meta"
  ROOT_ACCESS_KEY=$S3KEY ROOT_SECRET_KEY=$S3SECRET bin/versitygw --port "127.0.0.1:$S3PORT" --quiet \
    posix --sidecar "$WORK/s3/meta" "$WORK/s3/root" >"$WORK/s3/versitygw.log" 2>&1 &
  pids+=($!)
  s3put() { curl -sS -f -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$S3KEY:$S3SECRET" "$@" >/dev/null; }
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.1; done
  s3put -X PUT "http://127.0.0.1:$S3PORT/bench"
  for f in "$CSV"/*.sql "$CSV"/*.csv; do s3put -T "$f" "http://127.0.0.1:$S3PORT/bench/csv/${f##*/}"; done
  echo "   versitygw on 127.0.0.1:$S3PORT: s3://bench/csv holds the CSV dump"
fi

# --- storm's config ----------------------------------------------------------
storm_config() { # FILE JOB SOURCE VERIFY ETCDPORT [ROW_HASH_BITS]
  cat >"$1" <<TOML
[job]
id = "$2"
[etcd]
endpoints = ["http://127.0.0.1:$5"]
embed-dir = "$WORK/etcd"
[source]
dir = "$3"
[source.csv]
header = true
[target]
host = "127.0.0.1"
port = $DBPORT
user = "$DBUSER"
password = "$DBPASS"
[node]
workers = $THREADS
[import]
shard-size = $SHARD_SIZE
batch-size = $BATCH_SIZE
[verify]
mode = "$4"
row-hash-bits = ${6:-32}
[log]
level = "info"
TOML
}

RESULTS="$WORK/results.jsonl"
LOADS="$WORK/loads.txt"
: >"$RESULTS"
: >"$LOADS"
LOGS="$WORK/logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"

check_rows() { # LABEL
  local n
  n=$(sql -N -e "SELECT SUM(n) FROM ($(for t in $TABLES; do printf 'SELECT COUNT(*) n FROM %s.`%s` UNION ALL ' $DB "$t"; done | sed 's/ UNION ALL $//')) c")
  if [ "$n" != "$ROWS" ]; then
    echo "   $1: the target holds $n rows, not $ROWS" >&2
    return 1
  fi
}

run_one() { # LOADER RUN
  local l=$1 r=$2 label="$1/$2" log="$LOGS/$1.$2" job="bench-$1-$2-$$"
  local res="$log.json"
  reset
  rm -rf "$WORK/etcd"
  echo "$label load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOADS"
  local ok=0
  case $l in
  load-data)
    bin/bench-runner -label "$label" -o "$res" -- "$LOADDATA" >"$log.out" 2>"$log.err" || ok=$?
    ;;
  myloader)
    bin/bench-runner -label "$label" -o "$res" -- myloader --host 127.0.0.1 --port "$DBPORT" --user "$DBUSER" \
      --password "$DBPASS" --directory "$MYD" --threads "$THREADS" --verbose 1 >"$log.out" 2>"$log.err" || ok=$?
    ;;
  storm | storm-s3 | storm-digest | storm-digest64 | storm-sql)
    local mode=off src=$CSV bits=32
    [ "$l" = storm-digest ] && mode=digest
    [ "$l" = storm-digest64 ] && mode=digest bits=64
    [ "$l" = storm-sql ] && src=$MYD
    [ "$l" = storm-s3 ] && src=s3://bench/csv
    storm_config "$WORK/storm.toml" "$job" "$src" "$mode" "$EXTPORT" "$bits"
    [ "$l" = storm-s3 ] && printf '[source.s3]\nendpoint = "http://127.0.0.1:%s"\nforce-path-style = true\naccess-key = "%s"\nsecret-access-key = "%s"\n' \
      "$S3PORT" "$S3KEY" "$S3SECRET" >>"$WORK/storm.toml"
    bin/bench-runner -label "$label" -o "$res" -- bin/storm node --config "$WORK/storm.toml" --node-id n1 \
      >"$log.out" 2>"$log.err" || ok=$?
    ;;
  storm-embedded)
    storm_config "$WORK/storm.toml" "$job" "$CSV" off "$ETCDPORT"
    bin/bench-runner -label "$label" -o "$res" -- bin/storm node --config "$WORK/storm.toml" --node-id n1 --embed-etcd \
      >"$log.out" 2>"$log.err" || ok=$?
    ;;
  storm-3nodes)
    storm_config "$WORK/storm.toml" "$job" "$CSV" off "$ETCDPORT"
    bin/bench-runner -label "$label" -o "$res" -- \
      bin/storm node --config "$WORK/storm.toml" --node-id n1 --embed-etcd --- \
      bin/storm node --config "$WORK/storm.toml" --node-id n2 --- \
      bin/storm node --config "$WORK/storm.toml" --node-id n3 \
      >"$log.out" 2>"$log.err" || ok=$?
    ;;
  *)
    echo "unknown loader $l" >&2
    return 1
    ;;
  esac
  if [ "$ok" -ne 0 ]; then
    echo "   $label failed (exit $ok): see $log.err" >&2
  elif ! check_rows "$label"; then
    echo "{\"label\":\"$label\",\"exit\":[99]}" >"$res"
  fi
  [ -s "$res" ] || echo "{\"label\":\"$label\",\"exit\":[$ok]}" >"$res"
  cat "$res" >>"$RESULTS"
  sed 's/.*"wall_s":\([0-9.]*\).*"max_maxrss_kib":\([0-9]*\).*/   wall \1 s, peak RSS \2 KiB/' "$res"
}

echo "== $RUNS rounds of: $LOADERS ($ROWS rows, $(awk "BEGIN{printf \"%.1f\", $BYTES/1e6}") MB of CSV; threads $THREADS)"
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$RUNS"); do
  for l in $LOADERS; do
    echo "-- $l, run $r (load $(cut -d' ' -f1 /proc/loadavg))"
    run_one "$l" "$r"
  done
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

OUT="$WORK/results.md"
{
  echo "Command: \`$COMMAND\` ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
  echo
  echo "Dataset: $ROWS rows in $(echo "$TABLES" | wc -w) tables, CSV $(awk "BEGIN{printf \"%.1f\", $BYTES/1e6}") MB; mydumper SQL dump $(awk "BEGIN{printf \"%.1f\", $MYDBYTES/1e6}") MB in $(ls "$MYD"/$DB.*.sql | grep -vc schema) files."
  echo "MariaDB $(mariadbd --version | sed 's/.*Ver //; s/ for .*//'), threads $THREADS, storm shard-size $SHARD_SIZE, batch-size $BATCH_SIZE."
  echo "Load average (1/5/15 min) before: $START_LOAD; after: $END_LOAD."
  echo
  bin/bench-report -results "$RESULTS" -rows "$ROWS" -bytes "$BYTES"
  echo
  for l in storm storm-digest storm-digest64; do
    if ls "$LOGS"/$l.*.err >/dev/null 2>&1; then
      echo "Phases of the $l runs: $(bin/bench-report -phases "$LOGS/$l.*.err" 2>&1)"
    fi
  done
  if ls "$LOGS"/storm-3nodes.*.err >/dev/null 2>&1; then
    echo "Barrier latency of the last 3-node run: $(bin/bench-report -barrier "$LOGS/storm-3nodes.$RUNS.err" 2>&1)"
  fi
} >"$OUT"
echo
cat "$OUT"

if [ "$SIM" = 1 ]; then
  echo
  echo "== the coordination simulation (make sim)"
  cleanup
  pids=()
  make --no-print-directory sim | tee "$WORK/sim.txt"
fi
