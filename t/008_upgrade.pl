# Upgrades (docs/upgrades.md): 1.0, and every later release, updated by
# ALTER EXTENSION lambda_detect UPDATE is, object for object, the current
# version installed fresh (t/sql/schema_fingerprint.sql lists what the
# extension owns; on a mismatch the test prints the unified diff of the two
# lists); the data users had survives the update; and the library, which
# refuses the old schema until then, works on the updated one.
#
# Databases, all in one cluster:
#   fresh     CREATE EXTENSION lambda_detect (the current version)
#   tampered  fresh, then changes an upgrade script could forget: proves the
#             fingerprint sees each of them
#   updated_<v>  each earlier version that can be installed (1.0, later
#             releases), then UPDATE, with no users' data: every row of
#             every table is compared too
#   from01    1.0 recorded as 0.1 (the same schema under its pre-release
#             number), then UPDATE through 0.1--1.0 and 1.0--<current>
#   detect    the worker's database: 1.0 holding users' data as the 1.0
#             library wrote it, UPDATE while the worker waits for it
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $fingerprint_sql = slurp_file(dirname(__FILE__) . '/sql/schema_fingerprint.sql');

my $record = q({"eventVersion": "1.08", "eventID": "%s", "eventTime": "2026-11-01T10:00:00Z",
  "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2",
  "awsRegion": "us-east-1", "recipientAccountId": "123456789012", "sourceIPAddress": "203.0.113.7",
  "userIdentity": {"type": "AssumedRole", "accountId": "123456789012", "arn": "%s"},
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*",
                        "functionName": "billing-export", "statementId": "public-invoke"}});
my $intruder = 'arn:aws:sts::123456789012:assumed-role/dev/mallory';
my $deployer = 'arn:aws:sts::123456789012:assumed-role/ci/deployer';

# The fingerprint of a database: shipped rows only, or (all_rows) every row.
sub fingerprint
{
	my ($node, $db, $all_rows) = @_;
	return $node->safe_psql($db, $fingerprint_sql,
		extra_params => $all_rows ? [ '-v', 'all_rows=1' ] : []);
}

# Lines of $b that are not in $a.
sub lines_not_in
{
	my ($a, $b) = @_;
	my %seen = map { $_ => 1 } split /\n/, $a;
	return grep { !$seen{$_} } split /\n/, $b;
}

# Passes when two fingerprints are equal; otherwise fails and prints their
# unified diff, so that whoever forgot a line of the upgrade script sees which.
sub fingerprints_match
{
	my ($expected, $got, $expected_label, $got_label, $name) = @_;
	if ($expected eq $got)
	{
		pass($name);
		return;
	}
	my $dir = PostgreSQL::Test::Utils::tempdir('fingerprint');
	append_to_file("$dir/expected", "$expected\n");
	append_to_file("$dir/got", "$got\n");
	my ($diff) = run_command([ 'diff', '-u', '--label', $expected_label, '--label', $got_label,
		"$dir/expected", "$dir/got" ]);
	fail($name);
	diag("the fingerprints differ ($expected_label: -, $got_label: +):\n$diff");
}

# Waits until the server log, from offset, matches pattern; true on a match,
# false on a timeout (PostgreSQL::Test::Cluster's wait_for_log croaks then).
sub wait_for_log_from
{
	my ($node, $pattern, $offset) = @_;
	return defined eval { $node->wait_for_log($pattern, $offset) };
}

sub extversion
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'lambda_detect'");
}

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
# The worker starts in postgres (no extension there: it says so once and
# waits) and is moved to detect once that holds 1.0, without the backoff of a
# missing database.
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.database = 'postgres'
lambda_detect.naptime = '200ms'
));
$node->start;
my $log_start = -s $node->logfile || 0;

my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'lambda_detect'");
isnt($current, '1.0', "the current version ($current) is not 1.0");
$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(fresh tampered from01 detect);

