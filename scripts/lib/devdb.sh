# Sourced by scripts/demo.sh and scripts/bench/run.sh: start_devdb DIR TRIES
# starts bin/devdb (a private MariaDB) in DIR/db, adds its pid to the
# caller's pids array, waits up to TRIES quarter-seconds for it to print its
# address, and sets DBPORT, DBUSER, DBPASS and ETCDPORT (a free port for an
# etcd) from what it printed. Its output goes to DIR/devdb.out and .log.
start_devdb() {
  local dir=$1 tries=$2
  bin/devdb -dir "$dir/db" >"$dir/devdb.out" 2>"$dir/devdb.log" &
  pids+=($!)
  for _ in $(seq 1 "$tries"); do
    grep -q '^port=' "$dir/devdb.out" 2>/dev/null && break
    sleep 0.25
  done
  DBPORT=$(sed -n 's/^port=//p' "$dir/devdb.out")
  DBUSER=$(sed -n 's/^user=//p' "$dir/devdb.out")
  DBPASS=$(sed -n 's/^password=//p' "$dir/devdb.out")
  ETCDPORT=$(sed -n 's/^free_port=//p' "$dir/devdb.out")
  if [ -z "$DBPORT" ]; then
    echo "MariaDB did not start:"
    cat "$dir/devdb.log"
    exit 1
  fi
}
