#!/usr/bin/env bash
# Runs inside pg_virtualenv (PG* variables point at the throwaway cluster):
# pg_regress first, in its own database where the worker never goes, then
# pgTAP in the worker's database.  Prints the diffs of a failed pg_regress.
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

exit $status