# 1. a fresh install of the current version, and what its fingerprint holds
$node->safe_psql('fresh', 'CREATE EXTENSION lambda_detect');
is(extversion($node, 'fresh'), $current, 'CREATE EXTENSION installs the current version');
my $fresh = fingerprint($node, 'fresh');
my $fresh_all = fingerprint($node, 'fresh', 1);
# (ok, not like: a failure must not print the thousands of lines)
for my $expected (
	qr/^extension lambda_detect: version \Q$current\E$/m,
	qr/^extension lambda_detect: member table lambda_detect\.events$/m,
	qr/^extension lambda_detect: config dump lambda_detect\.rules condition 'WHERE /m,
	qr/^schema lambda_detect: privileges \{postgres=UC\/postgres\}$/m,
	qr/^table lambda_detect\.\S+: comment /m,
	qr/^table lambda_detect\.\S+: initial privileges \(e\) /m,
	qr/^column \S+ of table lambda_detect\.\S+: comment /m,
	qr/^column \S+ of table lambda_detect\.\S+: position \d+$/m,
	qr/^column \S+ of table lambda_detect\.\S+: type \S+ not null default /m,
	qr/^constraint \S+ on table lambda_detect\.\S+: definition CHECK /m,
	qr/^constraint \S+ on table lambda_detect\.\S+: definition PRIMARY KEY /m,
	qr/^index lambda_detect\.\S+: definition CREATE INDEX .* WHERE /m,
	qr/^trigger \S+ on table lambda_detect\.\S+: enabled O$/m,
	qr/^function lambda_detect\.\S+: definition CREATE OR REPLACE FUNCTION /m,
	qr/^function lambda_detect\.\S+: kind f, .*security definer true, .*config \{"search_path=pg_catalog, pg_temp"\}$/m,
	qr/^function lambda_detect\.\S+: privileges \{postgres=X\/postgres\}$/m,
	qr/^view lambda_detect\.\S+: definition /m,
	qr/^sequence lambda_detect\.\S+: parameters bigint /m,
	qr/^row of lambda_detect\.rules: \{.*"rule": "lambda-public-invocation"/m)
{
	ok($fresh =~ $expected, "the fingerprint holds $expected");
}
# What pg_dump dumps whole, CREATE EXTENSION must leave empty, or a restore
# would collide with it.
my @dumped_whole = $fresh =~ /^extension lambda_detect: config dump (\S+) condition ''$/mg;
for my $table (@dumped_whole)
{
	next unless $fresh =~ /^extension lambda_detect: member table \Q$table\E$/m;
	ok($fresh_all =~ /^rows of \Q$table\E \(all\): 0$/m,
		"$table, dumped whole by pg_dump, is empty after CREATE EXTENSION");
}

# 2. the fingerprint sees what an upgrade script could forget
$node->safe_psql('tampered', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('tampered', q{
	COMMENT ON COLUMN lambda_detect.events.record IS NULL;
	ALTER FUNCTION lambda_detect.run_rule(text, timestamptz) SECURITY INVOKER;
	ALTER FUNCTION lambda_detect.shell_quote(text) RESET search_path;
	GRANT EXECUTE ON FUNCTION lambda_detect.classify_user_agent(text) TO PUBLIC;
	GRANT SELECT (event_id) ON lambda_detect.events TO PUBLIC;
	ALTER TABLE lambda_detect.alerts ALTER COLUMN status DROP DEFAULT;
	ALTER TABLE lambda_detect.events ALTER COLUMN record SET COMPRESSION pglz;
	ALTER TABLE lambda_detect.exceptions ADD CONSTRAINT exceptions_rule_fkey FOREIGN KEY (rule) REFERENCES lambda_detect.rules (rule);
	ALTER TABLE lambda_detect.alerts DISABLE TRIGGER alerts_notify_status;
	ALTER TABLE lambda_detect.rules SET (fillfactor = 90);
	DROP INDEX lambda_detect.events_event_time_idx;
	ALTER EXTENSION lambda_detect DROP VIEW lambda_detect.worker_health;
	UPDATE lambda_detect.rules SET risk_score = 48 WHERE rule = 'lambda-public-invocation';
});
my $tampered = fingerprint($node, 'tampered');
my @changed = (lines_not_in($tampered, $fresh), lines_not_in($fresh, $tampered));
for my $expected (
	qr/^column record of table lambda_detect\.events: comment /,
	qr/^function lambda_detect\.run_rule\(text,timestamp with time zone\): kind .*security definer false/,
	qr/^function lambda_detect\.shell_quote\(text\): kind .*config \{\}/,
	qr/^function lambda_detect\.classify_user_agent\(text\): privileges \{=X\/postgres,/,
	qr/^column event_id of table lambda_detect\.events: privileges \{=r\/postgres\}/,
	qr/^column status of table lambda_detect\.alerts: type text not null collate/,
	qr/^column record of table lambda_detect\.events: storage x, compression p/,
	qr/^constraint exceptions_rule_fkey on table lambda_detect\.exceptions: definition FOREIGN KEY /,
	qr/^trigger alerts_notify_status on table lambda_detect\.alerts: enabled D/,
	qr/^table lambda_detect\.rules: options \{fillfactor=90\}/,
	qr/^index lambda_detect\.events_event_time_idx: definition /,
	qr/^extension lambda_detect: member view lambda_detect\.worker_health$/,
	qr/^row of lambda_detect\.rules: .*"risk_score": 48/)
{
	ok((grep { $_ =~ $expected } @changed), "the fingerprint notices $expected");
}

# 3. every earlier version that can be installed (1.0, and each release
# after it), updated: the same objects and the same rows as a fresh install;
# and the library works on it
my @earlier = split /\n/, $node->safe_psql('postgres', qq{
	SELECT version FROM pg_available_extension_versions
	WHERE name = 'lambda_detect' AND version <> '$current' ORDER BY string_to_array(version, '.')::int[]});
ok((grep { $_ eq '1.0' } @earlier), 'the 1.0 release can be installed (' . join(', ', @earlier) . ')');
for my $version (@earlier)
{
	(my $db = "updated_$version") =~ s/\./_/g;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION lambda_detect VERSION '$version'");
	is(extversion($node, $db), $version, "$version installs");
	$node->safe_psql($db, 'ALTER EXTENSION lambda_detect UPDATE');
	is(extversion($node, $db), $current, "ALTER EXTENSION UPDATE goes from $version to $current");
	fingerprints_match($fresh_all, fingerprint($node, $db, 1),
		"fresh $current", "$version updated to $current",
		"$version updated is a fresh install: every object, comment, privilege and row");

	$node->safe_psql($db, sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')",
			sprintf($record, 'upg-updated-1', $intruder)));
	is($node->safe_psql($db, 'SELECT inbox_rows, events, errors FROM lambda_detect.ingest_now()'),
		'1|1|0', "ingest_now() ingests on $version updated");
	is($node->safe_psql($db,
			"SELECT status, alerts_created FROM lambda_detect.run_rule('lambda-public-invocation')"),
		'succeeded|1', "run_rule() alerts on $version updated");
}

# 4. from 0.1.  No install script of 0.1 ships: 0.1 was the pre-release
# number of the schema released as 1.0 (the tag v1.0 still says 0.1 in
# lambda_detect.control), so a 0.1 database is 1.0's schema recorded as
# 0.1, which is what this makes.
my $has_01 = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_available_extension_versions WHERE name = 'lambda_detect' AND version = '0.1'");
SKIP:
{
	skip 'no install script of 0.1 ships: 0.1 is reached below as 1.0 recorded as 0.1', 1
	  unless $has_01;
	$node->safe_psql('postgres', 'CREATE DATABASE from01_script');
	$node->safe_psql('from01_script', "CREATE EXTENSION lambda_detect VERSION '0.1'");
	$node->safe_psql('from01_script', 'ALTER EXTENSION lambda_detect UPDATE');
	fingerprints_match($fresh_all, fingerprint($node, 'from01_script', 1),
		"fresh $current", "0.1 updated to $current", '0.1 (its install script) updated is a fresh install');
}
$node->safe_psql('from01', "CREATE EXTENSION lambda_detect VERSION '1.0'");
$node->safe_psql('from01', "UPDATE pg_extension SET extversion = '0.1' WHERE extname = 'lambda_detect'");
$node->safe_psql('from01', 'ALTER EXTENSION lambda_detect UPDATE');
is(extversion($node, 'from01'), $current, "ALTER EXTENSION UPDATE goes from 0.1 to $current");
fingerprints_match($fresh_all, fingerprint($node, 'from01', 1),
	"fresh $current", "0.1 updated to $current", '0.1 updated is a fresh install');

# 5. users' data and the worker across an update
$node->safe_psql('detect', "CREATE EXTENSION lambda_detect VERSION '1.0'");
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.database = 'detect'");
$node->reload;
my $waiting = qr/schema version 1\.0 in database "detect" does not match library version \Q$current\E; waiting/;
ok(wait_for_log_from($node, $waiting, $log_start), 'the worker finds the 1.0 schema and says it waits');
ok($node->poll_query_until('detect',
		"SELECT state = 'waiting for ALTER EXTENSION UPDATE' FROM lambda_detect.worker_status()"),
	'the heartbeat says what the worker waits for');

for my $call ('SELECT lambda_detect.ingest_now()',
	"SELECT lambda_detect.run_rule('lambda-public-invocation')")
{
	my ($ret, $out, $err) = $node->psql('detect', "\\set VERBOSITY verbose\n$call");
	like($err, qr/ERROR:  55000: lambda_detect schema version 1\.0 does not match library version \Q$current\E/,
		"$call refuses the 1.0 schema with SQLSTATE 55000");
	like($err, qr/HINT:  Run ALTER EXTENSION lambda_detect UPDATE\./, "$call says what to run");
}

# The data users had, written as the 1.0 library and users wrote it (the 1.0
# library cannot run here: the installed one refuses a 1.0 schema), in every
# table; and two events still in the inbox.
my $users_data = <<'SQL';
	INSERT INTO lambda_detect.events (event_id, event_time, ingested_at, event_source, event_name,
		event_type, aws_region, recipient_account_id, actor_account_id, actor_arn, actor_type,
		source_ip, source_address, outcome, request_parameters, record)
	SELECT r->>'eventID', (r->>'eventTime')::timestamptz, now() - interval '5 minutes', r->>'eventSource',
		r->>'eventName', 'AwsApiCall', r->>'awsRegion', r->>'recipientAccountId',
		r#>>'{userIdentity,accountId}', r#>>'{userIdentity,arn}', r#>>'{userIdentity,type}',
		(r->>'sourceIPAddress')::inet, r->>'sourceIPAddress', 'success', r->'requestParameters', r
	FROM (VALUES ('%s'::jsonb)) AS v (r);
	INSERT INTO lambda_detect.rule_runs (rule, rule_version, trigger, window_start, window_end,
		started_at, finished_at, candidates, matched, alerts_created, complete_until, status)
	VALUES ('lambda-public-invocation', 1, 'ingest', now() - interval '65 minutes', now() - interval '5 minutes',
		now() - interval '5 minutes', now() - interval '5 minutes', 1, 1, 1, now() - interval '5 minutes',
		'succeeded');
	INSERT INTO lambda_detect.alerts (rule, rule_version, run_id, event_id, event_time, ingested_at,
		severity, risk_score, reason, account_id, aws_region, event_name, function_name, statement_id,
		action, principal, actor_arn, source_ip, source_address, request_parameters)
	SELECT 'lambda-public-invocation', 1, 1, event_id, event_time, ingested_at, 'medium', 47,
		'lambda:InvokeFunction granted to principal "*"', recipient_account_id, aws_region, event_name,
		'billing-export', 'public-invoke', 'lambda:InvokeFunction', '*', actor_arn, source_ip,
		source_address, request_parameters
	FROM lambda_detect.events WHERE event_id = 'upg-old-1';
	SELECT status FROM lambda_detect.acknowledge_alert(1, 'paging the owner');
	INSERT INTO lambda_detect.ingest_runs (started_at, finished_at, origin, kind, inbox_rows, records, events, candidates)
	VALUES (now() - interval '5 minutes', now() - interval '5 minutes', 'worker', 'inbox', 1, 1, 1, 1);
	INSERT INTO lambda_detect.ingest_errors (sqlstate, reason, message, source, location, inbox_id, raw_text)
	VALUES ('22P02', 'invalid_json', 'the payload is not valid JSON', 'eventbridge', 'payload', 7, '{"Records": [');
	INSERT INTO lambda_detect.ingested_files (path, size, mtime, ctime, status, documents, events)
	VALUES ('/srv/cloudtrail/AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/01/a.json.gz', 1234,
		'2026-11-01 10:05:00+00', '2026-11-01 10:05:00+00', 'ingested', 1, 1);
	INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason)
	VALUES ('lambda-public-invocation', 'actor_arn', 'equals', '%s', 'the CI role publishes public webhooks');
	INSERT INTO lambda_detect.suppressed_matches (run_id, rule, event_id, exception_id)
	VALUES (1, 'lambda-public-invocation', 'upg-old-suppressed', 1);
	INSERT INTO lambda_detect.known_networks (network, name) VALUES ('198.51.100.0/24', 'office VPN egress');
	INSERT INTO lambda_detect.investigation_settings (time_zone, business_hours_start) VALUES ('Europe/Paris', '08:00');
	INSERT INTO lambda_detect.rules (rule, rule_id, name, description, matcher, severity, risk_score,
		run_interval, lookback, max_signals, enabled)
	VALUES ('acme-public-invocation', 'a5c1c0de-0000-4000-8000-000000000001', 'Our own copy',
		'A rule a user added', 'lambda_public_invocation', 'high', 80, '1 hour', '2 hours', 10, false);
	UPDATE lambda_detect.rules SET enabled = false WHERE rule = 'lambda-cross-account-invocation';
	INSERT INTO lambda_detect.inbox (source, payload) VALUES ('eventbridge', '%s'), ('eventbridge', '%s');
SQL
$node->safe_psql('detect', sprintf($users_data, sprintf($record, 'upg-old-1', $intruder), $deployer,
	sprintf($record, 'upg-pending-1', $intruder), sprintf($record, 'upg-pending-2', $deployer)));

my @tables = split /\n/, $node->safe_psql('detect', q{
	SELECT c.oid::regclass FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
	WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind = 'r'
	  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'lambda_detect')
	ORDER BY 1});
