#!/usr/bin/env bash
# make bench: storm with its default config against LOAD DATA, LOAD DATA with
# deferred indexes and myloader, on two datasets, on one private MariaDB;
# then, if SIM=1, the coordination simulation. The method: docs/bench-method.md.
#
#   RUNS=5 SIM=0 scripts/bench/run.sh
#
# Environment:
#   DATASETS    which datasets, in the order they run within a round (default: gen sysbench)
#                 gen       internal/gendump's tables as CSV (one file a table, a header
#                           line); myloader reads a mydumper dump of the same rows
#                 sysbench  `sysbench oltp_read_write prepare` tables (with their k_1
#                           index), dumped by mydumper: storm and myloader read that
#                           dump; the LOAD DATA loaders read a TSV of each table
#   ROWS        rows of the gen dataset, over all its tables (3,000,000)
#   SB_TABLES   sysbench tables (8)
#   SB_ROWS     rows of each sysbench table (300,000)
#   SB_CHUNK_ROWS  mydumper --rows for the sysbench dump: rows a file (100,000)
#   THREADS     myloader --threads; storm's node.workers is its default (4) unless
#               THREADS differs from it (4)
#   RUNS        rounds; the report shows each run and the medians (5)
#   LOADERS     which loaders; each round runs all of them, starting one further
#               down the list than the round before (default:
#               load-data load-data-deferred myloader storm)
#                 load-data           the mariadb client, LOAD DATA LOCAL INFILE, a client
#                                     per table, all at once, into the dump's tables
#                 load-data-deferred  the same into tables created without their
#                                     secondary indexes, then per table (still a client
#                                     per table, all at once) one ALTER TABLE adding
#                                     them all; verifies nothing
#                 myloader            myloader --threads THREADS on the mydumper dump
#                 storm               one node, storm's DEFAULT config (4 workers, digest
#                                     verification, shard-size auto), etcd already running
#               and, on request:
#                 storm-nodigest      the same with verify.mode = off
#                 storm-digest64      the same with verify.row-hash-bits = 64
#                 storm-embedded      one node with --embed-etcd: pays the embedded etcd's start
#                 storm-3nodes        three nodes, the first with --embed-etcd
#                 storm-sql           gen only: one node on gen's mydumper dump (SQL)
#                 storm-s3            gen only: storm, but the CSV dump is read from an S3
#                                     server on this host (bin/versitygw, `make versitygw`),
#                                     uploaded to it once per bench
#                 storm-parquet       gen only: storm on the dump's largest table alone, as
#                                     Parquet (bin/gen -parquet-table: text columns, snappy,
#                                     row groups of 131072 rows); rates on that table's rows
#                                     and CSV bytes
#                 storm-parquet-csv   gen only: the same table's CSV file alone, to compare
#                                     storm-parquet with
#   SHARD_SIZE  storm's import.shard-size for every storm loader (default: unset, storm's
#               default "auto"); setting it makes the storm row no longer the default config
#   BATCH_SIZE  storm's import.batch-size (default: unset, storm's default, 4 MiB)
#   SIM         1: also run the coordination simulation (make sim, ~14 min); 0: don't (1)
#   WORK        working directory, kept for inspection (.bench)
#   KEEP_DUMP   1: reuse the datasets in WORK if they were made with the same sizes (1)
#
# Every run starts from an empty target (the datasets' databases and
# storm_meta dropped, the server idle) and must end with every row (counted)
# and every index of the schema files (information_schema.STATISTICS), or it
# counts as failed; each loader's peak RSS is measured by
# scripts/bench/runner (wait4's ru_maxrss: the largest process, see there),
# each storm run's barrier, phase markers and done records are saved from etcd
# (bench-report -capture) for the breakdown of its seconds, and the results
# and the exact command go to WORK/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/devdb.sh

