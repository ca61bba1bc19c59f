#!/usr/bin/env bash
# The benchmark, run inside a throwaway cluster (tools/bench.sh starts it).
# Every figure is measured here, in this run, next to its baseline:
#   ingest  (a) log files through the worker's directory scan
#           (b) client COPY into lambda_detect.inbox until the worker drained it
#           (c) baseline: plain COPY into a one-column jsonb table, no index
#           (d) baseline: COPY raw JSON, then INSERT ... SELECT of the same
#               columns into a table with the same indexes
#   rule    run_rule() with the default 60-minute window at two table sizes,
#           against the same predicate over raw jsonb (no index)
#   latency INSERT of one attack into the inbox -> NOTIFY at a libpq client
#   storage bytes on disk per event against raw JSON bytes per event
#   scan    the worker's scan of a CloudTrail tree whose files were all read:
#           reading every directory against skipping unchanged ones
set -euo pipefail
cd "$(dirname "$0")/.."

scale=${BENCH_SCALE:-quick}
case "$scale" in
	quick) N=50000; LARGE=500000; TRIALS=50; SCAN_DAYS=10; ROUNDS=3 ;;
	large) N=500000; LARGE=5000000; TRIALS=200; SCAN_DAYS=30; ROUNDS=3 ;;
	tiny) N=2000; LARGE=10000; TRIALS=5; SCAN_DAYS=1; ROUNDS=2 ;;	# the test suite's smoke run: its figures mean nothing
	*) echo "BENCH_SCALE must be quick, large or tiny" >&2; exit 64 ;;
esac
PER_FILE=500						# records per CloudTrail log file
ATTACK_EVERY=${BENCH_ATTACK_EVERY:-100000}	# one Lambda AddPermission in this many records
json_out=${BENCH_JSON:-$PWD/bench/out/bench-$scale.json}
mkdir -p "$(dirname "$json_out")"

work=$(mktemp -d -t lambda_detect_bench.XXXXXX)
chmod 777 "$work"
trap 'rm -rf "$work"' EXIT
mkdir -m 777 "$work/trail" "$work/staging"

q() { psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
val() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# wait_until SQL-boolean [seconds]: poll inside one server session, every
# 10 ms, until the condition holds or the deadline passes.  A loop of psql
# processes (one fork, connection and backend per poll) would take CPU from
# the worker being measured, and the baselines run with no poller at all.
# Each poll commits: one transaction around the whole wait would hold back
# the server's xmin horizon, so the rows the worker deletes from the inbox
# could not be cleaned away while it is being measured.
wait_until() {
	q -c "DO \$wait\$
	      DECLARE deadline timestamptz := clock_timestamp() + interval '${2:-600} s';
	      BEGIN
	          WHILE NOT coalesce(($1), false) LOOP
	              IF clock_timestamp() > deadline THEN
	                  RAISE EXCEPTION 'timed out waiting for: %', \$cond\$$1\$cond\$;
	              END IF;
	              PERFORM pg_sleep(0.01);
	              COMMIT;
	          END LOOP;
	      END
	      \$wait\$" || exit 1
}
csv_json=(WITH "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')")

echo "== lambda_detect benchmark, scale $scale: $N events per ingest path, rule at $((2 * N)) and $LARGE events"
echo "   machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(psql -X -At -c 'SHOW server_version')"

q -c "CREATE EXTENSION lambda_detect" -f bench/generate.sql -f bench/baselines.sql
# events is partitioned by day: partitions exist ahead of the data, as the
# worker's maintain() makes them in production, for the generated day
# (2026-11-01) and the 95 days of history; nothing expires during the run
q -c "INSERT INTO lambda_detect.storage_settings (events_retention) VALUES (NULL)" \
  -c "SELECT count(lambda_detect.create_event_partition(t))
        FROM (SELECT timestamptz '2026-11-01 00:00:00+00' AS t
              UNION ALL SELECT now() - d * interval '1 day' FROM generate_series(-3, 95) d) p" >/dev/null

# --- data, untimed: set 1 as JSON lines, set 2 as gzipped log files ---------
echo "== generating data"
q -c "COPY (SELECT bench.record(i, $ATTACK_EVERY, 'b1')::text FROM generate_series(1, $N) i)
      TO '$work/set1.jsonl' ${csv_json[*]}"
q -c "SELECT bench.write_log_file(f * $PER_FILE + 1, least((f + 1) * $PER_FILE, $N),
        format('$work/staging/AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/%s/123456789012_CloudTrail_us-east-1_%s.json.gz',
               lpad((1 + f % 28)::text, 2, '0'), f),
        $ATTACK_EVERY, 'b2')
      FROM generate_series(0, ($N - 1) / $PER_FILE) f" >/dev/null