for my $table (@tables)
{
	is($node->safe_psql('detect', "SELECT count(*) > 0 FROM $table"), 't', "1.0 data: $table has rows");
}
# Every row as it is now (updated_at aside: it stamps the last change of a
# rule, which an update may make), to find after the update.  The inbox is
# left out: the worker drains it once the schema is updated.
$node->safe_psql('detect', 'CREATE TABLE public.before_update (tab text, j jsonb)');
for my $table (grep { $_ ne 'lambda_detect.inbox' } @tables)
{
	$node->safe_psql('detect',
		"INSERT INTO public.before_update SELECT '$table', to_jsonb(t) - 'updated_at' FROM $table t");
}

$node->safe_psql('detect', 'ALTER EXTENSION lambda_detect UPDATE');
is(extversion($node, 'detect'), $current, "the database holding data is updated to $current");

# every row is still there, with the values it had (new columns aside)
for my $table (grep { $_ ne 'lambda_detect.inbox' } @tables)
{
	my $missing = $node->safe_psql('detect', qq{
		SELECT b.j FROM public.before_update b
		WHERE b.tab = '$table'
		  AND NOT EXISTS (
			SELECT 1 FROM $table t
			WHERE (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(to_jsonb(t)) e
			       WHERE b.j ? e.key) = b.j)});
	is($missing, '', "every row of $table is still there after the update");
}
is($node->safe_psql('detect',
		"SELECT enabled FROM lambda_detect.rules WHERE rule = 'lambda-cross-account-invocation'"),
	'f', "a user's change to a shipped rule survives the update");