DATASETS=${DATASETS:-"gen sysbench"}
ROWS=${ROWS:-3000000}
SB_TABLES=${SB_TABLES:-8}
SB_ROWS=${SB_ROWS:-300000}
SB_CHUNK_ROWS=${SB_CHUNK_ROWS:-100000}
THREADS=${THREADS:-4}
RUNS=${RUNS:-5}
LOADERS=${LOADERS:-"load-data load-data-deferred myloader storm"}
SHARD_SIZE=${SHARD_SIZE:-}
BATCH_SIZE=${BATCH_SIZE:-}
SIM=${SIM:-1}
WORK=${WORK:-.bench}
KEEP_DUMP=${KEEP_DUMP:-1}
COMMAND="DATASETS=\"$DATASETS\" ROWS=$ROWS SB_TABLES=$SB_TABLES SB_ROWS=$SB_ROWS SB_CHUNK_ROWS=$SB_CHUNK_ROWS THREADS=$THREADS RUNS=$RUNS LOADERS=\"$LOADERS\""
[ -n "$SHARD_SIZE" ] && COMMAND="$COMMAND SHARD_SIZE=$SHARD_SIZE"
[ -n "$BATCH_SIZE" ] && COMMAND="$COMMAND BATCH_SIZE=$BATCH_SIZE"
COMMAND="$COMMAND SIM=$SIM make bench"

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
scripts/bench/setup.sh

echo "== building"
go build -o bin/storm .
go build -o bin/devdb ./scripts/devdb
go build -o bin/gen ./scripts/gen
go build -o bin/bench-runner ./scripts/bench/runner
go build -o bin/bench-report ./scripts/bench/report
go build -o bin/bench-splitkeys ./scripts/bench/splitkeys

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

