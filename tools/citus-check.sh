#!/usr/bin/env bash
# tools/citus-check.sh: try the Citus plan of docs/scaling.md on a real
# Citus cluster and print one "ok" or "FAILED" line per check.
#
# NOT part of the test suite: tools/test.sh and .ci/run never call it, and
# nothing here has expected output.  It is a probe for a person, run by hand
# on a machine where Citus is installed in the PostgreSQL 15 that lambda_detect
# is installed in (Citus is not packaged for the machines the suite runs on).
# Without Citus (or without lambda_detect) it exits 77 and says so.
#
# What it does, in a temporary directory (removed at the end; KEEP=1 keeps it
# and leaves the servers running):
#   1. three servers on ports PORT, PORT+1, PORT+2 (CITUS_CHECK_PORT, default
#      5570): a coordinator with shared_preload_libraries = 'citus,lambda_detect'
#      and two workers with 'citus'; trust authentication on localhost;
#   2. CREATE EXTENSION citus everywhere, citus_set_coordinator_host,
#      citus_add_node, CREATE EXTENSION lambda_detect on the coordinator;
#   3. the plan: reference tables (rules, exceptions and the settings tables),
#      events, rule_candidates, alerts, alert_occurrences, suppressed_matches
#      distributed by account and colocated, with citus.enable_unsafe_triggers
#      = on (ALTER SYSTEM on every node) first; an exception's rule checked,
#      renamed and deleted with it on the reference tables;
#   4. the product through the coordinator: the worker's ingestion of inbox
#      rows, the candidate log triggers, ingest_now(), run_rule() and its
#      NOTIFY to a LISTEN on the coordinator, triage, the guide's settings,
#      alerts_ecs, create_event_partition() and maintain() with work for each
#      of its steps (an expired and a late event in events_default, an
#      expired partition, an expired closed alert).
# Where a step of the plan fails as shipped, the script says FAILED and, to
# reach the checks behind it, applies a stated workaround in the throwaway
# cluster only (it drops the two NOTIFY triggers of alerts as scaling.md
# item 4 recommends).
#
# Exit status: 0 when every check is ok, 1 when one FAILED, 77 when Citus or
# lambda_detect is not installed.  Run as root (the servers then run as the
# postgres user) or as a user who can run initdb.
set -uo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PORT=${CITUS_CHECK_PORT:-5570}

if ! [ -x "$PG_CONFIG" ]; then
	echo "citus-check: no pg_config at $PG_CONFIG (set PG_CONFIG): skipped" >&2
	exit 77
fi
case "$("$PG_CONFIG" --version)" in
	"PostgreSQL 15"*) ;;
	*) echo "citus-check: $("$PG_CONFIG" --version) is not PostgreSQL 15: skipped" >&2; exit 77 ;;
esac
BIN=$("$PG_CONFIG" --bindir)
SHARE=$("$PG_CONFIG" --sharedir)
LIB=$("$PG_CONFIG" --pkglibdir)
for need in "$SHARE/extension/citus.control" "$LIB/citus.so" \
	"$SHARE/extension/lambda_detect.control" "$LIB/lambda_detect.so"; do
	if ! [ -e "$need" ]; then
		echo "citus-check: $need is missing: Citus and lambda_detect must be installed in this PostgreSQL 15; skipped" >&2
		exit 77
	fi
done

if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

DIR=$(mktemp -d -t lambda_detect_citus.XXXXXX)
chmod 755 "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
COORD=$PORT
W1=$((PORT + 1))
W2=$((PORT + 2))
LISTENER=