# the worker resumes on its own: the inbox events are ingested, the
# intruder's grant is alerted, the deployer's is suppressed by the 1.0
# exception, and the event alerted before the update is not alerted twice
ok($node->poll_query_until('detect', q{
		SELECT (SELECT count(*) FROM lambda_detect.inbox) = 0
		   AND (SELECT count(*) FROM lambda_detect.alerts
		        WHERE rule = 'lambda-public-invocation' AND event_id = 'upg-pending-1') = 1
		   AND (SELECT count(*) FROM lambda_detect.suppressed_matches
		        WHERE rule = 'lambda-public-invocation' AND event_id = 'upg-pending-2' AND exception_id = 1) = 1}),
	'after the update the worker ingests the inbox and runs the rules, exceptions included');
is($node->safe_psql('detect', q{
		SELECT count(*) FROM lambda_detect.alerts WHERE event_id IN ('upg-pending-2', 'upg-old-1')}),
	'1', 'no alert for the excepted grant, and none again for the event alerted in 1.0');
is($node->safe_psql('detect', q{
		SELECT alert_id > 1 FROM lambda_detect.alerts WHERE event_id = 'upg-pending-1'}),
	't', 'alert ids go on from where 1.0 left them');
my $waits = () = slurp_file($node->logfile, $log_start) =~ /$waiting/g;
is($waits, 1, 'the worker said once that it waited, however often it was woken');