ALLDBS="storm_demo sbtest"
reset() {
  local d
  for d in $ALLDBS storm_meta; do sql -e "DROP DATABASE IF EXISTS $d"; done
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

mb() { awk "BEGIN{printf \"%.1f\", $1/1e6}"; }

# --- the datasets --------------------------------------------------------------
# Each dataset directory D holds: db, tables, rows, bytes (of storm's input),
# storm-src and storm-header (its source.dir and source.csv.header), desc,
# schema/<t>.sql (the dump's schema file), load/<t>.sql (a LOAD DATA
# statement), dump-mydumper/ (myloader's input), and the loaders' scripts
# load-data.sh and load-data-deferred.sh (make_scripts).

# gen: internal/gendump's tables as CSV. myloader's input is a genuine
# mydumper dump of the loaded database.
prep_gen() {
  local D=$WORK/gen DB=storm_demo t
  local CSV=$D/dump-csv MYD=$D/dump-mydumper
  # The generator's code is part of the stamp: new tables or keys make a new dump.
  local stamp="rows=$ROWS gendump=$(cat internal/gendump/*.go | sha1sum | cut -c1-12)"
  mkdir -p "$D"
  if [ "$KEEP_DUMP" != 1 ] || [ "$(cat "$D/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== gen: generating $ROWS rows as CSV (one file per table)"
    rm -rf "$D"/*
    bin/gen -dir "$CSV" -rows "$ROWS" -format csv -files 1 -header=true
    echo "$DB" >"$D/db"
    for f in "$CSV"/$DB.*-schema.sql; do b=${f##*/}; b=${b#$DB.}; echo "${b%-schema.sql}"; done >"$D/tables"
    mkdir -p "$D/schema" "$D/load"
    for t in $(cat "$D/tables"); do
      cp "$CSV/$DB.$t-schema.sql" "$D/schema/$t.sql"
      # The dialect gendump writes (mydumper's CSV): quoted fields, backslash
      # escapes, \N for NULL, a header line.
      printf '%s\n' "LOAD DATA LOCAL INFILE '$CSV/$DB.$t.00000.csv' INTO TABLE \`$t\` CHARACTER SET utf8mb4" \
        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' IGNORE 1 LINES;" \
        >"$D/load/$t.sql"
    done
    make_scripts "$D"
    echo "== gen: making the mydumper dump (mydumper $(mydumper --version | awk '{print $2}'))"
    reset
    "$D/load-data.sh"
    local chunk=$((ROWS / 16 > 10000 ? ROWS / 16 : 10000))
    mydumper --host 127.0.0.1 --port "$DBPORT" --user "$DBUSER" --password "$DBPASS" \
      --database "$DB" --outputdir "$MYD" --threads "$THREADS" --rows "$chunk" --verbose 1
    echo "$ROWS" >"$D/rows"
    cat "$CSV"/*.csv | wc -c >"$D/bytes"
    echo "$CSV" >"$D/storm-src"
    echo true >"$D/storm-header"
    echo "internal/gendump's tables, $ROWS rows in $(wc -l <"$D/tables") tables: CSV $(mb "$(cat "$D/bytes")") MB, a file a table (storm and the LOAD DATA loaders read it); mydumper dump of the loaded rows $(mb "$(cat "$MYD"/$DB.*.sql | wc -c)") MB in $(ls "$MYD"/$DB.*.sql | grep -vc schema) files (myloader)" >"$D/desc"
    echo "$stamp" >"$D/.stamp"
  fi
}

# gen's largest table alone, for storm-parquet (as Parquet) and
# storm-parquet-csv (its CSV file): D/pq/parquet and D/pq/csv are the two
# source directories; D/pq/{table,rows,bytes} say what they hold (rows, and
# the bytes of its CSV file, on which both rows' rates are computed).
prep_gen_parquet() {
  local D=$WORK/gen DB=storm_demo big
  local CSV=$D/dump-csv PQ=$D/pq
  big=$(ls -S "$CSV"/$DB.*.csv | head -1)
  big=${big##*/$DB.}
  big=${big%%.*}
  local stamp
  stamp="$(cat "$D/.stamp") $big"
  if [ "$(cat "$PQ/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== gen: writing table $big alone as Parquet (bin/gen -parquet-table)"
    rm -rf "$PQ"
    mkdir -p "$PQ/csv"
    bin/gen -dir "$PQ/parquet" -rows "$ROWS" -parquet-table "$big" | tee "$PQ/gen.log"
    sed -n 's/.*Parquet, \([0-9]*\) rows.*/\1/p' "$PQ/gen.log" >"$PQ/rows"
    ln -s "$CSV/$DB.$big-schema.sql" "$CSV/$DB.$big.00000.csv" "$PQ/csv/"
    wc -c <"$CSV/$DB.$big.00000.csv" >"$PQ/bytes"
    echo "$big" >"$PQ/table"
    echo "$stamp" >"$PQ/.stamp"
  fi
  echo "   storm-parquet*: table $big alone, $(cat "$PQ/rows") rows; Parquet $(mb "$(wc -c <"$PQ/parquet/$DB.$big.00000.parquet")") MB, CSV $(mb "$(cat "$PQ/bytes")") MB"
}

# sysbench: written by sysbench itself, dumped by mydumper with its schema
# files; a TSV of each table (the mariadb client's batch output, which is
# what LOAD DATA reads by default) for the LOAD DATA loaders.
prep_sysbench() {
  local D=$WORK/sysbench DB=sbtest t
  local MYD=$D/dump-mydumper TSV=$D/tsv
  local stamp="tables=$SB_TABLES rows=$SB_ROWS chunk=$SB_CHUNK_ROWS $(sysbench --version)"
  mkdir -p "$D"
  if [ "$KEEP_DUMP" != 1 ] || [ "$(cat "$D/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== sysbench: oltp_read_write prepare, $SB_TABLES tables of $SB_ROWS rows ($(sysbench --version))"
    rm -rf "$D"/*
    reset
    sql -e "CREATE DATABASE $DB"
    sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$DBPORT" \
      --mysql-user="$DBUSER" --mysql-password="$DBPASS" --mysql-db="$DB" \
      --tables="$SB_TABLES" --table-size="$SB_ROWS" --threads="$THREADS" prepare >"$D/prepare.log"
    echo "== sysbench: the mydumper dump"
    mydumper --host 127.0.0.1 --port "$DBPORT" --user "$DBUSER" --password "$DBPASS" \
      --database "$DB" --outputdir "$MYD" --threads "$THREADS" --rows "$SB_CHUNK_ROWS" --verbose 1
    echo "$DB" >"$D/db"
    for f in "$MYD"/$DB.*-schema.sql; do b=${f##*/}; b=${b#$DB.}; echo "${b%-schema.sql}"; done >"$D/tables"
    mkdir -p "$D/schema" "$D/load" "$TSV"
    for t in $(cat "$D/tables"); do
      cp "$MYD/$DB.$t-schema.sql" "$D/schema/$t.sql"
      sql -B -N -e "SELECT * FROM $DB.\`$t\`" >"$TSV/$t.tsv"
      echo "LOAD DATA LOCAL INFILE '$TSV/$t.tsv' INTO TABLE \`$t\`;" >"$D/load/$t.sql"
    done
    make_scripts "$D"
    echo $((SB_TABLES * SB_ROWS)) >"$D/rows"
    cat "$MYD"/$DB.*.sql | wc -c >"$D/bytes"
    echo "$MYD" >"$D/storm-src"
    echo false >"$D/storm-header"
    echo "sysbench oltp_read_write prepare: $SB_TABLES tables x $SB_ROWS rows, each with its k_1 index; mydumper dump (--rows $SB_CHUNK_ROWS) $(mb "$(cat "$D/bytes")") MB in $(ls "$MYD"/$DB.*.sql | grep -vc schema) files (storm and myloader read it); TSV $(mb "$(cat "$TSV"/*.tsv | wc -c)") MB, a file a table (the LOAD DATA loaders)" >"$D/desc"
    echo "$stamp" >"$D/.stamp"
  fi
}

# make_scripts writes D's two LOAD DATA loaders.
make_scripts() {
  local D=$1 DB t
  DB=$(cat "$D/db")
  mkdir -p "$D/deferred"
  {
    echo '#!/usr/bin/env bash'
    echo 'set -e'
    echo "mariadb --defaults-file=$CNF -e 'CREATE DATABASE $DB'"
    for t in $(cat "$D/tables"); do echo "mariadb --defaults-file=$CNF $DB < $D/schema/$t.sql"; done
    for t in $(cat "$D/tables"); do echo "mariadb --defaults-file=$CNF --local-infile=1 $DB < $D/load/$t.sql &"; done
    echo 'for j in $(jobs -p); do wait "$j"; done'
  } >"$D/load-data.sh"
  {
    echo '#!/usr/bin/env bash'
    echo 'set -e'
    echo "mariadb --defaults-file=$CNF -e 'CREATE DATABASE $DB'"
    for t in $(cat "$D/tables"); do
      bin/bench-splitkeys -schema "$D/schema/$t.sql" -table "$t" -create "$D/deferred/$t.create.sql" -alter "$D/deferred/$t.alter.sql"
      echo "mariadb --defaults-file=$CNF $DB < $D/deferred/$t.create.sql"
    done
    for t in $(cat "$D/tables"); do
      if [ -s "$D/deferred/$t.alter.sql" ]; then
        echo "( set -e; mariadb --defaults-file=$CNF --local-infile=1 $DB < $D/load/$t.sql; mariadb --defaults-file=$CNF $DB < $D/deferred/$t.alter.sql ) &"
      else
        echo "mariadb --defaults-file=$CNF --local-infile=1 $DB < $D/load/$t.sql &"
      fi
    done
    echo 'for j in $(jobs -p); do wait "$j"; done'
  } >"$D/load-data-deferred.sh"
  chmod +x "$D/load-data.sh" "$D/load-data-deferred.sh"
}

for ds in $DATASETS; do
  case $ds in
  gen)
    prep_gen
    if [[ " $LOADERS " == *" storm-parquet"* ]]; then prep_gen_parquet; fi
    ;;
  sysbench) prep_sysbench ;;
  *)
    echo "unknown dataset $ds" >&2
    exit 1
    ;;
  esac
done

# storm-s3's bucket: gen's CSV dump in a private S3 server (versitygw) on
# this host, put there once per bench with curl's own request signing.
if [[ " $LOADERS " == *" storm-s3 "* && " $DATASETS " == *" gen "* ]]; then
  [ -x bin/versitygw ] || {
    echo "storm-s3 needs bin/versitygw: make versitygw" >&2
    exit 1
  }
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
  for f in "$WORK"/gen/dump-csv/*; do s3put -T "$f" "http://127.0.0.1:$S3PORT/bench/csv/${f##*/}"; done
  echo "   versitygw on 127.0.0.1:$S3PORT: s3://bench/csv holds gen's CSV dump"
fi

# --- storm's config ----------------------------------------------------------
# The default config: only what says where things are. THREADS, SHARD_SIZE
# and BATCH_SIZE are written only when set away from storm's defaults.
storm_config() { # FILE JOB SOURCE HEADER ETCDPORT [EXTRA TOML LINES...]
  local file=$1 job=$2 src=$3 header=$4 port=$5 line
  shift 5
  {
    printf '[job]\nid = "%s"\n' "$job"
    printf '[etcd]\nendpoints = ["http://127.0.0.1:%s"]\nembed-dir = "%s"\n' "$port" "$WORK/etcd"
    printf '[source]\ndir = "%s"\n[source.csv]\nheader = %s\n' "$src" "$header"
    printf '[target]\nhost = "127.0.0.1"\nport = %s\nuser = "%s"\npassword = "%s"\n' "$DBPORT" "$DBUSER" "$DBPASS"
    [ "$THREADS" != 4 ] && printf '[node]\nworkers = %s\n' "$THREADS"
    if [ -n "$SHARD_SIZE$BATCH_SIZE" ]; then
      echo '[import]'
      [ -n "$SHARD_SIZE" ] && echo "shard-size = \"$SHARD_SIZE\""
      [ -n "$BATCH_SIZE" ] && echo "batch-size = $BATCH_SIZE"
    fi
    for line in "$@"; do echo "$line"; done
  } >"$file"
}

RESULTS="$WORK/results.jsonl"
LOADS="$WORK/loads.txt"
CAPTURES="$WORK/captures"
LOGS="$WORK/logs"
: >"$RESULTS"
: >"$LOADS"
rm -rf "$LOGS" "$CAPTURES"
mkdir -p "$LOGS" "$CAPTURES"

check_rows() { # DATASET-DIR LABEL [TABLES ROWS]: by default all of D's tables and rows
  local D=$1 DB n want tables
  DB=$(cat "$D/db")
  tables=${3:-$(cat "$D/tables")}
  want=${4:-$(cat "$D/rows")}
  n=$(sql -N -e "SELECT SUM(n) FROM ($(for t in $tables; do printf 'SELECT COUNT(*) n FROM %s.`%s` UNION ALL ' "$DB" "$t"; done | sed 's/ UNION ALL $//')) c")
  if [ "$n" != "$want" ]; then
    echo "   $2: the target holds $n rows, not $want" >&2
    return 1
  fi
}

# check_indexes compares the indexes the target's tables have with those of
# the dump's schema files: a loader must not win by leaving one out.
check_indexes() { # DATASET-DIR LABEL [TABLES]: by default all of D's tables
  local D=$1 DB n want tables t
  DB=$(cat "$D/db")
  tables=${3:-$(cat "$D/tables")}
  want=$(for t in $tables; do cat "$D/schema/$t.sql"; done | grep -ciE '^[[:space:]]*(PRIMARY KEY|UNIQUE KEY|UNIQUE INDEX|UNIQUE|KEY|INDEX|FULLTEXT|SPATIAL)[[:space:]]' || true)
  n=$(sql -N -e "SELECT COUNT(DISTINCT TABLE_NAME, INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME IN ($(for t in $tables; do printf "'%s'," "$t"; done | sed 's/,$//'))")
  if [ "$n" != "$want" ]; then
    echo "   $2: the target's tables have $n indexes, the schema files $want" >&2
    return 1
  fi
}

run_one() { # DATASET LOADER RUN
  local ds=$1 l=$2 r=$3 D=$WORK/$1
  local label="$ds/$l/$r" log="$LOGS/$ds.$l.$r" job="bench-$ds-$l-$r-$$"
  local res="$log.json" src header capture=0 part=()
  case $l in storm-sql | storm-s3 | storm-parquet*)
    [ "$ds" = gen ] || return 0 # gen only (the sysbench dataset is SQL already)
    ;;
  esac
  src=$(cat "$D/storm-src")
  header=$(cat "$D/storm-header")
  reset
  rm -rf "$WORK/etcd"
  echo "$label load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOADS"
  local ok=0
  case $l in
  load-data | load-data-deferred)
    bin/bench-runner -label "$label" -o "$res" -server-pid "$SERVERPID" -- "$D/$l.sh" >"$log.out" 2>"$log.err" || ok=$?
    ;;
  myloader)
    bin/bench-runner -label "$label" -o "$res" -server-pid "$SERVERPID" -- myloader --host 127.0.0.1 --port "$DBPORT" --user "$DBUSER" \
      --password "$DBPASS" --directory "$D/dump-mydumper" --threads "$THREADS" --verbose 1 >"$log.out" 2>"$log.err" || ok=$?
    ;;
  storm | storm-nodigest | storm-digest64 | storm-sql | storm-s3 | storm-parquet | storm-parquet-csv)
    local extra=()
    [ "$l" = storm-nodigest ] && extra=('[verify]' 'mode = "off"')
    [ "$l" = storm-digest64 ] && extra=('[verify]' 'row-hash-bits = 64')
    case $l in
    storm-sql) src=$D/dump-mydumper ;;
    storm-s3)
      src=s3://bench/csv
      extra=('[source.s3]' "endpoint = \"http://127.0.0.1:$S3PORT\"" 'force-path-style = true'
        "access-key = \"$S3KEY\"" "secret-access-key = \"$S3SECRET\"")
      ;;
    storm-parquet | storm-parquet-csv)
      src=$D/pq/csv
      [ "$l" = storm-parquet ] && src=$D/pq/parquet
      # One table: its rows and indexes are checked, its rows and CSV bytes are the rates' base.
      part=("$(cat "$D/pq/table")" "$(cat "$D/pq/rows")" "$(cat "$D/pq/bytes")")
      ;;
    esac
    storm_config "$WORK/storm.toml" "$job" "$src" "$header" "$EXTPORT" "${extra[@]}"
    bin/bench-runner -label "$label" -o "$res" -server-pid "$SERVERPID" -- bin/storm node --config "$WORK/storm.toml" --node-id n1 \
      >"$log.out" 2>"$log.err" || ok=$?
    capture=1
    ;;
  storm-embedded)
    storm_config "$WORK/storm.toml" "$job" "$src" "$header" "$ETCDPORT"
    bin/bench-runner -label "$label" -o "$res" -server-pid "$SERVERPID" -- bin/storm node --config "$WORK/storm.toml" --node-id n1 --embed-etcd \
      >"$log.out" 2>"$log.err" || ok=$?
    ;;
  storm-3nodes)
    storm_config "$WORK/storm.toml" "$job" "$src" "$header" "$ETCDPORT"
    bin/bench-runner -label "$label" -o "$res" -server-pid "$SERVERPID" -- \
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
  # The embedding runs' etcd is gone with them: nothing to save.
  if [ "$capture" = 1 ]; then
    bin/bench-report -capture -etcd "http://127.0.0.1:$EXTPORT" -job "$job" -workers "$THREADS" \
      -o "$CAPTURES/$ds.$l.$r.json" 2>>"$log.err" || echo "   $label: could not save the job's records from etcd" >&2
  fi
  # A run on part of the dataset says which part (bench-report's rates).
  [ ${#part[@]} -gt 0 ] && [ -s "$res" ] && sed -i "s/^{/{\"rows\":${part[1]},\"bytes\":${part[2]},\"part\":\"${part[0]}\",/" "$res"
  if [ "$ok" -ne 0 ]; then
    echo "   $label failed (exit $ok): see $log.err" >&2
  elif ! check_rows "$D" "$label" "${part[0]:-}" "${part[1]:-}"; then
    echo "{\"label\":\"$label\",\"exit\":[99]}" >"$res"
  elif ! check_indexes "$D" "$label" "${part[0]:-}"; then
    echo "{\"label\":\"$label\",\"exit\":[98]}" >"$res"
  fi
  [ -s "$res" ] || echo "{\"label\":\"$label\",\"exit\":[$ok]}" >"$res"
  cat "$res" >>"$RESULTS"
  sed 's/.*"wall_s":\([0-9.]*\).*"max_maxrss_kib":\([0-9]*\).*/   wall \1 s, peak RSS \2 KiB/' "$res"
}

DATASETS_FILE="$WORK/datasets.jsonl"
: >"$DATASETS_FILE"
for ds in $DATASETS; do
  D=$WORK/$ds
  printf '{"name":"%s","rows":%s,"bytes":%s,"tables":%s,"desc":"%s"}\n' "$ds" "$(cat "$D/rows")" "$(cat "$D/bytes")" \
    "$(wc -l <"$D/tables")" "$(sed 's/"/\\"/g' "$D/desc")" >>"$DATASETS_FILE"
  echo "== dataset $ds: $(cat "$D/desc")"
done

read -r -a LOADER_LIST <<<"$LOADERS"
echo "== $RUNS rounds of: $LOADERS on $DATASETS (threads $THREADS)"
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
START_TIME=$(date +%s)
for r in $(seq 1 "$RUNS"); do
  for ds in $DATASETS; do
    # Each round starts one loader further down the list, so no loader
    # always runs first (on a cold cache) or right after the same one.
    n=${#LOADER_LIST[@]}
    for i in $(seq 0 $((n - 1))); do
      l=${LOADER_LIST[$(((i + r - 1) % n))]}
      echo "-- $ds: $l, run $r (load $(cut -d' ' -f1 /proc/loadavg))"
      run_one "$ds" "$l" "$r"
    done
  done
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START_TIME))

OUT="$WORK/results.md"
{
  echo "Command: \`$COMMAND\` ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo))"
  echo
  echo "MariaDB $(mariadbd --version | sed 's/.*Ver //; s/ for .*//'), myloader threads $THREADS; storm: its default config$(
    [ "$THREADS" != 4 ] && echo ", node.workers $THREADS"
    [ -n "$SHARD_SIZE" ] && echo ", import.shard-size $SHARD_SIZE (not the default)"
    [ -n "$BATCH_SIZE" ] && echo ", import.batch-size $BATCH_SIZE (not the default)"
  )."
  echo "Load average (1/5/15 min) before: $START_LOAD; after: $END_LOAD. $RUNS round(s) took $ELAPSED s ($((ELAPSED / RUNS)) s a round)."
  echo
  bin/bench-report -results "$RESULTS" -datasets "$DATASETS_FILE" -captures "$CAPTURES"
  for ds in $DATASETS; do
    if ls "$LOGS"/$ds.storm-3nodes.*.err >/dev/null 2>&1; then
      echo "Barrier latency of the last 3-node run on $ds: $(bin/bench-report -barrier "$LOGS/$ds.storm-3nodes.$RUNS.err" 2>&1)"
    fi
  done
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
