#!/usr/bin/env bash
# Runs the whole test suite: installs what a fresh Debian 12 machine lacks,
# builds and installs lambda_detect, then runs
#   - the pg_regress tests (sql/ -> expected/) and the pgTAP tests (test/) in
#     a throwaway cluster made by pg_virtualenv, and
#   - the worker lifecycle tests (t/*.pl), which start their own servers.
# Servers run as a non-root user (postgres, when this runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib/prepare.sh

ensure_packages
build_and_install

status=0
echo "== pg_regress and pgTAP, in a throwaway cluster"
pg_virtualenv -t "${LAMBDA_DETECT_CLUSTER_OPTS[@]}" \
	-o "lambda_detect.scan_interval=500ms" \
	tools/lib/run-tests.sh || status=1

echo "== worker lifecycle (PostgreSQL::Test::Cluster)"
tools/lib/run-tap.sh || status=1

# make bench at a tiny size, so that it keeps working; no figure is judged
echo "== benchmark smoke run (BENCH_SCALE=tiny)"
bench_json=$(mktemp -t lambda_detect_bench_json.XXXXXX)
if BENCH_SCALE=tiny BENCH_JSON="$bench_json" tools/bench.sh >"$bench_json.log" 2>&1 &&
	tools/lib/check-bench-json.sh "$bench_json"; then
	echo "ok: make bench ran and wrote every figure"
else
	cat "$bench_json.log"
	status=1
fi
rm -f "$bench_json" "$bench_json.log"

if [ $status -eq 0 ]; then
	echo "== all test suites passed"
else
	echo "== some tests FAILED (see above)"
fi
exit $status