cleanup() {
	[ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept: $DIR (servers still running on $COORD, $W1, $W2; stop them with pg_ctl -D $DIR/nPORT stop)"
		return
	fi
	for p in $COORD $W1 $W2; do
		[ -f "$DIR/n$p/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DIR/n$p" -m fast -w stop >/dev/null 2>&1
	done
	rm -rf "$DIR"
}
trap cleanup EXIT

failed=0
ok() { echo "ok - $*"; }
fail() { echo "FAILED - $*"; failed=$((failed + 1)); }
note() { echo "# $*"; }

# sql PORT SQL: run statements (each its own transaction unless the text says
# BEGIN); stdout is their results (unaligned), and on an error its message,
# and the status is 1.
sql() {
	local port=$1 out
	shift
	if out=$(printf '%s\n' "$*" | as_pg "$BIN/psql" -X -q -At -h localhost -p "$port" \
		-d postgres -v ON_ERROR_STOP=1 -v VERBOSITY=terse -f - 2>&1); then
		printf '%s\n' "$out"
		return 0
	fi
	printf '%s\n' "$out" | grep -m1 -E 'ERROR|FATAL' || printf '%s\n' "$out" | head -n1
	return 1
}

# check NAME QUERY: ok when the statement succeeds, FAILED with its error
check() {
	local name=$1 out
	if out=$(sql "$COORD" "$2"); then ok "$name"; else fail "$name: $out"; fi
}

# expect NAME QUERY WANT: ok when the statement returns exactly WANT
expect() {
	local name=$1 out
	out=$(sql "$COORD" "$2")
	if [ "$out" = "$3" ]; then ok "$name"; else fail "$name: got '$out', want '$3'"; fi
}

# wait_for QUERY: poll up to 20 s until the query returns t
wait_for() {
	for _ in $(seq 1 100); do
		[ "$(sql "$COORD" "$1" 2>/dev/null)" = t ] && return 0
		sleep 0.2
	done
	return 1
}

# rec ID ACCOUNT [TIME] [EVENTNAME]: a CloudTrail AddPermission record
# granting lambda:InvokeFunction to principal *, as SQL jsonb
rec() {
	local id=$1 acct=$2 t=${3:-now()} name=${4:-AddPermission20150331v2}
	cat <<EOF
jsonb_build_object('eventVersion', '1.08', 'eventID', '$id',
  'eventTime', to_char(($t) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  'eventSource', 'lambda.amazonaws.com', 'eventName', '$name', 'awsRegion', 'us-east-1',
  'sourceIPAddress', '203.0.113.7', 'userAgent', 'aws-cli/2.15.0', 'eventType', 'AwsApiCall',
  'recipientAccountId', '$acct',
  'userIdentity', jsonb_build_object('type', 'IAMUser', 'arn', 'arn:aws:iam::$acct:user/mallory',
                                     'accountId', '$acct', 'userName', 'mallory'),
  'requestParameters', jsonb_build_object('functionName', 'arn:aws:lambda:us-east-1:$acct:function:backdoor',
                                          'statementId', 'pub-$id', 'action', 'lambda:InvokeFunction',
                                          'principal', '*'),
  'responseElements', jsonb_build_object('statement',
      '{"Sid":"pub","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction"}'))
EOF
}

note "Citus check of the lambda_detect plan in $DIR, ports $COORD $W1 $W2"

# 1. three servers
for p in $COORD $W1 $W2; do
	if ! as_pg "$BIN/initdb" -D "$DIR/n$p" -A trust -U postgres >"$DIR/initdb-$p.log" 2>&1; then
		fail "initdb on port $p (see $DIR/initdb-$p.log)"; exit 1
	fi
	if [ "$p" = "$COORD" ]; then preload='citus,lambda_detect'; else preload='citus'; fi
	cat >>"$DIR/n$p/postgresql.conf" <<EOF
port = $p
listen_addresses = 'localhost'
unix_socket_directories = '$DIR'
shared_preload_libraries = '$preload'
max_worker_processes = 24
wal_level = logical
EOF
	if ! as_pg "$BIN/pg_ctl" -D "$DIR/n$p" -l "$DIR/n$p.log" -w start >/dev/null 2>&1; then
		fail "server on port $p did not start (see $DIR/n$p.log)"; exit 1
	fi
done
ok "three servers started"

# 2. Citus and the extension
for p in $COORD $W1 $W2; do
	out=$(sql "$p" "CREATE EXTENSION citus") || { fail "CREATE EXTENSION citus on $p: $out"; exit 1; }
done
if out=$(sql "$COORD" "SELECT citus_set_coordinator_host('localhost', $COORD);
                       SELECT citus_add_node('localhost', $W1); SELECT citus_add_node('localhost', $W2)"); then
	ok "coordinator set, two workers added"
else
	fail "citus_add_node: $out"; exit 1
fi
check "CREATE EXTENSION lambda_detect on the coordinator" "CREATE EXTENSION lambda_detect"
for p in $W1 $W2; do
	v=$(sql "$p" "SELECT extversion FROM pg_extension WHERE extname = 'lambda_detect'")
	note "lambda_detect on worker $p after CREATE EXTENSION on the coordinator: ${v:-absent}"
done

# 3. the plan: citus.enable_unsafe_triggers on every node first (rules,
# events, rule_candidates and alerts have row triggers, which Citus refuses to
# distribute without it), then the reference tables
for p in $COORD $W1 $W2; do
	sql "$p" "ALTER SYSTEM SET citus.enable_unsafe_triggers = on" >/dev/null
	sql "$p" "SELECT pg_reload_conf()" >/dev/null
done
sleep 1
note "citus.enable_unsafe_triggers = on on every node"
for t in storage_settings investigation_settings known_networks rules exceptions; do
	check "create_reference_table($t)" "SELECT create_reference_table('lambda_detect.$t')"
done
# an exception's rule (schema/18_exception_rule_check.sql: triggers, no
# foreign key), on the reference tables
out=$(sql "$COORD" "INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason)
                    VALUES ('no-such-rule', 'function_name', 'equals', 'cc-x', 'citus-check')")
case $out in
*'exception names rule "no-such-rule", which does not exist'*) ok "an exception naming no rule is refused" ;;
*) fail "an exception naming no rule is refused: got '$out'" ;;
esac
check "an exception for lambda-cross-account-invocation" \
	"INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason)
	 VALUES ('lambda-cross-account-invocation', 'function_name', 'equals', 'cc-x', 'citus-check')"
check "renaming the rule" \
	"UPDATE lambda_detect.rules SET rule = 'cc-renamed' WHERE rule = 'lambda-cross-account-invocation'"
expect "the renamed rule's exception renamed" \
	"SELECT string_agg(rule, ',') FROM lambda_detect.exceptions WHERE value = 'cc-x'" cc-renamed
check "deleting the rule" "DELETE FROM lambda_detect.rules WHERE rule = 'cc-renamed'"
expect "the deleted rule's exception deleted" \
	"SELECT count(*) FROM lambda_detect.exceptions WHERE value = 'cc-x'" 0
check "create_distributed_table(events, recipient_account_id)" \
	"SELECT create_distributed_table('lambda_detect.events', 'recipient_account_id')"
check "create_distributed_table(rule_candidates), colocated" \
	"SELECT create_distributed_table('lambda_detect.rule_candidates', 'recipient_account_id', colocate_with => 'lambda_detect.events')"
for t in alerts alert_occurrences suppressed_matches; do
	check "create_distributed_table($t, account_id), colocated" \
		"SELECT create_distributed_table('lambda_detect.$t', 'account_id', colocate_with => 'lambda_detect.events')"
done
expect "every partition of events is distributed and colocated" \
	"SELECT bool_and(p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'lambda_detect.events'::regclass))
	   FROM pg_inherits i LEFT JOIN pg_dist_partition p ON p.logicalrelid = i.inhrelid
	  WHERE i.inhparent = 'lambda_detect.events'::regclass" t

# the plan, item 4: NOTIFY from the coordinator's sessions, not from the row
# triggers of alerts (they would fire on the shards)
sql "$COORD" "ALTER SYSTEM SET lambda_detect.notify_from = 'session'" >/dev/null
sql "$COORD" "SELECT pg_reload_conf()" >/dev/null
check "DROP TRIGGER alerts_notify_insert (item 4)" "DROP TRIGGER alerts_notify_insert ON lambda_detect.alerts"
check "DROP TRIGGER alerts_notify_status (item 4)" "DROP TRIGGER alerts_notify_status ON lambda_detect.alerts"
expect "lambda_detect.notify_from = session on the coordinator (item 4)" \
	"SELECT current_setting('lambda_detect.notify_from')" session

# 4. the product
# a listener on the coordinator, for the whole run (60 s at most)
(
	echo "LISTEN lambda_detect_alerts;"
	for _ in $(seq 1 120); do echo "SELECT pg_sleep(0.5) \\g /dev/null"; done
) | as_pg "$BIN/psql" -X -q -h localhost -p "$COORD" -d postgres >"$DIR/listen.txt" 2>&1 &
LISTENER=$!
sleep 1

check "inbox rows inserted" "INSERT INTO lambda_detect.inbox (source, payload) VALUES
	('citus-check', $(rec cc-1 111122223333)), ('citus-check', $(rec cc-2 444455556666)),
	('citus-check', '{\"no\": \"cloudtrail\"}')"
if wait_for "SELECT count(*) = 0 FROM lambda_detect.inbox"; then
	ok "the worker drained the inbox (item 6: its batch statement mixes local and distributed tables)"
else
	fail "the worker did not drain the inbox in 20 s: $(sql "$COORD" "SELECT last_error FROM lambda_detect.worker_status()")"
fi
expect "both events stored in distributed events" \
	"SELECT count(*) FROM lambda_detect.events WHERE event_id IN ('cc-1', 'cc-2')" 2
expect "the bad record dead-lettered into the local ingest_errors" \
	"SELECT count(*) FROM lambda_detect.ingest_errors WHERE reason = 'not_cloudtrail'" 1
expect "rule_candidates filled by events_log_rule_candidate on the shards (item 5)" \
	"SELECT count(*) FROM lambda_detect.rule_candidates WHERE event_id IN ('cc-1', 'cc-2')" 2
check "UPDATE of an event's ingested_at" \
	"UPDATE lambda_detect.events SET ingested_at = now()
	  WHERE event_id = 'cc-1' AND recipient_account_id = '111122223333'"
expect "events_relog_rule_candidate kept the candidate's ingested_at (item 5)" \
	"SELECT e.ingested_at = c.ingested_at FROM lambda_detect.events e
	   JOIN lambda_detect.rule_candidates c USING (event_id, event_time, recipient_account_id)
	  WHERE e.event_id = 'cc-1'" t
check "ingest_now() in the inserting transaction (the worker cannot see those rows)" \
	"BEGIN;
	 INSERT INTO lambda_detect.inbox (source, payload) VALUES
	   ('citus-check', $(rec cc-3 111122223333)), ('citus-check', $(rec cc-4 999900001111));
	 SELECT lambda_detect.ingest_now();
	 COMMIT"
expect "ingest_now() stored its events" \
	"SELECT count(*) FROM lambda_detect.events WHERE event_id IN ('cc-3', 'cc-4')" 2

out=$(sql "$COORD" "SET client_min_messages = error; SELECT status || coalesce(': ' || error, '') FROM lambda_detect.run_rule('lambda-public-invocation')")
if [ "$out" = succeeded ]; then ok "run_rule('lambda-public-invocation')"; else fail "run_rule('lambda-public-invocation'): $out"; fi
expect "alerts created by run_rule and the worker" \
	"SELECT count(*) >= 4 FROM lambda_detect.alerts" t
wait_for_listener() {	# wait_for_listener pattern: bounded wait for the listener's output
	for _ in $(seq 1 100); do
		grep -q "$1" "$DIR/listen.txt" && return 0
		sleep 0.1
	done
	return 1
}
if wait_for_listener 'Asynchronous notification "lambda_detect_alerts" with payload "{[^"]*"kind": "new"'; then
	ok "LISTEN lambda_detect_alerts on the coordinator received the new alerts' NOTIFY (item 4)"
else
	fail "LISTEN lambda_detect_alerts on the coordinator received no NOTIFY of a new alert (item 4)"
fi

id=$(sql "$COORD" "SELECT min(alert_id) FROM lambda_detect.alerts")
if [ -n "$id" ]; then
	expect "acknowledge_alert($id)" "SELECT (lambda_detect.acknowledge_alert($id, 'citus-check')).status" acknowledged
	if wait_for_listener '"kind": "status"'; then
		ok "acknowledge_alert's status change reached the coordinator's listener (item 4)"
	else
		fail "acknowledge_alert's status change did not reach the coordinator's listener (item 4)"
	fi
	expect "close_alert($id)" "SELECT (lambda_detect.close_alert($id, 'false_positive', 'citus-check')).status" closed
	check "find_alert($id)" "SELECT lambda_detect.find_alert($id)"
	check "investigate($id)" "SELECT lambda_detect.investigate($id)"
fi
check "effective_storage_settings() (reads a reference table)" "SELECT lambda_detect.effective_storage_settings()"
check "effective_investigation_settings() (reads a reference table)" "SELECT lambda_detect.effective_investigation_settings()"
expect "the alerts_ecs view, every alert joined to its event" \
	"SELECT count(*) > 0 AND count(*) = count(\"event.provider\") FROM lambda_detect.alerts_ecs" t
check "the event_partitions view" "SELECT count(*) FROM lambda_detect.event_partitions"

# item 7, and work for each step of maintain(): an expired event in
# events_default that is not a candidate (a bounded delete by primary key), a
# late one (drained into a new partition), an expired empty partition (dropped
# after its test for fresh candidates), the closed alert made expired (deleted
# with its occurrences).  The worker's own maintenance may take these steps
# first: the checks look at the result and maintenance_log, not at who did it.
check "create_event_partition(now() + 10 days) (item 7)" \
	"SELECT lambda_detect.create_event_partition(now() + interval '10 days')"
old_part=$(sql "$COORD" "SELECT lambda_detect.create_event_partition(now() - interval '300 days')")
if [ -n "$old_part" ] && [ "$(sql "$COORD" "SELECT to_regclass('$old_part') IS NOT NULL")" = t ]; then
	ok "create_event_partition(now() - 300 days): $old_part, expired"
else
	fail "create_event_partition(now() - 300 days): $old_part"
fi
check "an expired event (not a candidate) and a late one ingested into events_default" \
	"BEGIN;
	 INSERT INTO lambda_detect.inbox (source, payload) VALUES
	   ('citus-check', $(rec cc-old 111122223333 "now() - interval '200 days'" GetFunction20150331v2)),
	   ('citus-check', $(rec cc-late 444455556666 "now() - interval '20 days'"));
	 SELECT lambda_detect.ingest_now();
	 COMMIT"
if [ -n "$id" ]; then
	check "closed alert $id made expired (status_changed_at 400 days ago)" \
		"UPDATE lambda_detect.alerts SET status_changed_at = now() - interval '400 days' WHERE alert_id = $id"
fi
check "maintain() (item 7)" "SELECT count(*) FROM lambda_detect.maintain()"
expect "maintain() deleted the expired event from events_default (by primary key)" \
	"SELECT NOT EXISTS (SELECT 1 FROM lambda_detect.events WHERE event_id = 'cc-old')
	    AND EXISTS (SELECT 1 FROM lambda_detect.maintenance_log
	                 WHERE action = 'delete_expired' AND target = 'lambda_detect.events_default')" t
expect "maintain() drained the late event into a partition" \
	"SELECT NOT EXISTS (SELECT 1 FROM lambda_detect.events_default WHERE event_id = 'cc-late')
	    AND EXISTS (SELECT 1 FROM lambda_detect.events WHERE event_id = 'cc-late')" t
if [ -n "$old_part" ]; then
	expect "maintain() dropped the expired partition $old_part" \
		"SELECT to_regclass('$old_part') IS NULL
		    AND EXISTS (SELECT 1 FROM lambda_detect.maintenance_log
		                 WHERE action = 'drop_partition' AND target = '$old_part')" t
fi
if [ -n "$id" ]; then
	expect "maintain() deleted the expired closed alert $id" \
		"SELECT NOT EXISTS (SELECT 1 FROM lambda_detect.alerts WHERE alert_id = $id)" t
fi
expect "every partition of events still distributed and colocated after maintenance" \
	"SELECT bool_and(p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'lambda_detect.events'::regclass))
	   FROM pg_inherits i LEFT JOIN pg_dist_partition p ON p.logicalrelid = i.inhrelid
	  WHERE i.inhparent = 'lambda_detect.events'::regclass" t

err=$(sql "$COORD" "SELECT coalesce(last_error, '') FROM lambda_detect.worker_status()")
note "worker: $(sql "$COORD" "SELECT state || ', ' || batches || ' batches, ' || errors || ' errors' FROM lambda_detect.worker_status()")${err:+; last error: $err}"

if [ "$failed" -gt 0 ]; then
	echo "# $failed check(s) FAILED"
	exit 1
fi
echo "# all checks ok"
