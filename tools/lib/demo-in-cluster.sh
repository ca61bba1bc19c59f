#!/usr/bin/env bash
# Runs inside pg_virtualenv for tools/demo.sh: creates the extension, starts
# lambda-detect-listen, lands the sample trail in the watched directory the
# way "aws s3 sync" does (gzip, then an atomic rename), waits for the alert
# and prints what lambda_detect made of it all.
set -euo pipefail
cd "$(dirname "$0")/../.."
trail=$1
listen="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)/lambda-detect-listen"
[ -x "$listen" ] || listen=/usr/lib/postgresql/15/bin/lambda-detect-listen
psql="psql -X -q -v ON_ERROR_STOP=1 -d postgres"

$psql -c "CREATE EXTENSION lambda_detect"

echo "== lambda-detect-listen is waiting for alerts (LISTEN lambda_detect_alerts)"
alerts=$(mktemp)
PGAPPNAME=lambda-detect-listen PGDATABASE=postgres "$listen" --count 1 --idle-timeout 60 --quiet >"$alerts" &
listener=$!
for _ in $(seq 100); do
	[ "$($psql -Atc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lambda-detect-listen' AND state = 'idle'")" = 1 ] && break
	sleep 0.1
done

echo "== landing the sample trail (samples/trail) in the watched directory"
landed_at=$($psql -Atc "SELECT clock_timestamp()")
(cd samples/trail && find . -name '*.json' | sort) | while read -r f; do
	mkdir -p "$trail/$(dirname "$f")"
	gzip -c "samples/trail/$f" >"$trail/$(dirname "$f")/.incoming"
	mv "$trail/$(dirname "$f")/.incoming" "$trail/$f.gz"
	echo "   $f.gz"
done
chmod -R a+rX "$trail"

if ! wait "$listener"; then
	echo "!! no alert arrived within 60 s" >&2
	exit 1
fi
echo
echo "== ALERT, as delivered through LISTEN by lambda-detect-listen:"
cat "$alerts"
rm -f "$alerts"

echo
echo "== what lambda_detect did with the trail"
$psql -P pager=off <<SQL
\pset footer off
SELECT status, count(*) AS files, sum(events) AS events_stored, sum(duplicates) AS duplicates,
       sum(skipped) AS skipped, sum(errors) AS dead_letters
  FROM lambda_detect.ingested_files GROUP BY status ORDER BY status;
\echo '-- dead letters (nothing is dropped silently):'
SELECT reason, message, regexp_replace(source, '.*/', '') AS file FROM lambda_detect.ingest_errors;
\echo '-- the alert, with the triage fields of the investigation guide:'
\x on
SELECT alert_id, rule, severity, risk_score, reason, event_time, account_id, aws_region,
       function_arn, statement_id, principal, scoped_by, actor_arn, actor_type, access_key_id,
       source_ip, user_agent,
       round(extract(epoch FROM detected_at - '$landed_at'::timestamptz)::numeric, 2) AS seconds_from_landing_to_alert,
       format('aws lambda remove-permission --function-name %s --statement-id %s --region %s',
              function_arn, statement_id, aws_region) AS revert_with
  FROM lambda_detect.alerts;
\x off
\echo '-- the rule runs (the worker runs every rule at start, then right after ingesting candidates):'
SELECT run_id, rule, trigger, candidates, matched, alerts_created, duplicates, status FROM lambda_detect.rule_runs ORDER BY run_id;
\echo '-- the same actor around the alert:'
SELECT e.event_time, e.event_name, e.outcome, e.error_code
  FROM lambda_detect.events e, lambda_detect.alerts a
 WHERE e.actor_arn = a.actor_arn AND e.event_time BETWEEN a.event_time - interval '1 hour' AND a.event_time + interval '1 hour'
 ORDER BY e.event_time;
SQL
