#!/usr/bin/env bash
# check-bench-json.sh FILE: the benchmark's JSON holds every key issue 4
# names, each with a number (the smoke run checks the shape, not the values).
set -euo pipefail
file=$1
status=0
for key in events ingest_files_eps ingest_inbox_eps copy_raw_eps naive_sql_eps \
	rule_ms_small rule_ms_large baseline_ms_small baseline_ms_large \
	latency_p50_ms latency_p99_ms bytes_per_event raw_bytes_per_event; do
	if ! grep -Eq "^  \"$key\": [0-9]+(\.[0-9]+)?,?$" "$file"; then
		echo "bench JSON: no number for \"$key\" in $file" >&2
		status=1
	fi
done
exit $status
