#!/usr/bin/env bash
# What `make bench` needs beyond scripts/setup.sh, from Debian's packages
# when missing: mydumper (which also ships myloader), the loader storm is
# compared with, and sysbench, which writes the second dataset.
set -euo pipefail

need=()
command -v mydumper >/dev/null 2>&1 || need+=(mydumper)
command -v myloader >/dev/null 2>&1 || need+=(mydumper)
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "bench setup: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
