#!/usr/bin/env bash
# Runs the worker lifecycle tests (t/*.pl) with PostgreSQL::Test::Cluster,
# which starts its own servers.  initdb refuses to run as root, so as root
# they run as the postgres user, in a scratch directory it owns.
# Arguments name the tests to run (t/005_x.pl ...); none runs them all.
set -euo pipefail
cd "$(dirname "$0")/../.."
bindir=/usr/lib/postgresql/15/bin
perl_lib=/usr/lib/postgresql/15/lib/pgxs/src/test/perl
scratch=$(mktemp -d -t lambda_detect_tap.XXXXXX)
trap '[ -n "${KEEP_TAP:-}" ] || rm -rf "$scratch"' EXIT
cp -r t "$scratch/t"
# t/006 runs the README's grants of the worker duty word for word
cp README.md "$scratch/README.md"

tests=()
for t in "$@"; do tests+=("$scratch/t/$(basename "$t")"); done
[ ${#tests[@]} -gt 0 ] || tests=("$scratch"/t/*.pl)
run=(env PATH="$bindir:$PATH" TESTDIR="$scratch" PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
	prove -I "$perl_lib" --timer "${tests[@]}")
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres: "$scratch"
	(cd "$scratch" && runuser -u postgres -- "${run[@]}")
else
	(cd "$scratch" && "${run[@]}")
fi
