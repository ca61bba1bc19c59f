#!/usr/bin/env bash
# Runs the benchmark (bench/run.sh) in a throwaway cluster with the worker:
# installs what a fresh Debian 12 machine lacks, builds and installs first.
#   BENCH_SCALE=quick (default, a few minutes) or large (>= 5 million events)
#   BENCH_JSON=path   where to write the figures as JSON (default bench/out/)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib/prepare.sh

ensure_packages
build_and_install
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config bench/latency >/dev/null

pg_virtualenv -t "${LAMBDA_DETECT_CLUSTER_OPTS[@]}" \
	-o "shared_buffers=1GB" -o "max_wal_size=8GB" -o "checkpoint_timeout=30min" \
	bench/run.sh
