#!/usr/bin/env bash
# Runs inside pg_virtualenv (PG* variables point at the throwaway cluster):
# pg_regress first, in its own database where the worker never goes, then
# pgTAP in the worker's database, then a short run of the fuzz driver in a
# database of its own.  Prints the diffs of a failed pg_regress.
set -uo pipefail
cd "$(dirname "$0")/../.."

status=0
export PG_SAMPLES_DIR="${PG_SAMPLES_DIR:-$(cd .. && pwd)/shared/samples}"

echo "== pg_regress"
if ! make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config installcheck; then
	status=1
	[ -f regression.diffs ] && cat regression.diffs
fi

echo "== pgTAP"
PGDATABASE=postgres pg_prove --ext .sql test/ || status=1

echo "== fuzz driver, a short run (tools/fuzz.sh runs 100,000)"
if make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config tools/fuzz/fuzz; then
	tools/fuzz/in-cluster.sh --count 2000 --samples "$PG_SAMPLES_DIR" || status=1
else
	status=1
fi

exit $status
