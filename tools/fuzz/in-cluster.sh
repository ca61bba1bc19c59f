#!/usr/bin/env bash
# Runs inside pg_virtualenv for tools/fuzz.sh and the test suite: makes the
# database lambda_detect_fuzz (the worker never goes there, so the driver's
# ingest_now() calls are the only ingestion), installs the extension and the
# driver's step function (stage.sql) in it, and runs the driver with the
# arguments given.
set -euo pipefail
cd "$(dirname "$0")/../.."

samples=../shared/samples
out=
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--samples) samples=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
if [ -z "$out" ]; then
	out=$(mktemp -d -t lambda_detect_fuzz.XXXXXX)
fi

psql="psql -X -q -v ON_ERROR_STOP=1"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
$psql -d postgres -c "DROP DATABASE IF EXISTS lambda_detect_fuzz" -c "CREATE DATABASE lambda_detect_fuzz"
$psql -d lambda_detect_fuzz -c "CREATE EXTENSION lambda_detect" -f tools/fuzz/stage.sql
status=0
PGDATABASE=lambda_detect_fuzz tools/fuzz/fuzz --samples "$samples" --out "$out" "${args[@]}" || status=$?
# the directory holds the payloads of failures only
rmdir "$out" 2>/dev/null || echo "fuzz: the payloads of the failures are in $out"
exit $status