nfiles=$(find "$work/staging" -name '*.json.gz' | wc -l)
raw_bytes=$(wc -c <"$work/set1.jsonl")
raw_bytes_per_event=$(awk -v b="$raw_bytes" -v n="$N" 'BEGIN { printf "%.0f", b / n }')

# --- the four ingest measurements, in ROUNDS rounds ---------------------------
# One measurement of a few seconds varies by about a tenth from run to run
# on this kind of machine; each figure is the median of the rounds.  Every
# round starts from empty tables (and a fresh copy of the log files, whose
# directories the worker has not seen), so each measures the same work.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
copy_times=(); naive_times=(); inbox_times=(); files_times=()
for round in $(seq 1 "$ROUNDS"); do
q -c "TRUNCATE bench.raw_json, bench.naive_raw, bench.naive_events, lambda_detect.events,
        lambda_detect.rule_candidates, lambda_detect.ingested_files, lambda_detect.ingest_runs"
rm -rf "$work/trail/AWSLogs" "$work/round"
mkdir -m 777 "$work/round"
cp -r "$work/staging/AWSLogs" "$work/round/AWSLogs"
chmod -R a+rwX "$work/round"

# --- (c) plain COPY of the raw JSON ------------------------------------------
echo "== round $round/$ROUNDS: (c) baseline: COPY into a one-column jsonb table"
t=$(now)
q -c "\\copy bench.raw_json (doc) FROM '$work/set1.jsonl' ${csv_json[*]}"
copy_times+=("$(since "$t")")

# --- (d) the naive SQL pipeline ----------------------------------------------
echo "== round $round/$ROUNDS: (d) baseline: COPY, then INSERT ... SELECT into an indexed table"
t=$(now)
q -c "\\copy bench.naive_raw (doc) FROM '$work/set1.jsonl' ${csv_json[*]}" -c "SELECT bench.naive_insert()" >/dev/null
naive_times+=("$(since "$t")")

# --- (b) client COPY into the inbox, drained by the worker --------------------
echo "== round $round/$ROUNDS: (b) COPY into lambda_detect.inbox until the worker has drained it"
t=$(now)
q -c "\\copy lambda_detect.inbox (payload) FROM '$work/set1.jsonl' ${csv_json[*]}"
# poll the small ingest_runs table: counting the inbox or events every 50 ms
# would compete with the worker for the CPU it is being measured on
wait_until "(SELECT coalesce(sum(inbox_rows), 0) FROM lambda_detect.ingest_runs WHERE kind = 'inbox') >= $N"
inbox_times+=("$(since "$t")")
[ "$(val "SELECT count(*) FROM lambda_detect.events")" = "$N" ] || { echo "inbox: events missing" >&2; exit 1; }

# --- (a) log files through the worker's directory scan ------------------------
echo "== round $round/$ROUNDS: (a) $nfiles gzipped log files landing in lambda_detect.inbox_dir"
# untimed: what autovacuum would do after (b) (the inbox's dead rows, the
# new events' statistics), so that it does not start during (a); the
# baselines ran on a server with nothing to clean up either
q -c "VACUUM ANALYZE lambda_detect.inbox" -c "ANALYZE lambda_detect.events"
# scan_interval stays at its default (10 s): as a sync job would, the run
# asks the worker for a scan once the files are in place (request_scan())
q -c "ALTER SYSTEM SET lambda_detect.inbox_dir = '$work/trail'" \
  -c "ALTER SYSTEM SET lambda_detect.file_settle_time = 0" -c "SELECT pg_reload_conf()" >/dev/null
wait_until "(SELECT state FROM lambda_detect.worker_status()) IS NOT NULL" 10
sleep 0.5	# let the worker take the reload before the files land (not part of a measurement)
t=$(now)
mv "$work/round/AWSLogs" "$work/trail/AWSLogs"
[ "$(val "SELECT lambda_detect.request_scan()")" = t ] || { echo "files: no worker to scan" >&2; exit 1; }
wait_until "(SELECT count(*) FROM lambda_detect.ingested_files) = $nfiles"
files_times+=("$(since "$t")")
[ "$(val "SELECT count(*) FROM lambda_detect.events")" = "$((2 * N))" ] || { echo "files: events missing" >&2; exit 1; }
q -c "ALTER SYSTEM RESET ALL" -c "SELECT pg_reload_conf()" >/dev/null
echo "   round $round: (c) ${copy_times[-1]} s, (d) ${naive_times[-1]} s, (b) ${inbox_times[-1]} s, (a) ${files_times[-1]} s"
done
copy_s=$(median "${copy_times[@]}"); naive_s=$(median "${naive_times[@]}")
inbox_s=$(median "${inbox_times[@]}"); files_s=$(median "${files_times[@]}")

