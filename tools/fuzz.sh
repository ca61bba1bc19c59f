#!/usr/bin/env bash
# The fuzz driver, from a fresh machine: installs what is missing, builds and
# installs lambda_detect and the driver (tools/fuzz/fuzz.c), then pushes
# mutated CloudTrail payloads through normalize(), the inbox, ingest_now()
# and every rule in a throwaway cluster made by pg_virtualenv.  Fails on a
# crash or an error of an unexpected class; payloads of failures are kept.
#
#   tools/fuzz.sh                      100,000 payloads, seed 1
#   tools/fuzz.sh --count 2000 --seed 7
#   FUZZ_PORT=5601 tools/fuzz.sh       a port of your choosing
#
# Options are the driver's: --count N, --seed S, --round R (payloads per
# ingest_now() and rule run), --samples DIR (more seeds; default
# ../shared/samples when present), --out DIR (failed payloads; default a
# new directory under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib/prepare.sh

ensure_packages
build_and_install
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config tools/fuzz/fuzz

port=${FUZZ_PORT:-$(free_port)}
pg_virtualenv -t -c "-p $port" -o "shared_preload_libraries=lambda_detect" \
	tools/fuzz/in-cluster.sh "$@"