# and the library works for users: ingest_now(), run_rule(), triage
$node->safe_psql('detect', sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')",
		sprintf($record, 'upg-after-1', $intruder)));
is($node->safe_psql('detect', 'SELECT errors FROM lambda_detect.ingest_now()'), '0',
	'ingest_now() works after the update');
ok($node->poll_query_until('detect',
		"SELECT count(*) = 1 FROM lambda_detect.events WHERE event_id = 'upg-after-1'"),
	'and the event is stored (by it or by the worker)');
is($node->safe_psql('detect',
		"SELECT status FROM lambda_detect.run_rule('lambda-public-invocation')"),
	'succeeded', 'run_rule() works after the update');
is($node->safe_psql('detect', "SELECT status FROM lambda_detect.close_alert(1, 'true_positive', 'removed')"),
	'closed', 'an alert acknowledged in 1.0 can be closed after the update');

# what users hold aside, the objects and the shipped rows are a fresh install's
$node->safe_psql('detect',
	"UPDATE lambda_detect.rules SET enabled = true WHERE rule = 'lambda-cross-account-invocation'");
$node->safe_psql('detect', 'DROP TABLE public.before_update');
fingerprints_match($fresh, fingerprint($node, 'detect'),
	"fresh $current", "1.0 with data updated to $current",
	'1.0 holding data, updated, is a fresh install: every object, comment, privilege and shipped row');

$node->stop;
done_testing();