# --- storage -----------------------------------------------------------------
q -c "VACUUM ANALYZE lambda_detect.events" -c "CHECKPOINT"
events_bytes="SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('lambda_detect.events') WHERE isleaf"
bytes_per_event=$(val "SELECT round(($events_bytes)::numeric / (SELECT count(*) FROM lambda_detect.events))")
# where those bytes are: heap, TOAST and each index, per event
q -c "WITH leaf AS (SELECT relid FROM pg_partition_tree('lambda_detect.events') WHERE isleaf),
      parts AS (
        SELECT 'table (heap)' AS part, pg_relation_size(l.relid) AS bytes FROM leaf l
        UNION ALL
        SELECT 'TOAST', pg_total_relation_size(c.reltoastrelid)
          FROM leaf l JOIN pg_class c ON c.oid = l.relid WHERE c.reltoastrelid <> 0
        UNION ALL
        SELECT 'index ' || pg_partition_root(i.indexrelid)::regclass::text, pg_relation_size(i.indexrelid)
          FROM leaf l JOIN pg_index i ON i.indrelid = l.relid)
      SELECT part AS \"storage per event, by part\",
             round(sum(bytes)::numeric / (SELECT count(*) FROM lambda_detect.events)) AS bytes
        FROM parts GROUP BY part ORDER BY 2 DESC" >"$work/storage_parts.txt"


# --- the worker's scan of a tree already read ----------------------------------
# 20 accounts x 5 regions x SCAN_DAYS days x 33 files: an organization
# trail's tree after some days.  The files hold no records (each is read once
# and recorded as skipped); what is measured is a scan with nothing new, as
# the worker logs it (log_min_messages = debug1 for this step only): every
# directory read (full_scan_interval = 0) against unchanged ones skipped.
echo "== the worker's scan of a tree of files already read"
log=$(pg_lsclusters -h | awk -v p="$PGPORT" '$3 == p { print $7 }')
perl -e '
	my ($root, $days) = @ARGV;
	for my $a (0 .. 19) { for my $r (qw(us-east-1 us-west-2 eu-west-1 eu-central-1 ap-southeast-2)) {
		for my $d (1 .. $days) {
			my $dir = sprintf("%s/AWSLogs/1000000000%02d/CloudTrail/%s/2026/10/%02d", $root, $a, $r, $d);
			system("mkdir", "-p", $dir) == 0 or die;
			for my $f (0 .. 32) {
				open(my $fh, ">", sprintf("%s/1000000000%02d_CloudTrail_%s_202610%02dT%04dZ.json", $dir, $a, $r, $d, $f)) or die;
				print $fh q({"Records": []});
				close($fh);
			} } } }' "$work/tree" "$SCAN_DAYS"
chmod -R a+rwX "$work/tree"
scan_files=$(find "$work/tree" -name '*.json' | wc -l)
q -c "ALTER SYSTEM SET lambda_detect.inbox_dir = '$work/tree'" \
  -c "ALTER SYSTEM SET lambda_detect.file_settle_time = 0" \
  -c "ALTER SYSTEM SET lambda_detect.scan_interval = '200ms'" \
  -c "ALTER SYSTEM SET log_min_messages = debug1" -c "SELECT pg_reload_conf()" >/dev/null
