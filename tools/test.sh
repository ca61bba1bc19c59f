#!/usr/bin/env bash
# Runs the whole test suite: installs what a fresh Debian 12 machine lacks,
# builds and installs lambda_detect, then runs the pg_regress tests (sql/ ->
# expected/) and the pgTAP tests (test/) in a throwaway cluster owned by a
# non-root user (postgres, when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib/prepare.sh

ensure_packages
build_and_install

echo "== running the tests in a throwaway cluster"
pg_virtualenv -t "${LAMBDA_DETECT_CLUSTER_OPTS[@]}" \
	-o "lambda_detect.scan_interval=500ms" \
	tools/lib/run-tests.sh
