#!/usr/bin/env bash
# Installs what storm's tests and demo need from Debian's packages, when it is
# missing: MariaDB (the target the tests start privately) and etcd (its
# binaries, for multi-member tests, and etcdctl for reading progress),
# mydumper and mariadb-dump (tests import dumps they write), sysbench (the
# bench's second dataset), and systemd-analyze, which checks the unit in
# scripts/systemd.
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
# Dumps written by real tools (e2e/realdumps_test.go): mydumper, and
# mariadb-dump, which comes with mariadb-client.
command -v mydumper >/dev/null 2>&1 || need+=(mydumper)
command -v mariadb-dump >/dev/null 2>&1 || need+=(mariadb-client)
# The bench's second dataset (scripts/bench/run.sh) is written by sysbench.
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
# systemd-analyze checks scripts/systemd/storm@.service (e2e/systemd_test.go);
# the package installs without a running systemd.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "setup: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The packages' own service must not start: tests run private servers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