wait_until "(SELECT count(*) FROM lambda_detect.ingested_files WHERE path LIKE '$work/tree/%') = $scan_files"
# scan_ms KIND: the median time of the next 5 scans of the kind (quick or
# full) that found nothing new (every directory they read is complete)
scan_ms() {
	local from deadline times
	from=$(stat -c %s "$log"); deadline=$(( $(date +%s) + 120 ))
	while :; do
		times=$(tail -c +"$((from + 1))" "$log" |
			sed -n "s/.*lambda_detect: $1 scan of inbox_dir: \([0-9]*\) directories read (\1 now complete), .* \([0-9.]*\) ms\$/\2/p" |
			grep -v "^$" | head -5 || true)
		[ "$(echo "$times" | grep -c .)" -lt 5 ] || break
		[ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $1 scans" >&2; exit 1; }
		sleep 0.2
	done
	echo "$times" | sort -n | sed -n 3p
}
scan_quick=$(scan_ms quick)
q -c "ALTER SYSTEM SET lambda_detect.full_scan_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
scan_full=$(scan_ms full)
q -c "ALTER SYSTEM RESET ALL" -c "SELECT pg_reload_conf()" >/dev/null

# --- rule runs at two sizes ----------------------------------------------------
rule_ms() { val "SELECT bench.median_rule_ms(5)"; }
base_ms() { val "SELECT bench.median_baseline_ms(3)"; }
echo "== rule run and raw-jsonb baseline at $((2 * N)) events"
q -c "INSERT INTO bench.raw_json (doc) SELECT bench.record(i, $ATTACK_EVERY, 'b2') FROM generate_series(1, $N) i" \
  -c "VACUUM ANALYZE bench.raw_json"
small_events=$(val "SELECT count(*) FROM lambda_detect.events")
candidates=$(val "SELECT candidates FROM lambda_detect.run_rule('lambda-public-invocation')")
rule_small=$(rule_ms)
base_small=$(base_ms)

echo "== growing both tables to $LARGE events (older ingest times, as history is)"
q -c "SELECT bench.grow_events($LARGE)" -c "VACUUM ANALYZE lambda_detect.events" \
  -c "SELECT bench.grow_raw($LARGE)" \
  -c "VACUUM ANALYZE bench.raw_json" >/dev/null
large_events=$(val "SELECT count(*) FROM lambda_detect.events")
partitions=$(val "SELECT count(*) FROM lambda_detect.event_partitions WHERE NOT is_default AND estimated_rows > 0")
echo "== rule run and raw-jsonb baseline at $large_events events"
rule_large=$(rule_ms)
base_large=$(base_ms)

# --- detection latency, default settings -------------------------------------
echo "== detection latency over $TRIALS trials"
bench/latency "$TRIALS" "dbname=postgres" >"$work/latency.txt"
read -r p50 p99 < <(sort -n "$work/latency.txt" | awk '{ v[NR] = $1 } END {
	i50 = int(0.50 * NR + 0.5); i99 = int(0.99 * NR + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1;
	printf "%.1f %.1f\n", v[i50], v[i99] }')

eps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
files_eps=$(eps "$N" "$files_s"); inbox_eps=$(eps "$N" "$inbox_s")
copy_eps=$(eps "$N" "$copy_s"); naive_eps=$(eps "$N" "$naive_s")

cat >"$json_out" <<JSON
{
  "scale": "$scale",
  "events": $large_events,
  "events_small": $small_events,
  "partitions_with_events": $partitions,
  "ingest_events_per_path": $N,
  "candidates_in_window": $candidates,
  "ingest_files_eps": $files_eps,
  "ingest_inbox_eps": $inbox_eps,
  "copy_raw_eps": $copy_eps,
  "naive_sql_eps": $naive_eps,
  "rule_ms_small": $rule_small,
  "rule_ms_large": $rule_large,
  "baseline_ms_small": $base_small,
  "baseline_ms_large": $base_large,
  "latency_p50_ms": $p50,
  "latency_p99_ms": $p99,
  "latency_trials": $TRIALS,
  "bytes_per_event": $bytes_per_event,
  "raw_bytes_per_event": $raw_bytes_per_event,
  "scan_files": $scan_files,
  "scan_full_ms": $scan_full,
  "scan_quick_ms": $scan_quick
}
JSON

cat "$work/storage_parts.txt"
cat <<TABLE

lambda_detect benchmark ($scale, $(nproc) cores)
                                      measured      baseline      ratio    target
ingest, files via the worker   (a)  $(printf '%8s ev/s' "$files_eps")  $(printf '%8s ev/s' "$copy_eps") (c)  $(printf '%6s' "$(ratio "$files_eps" "$copy_eps")")x  >= 0.8x
ingest, inbox COPY + worker    (b)  $(printf '%8s ev/s' "$inbox_eps")  $(printf '%8s ev/s' "$naive_eps") (d)  $(printf '%6s' "$(ratio "$inbox_eps" "$naive_eps")")x  >= 1.0x
run_rule at $(printf '%-8s' "$small_events") events     $(printf '%10s ms' "$rule_small")  $(printf '%10s ms' "$base_small")   $(printf '%6s' "$(ratio "$base_small" "$rule_small")")x faster  >= 100x
run_rule at $(printf '%-8s' "$large_events") events     $(printf '%10s ms' "$rule_large")  $(printf '%10s ms' "$base_large")   $(printf '%6s' "$(ratio "$base_large" "$rule_large")")x faster
run_rule, large / small                                                  $(printf '%6s' "$(ratio "$rule_large" "$rule_small")")x        <= 1.5x
detection latency p50 / p99         $(printf '%7s ms' "$p50") / $(printf '%s ms' "$p99")                                  <= 500 / 2000 ms
storage per event                   $(printf '%8s B' "$bytes_per_event")       $(printf '%8s B' "$raw_bytes_per_event") raw JSON  $(printf '%6s' "$(ratio "$bytes_per_event" "$raw_bytes_per_event")")x  <= 1.5x
scan of $(printf '%-6s' "$scan_files") files already read $(printf '%10s ms' "$scan_quick")  $(printf '%10s ms' "$scan_full")   $(printf '%6s' "$(ratio "$scan_full" "$scan_quick")")x faster (every directory read)
($candidates candidate events in the rule's window; $partitions partitions of events hold rows at the large size;
figures also in $json_out)
TABLE
