# The worker as a role that is not a superuser, with nothing but the README's
# grants of the worker duty: it drains the inbox, reads files, runs the
# rules, and its alerts are delivered by NOTIFY; nobody can log in as that
# role.  The rules' watermark still holds back for open transactions of
# other roles, which such a role cannot see in pg_stat_activity: an attack
# stored by a transaction that commits after the worker's run is alerted
# (also with track_activities off, and from a prepared transaction).  A
# missing grant is logged once, naming the GRANT to run, and the worker
# backs off until it is there; a role that may not log in is a clear
# connection failure with backoff, also for the worker's ingest helpers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $attack = q({"eventID": "%s", "eventTime": "2026-11-01T10:00:00Z",
  "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2",
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*", "functionName": "f"}});

sub submit_sql
{
	my ($id) = @_;
	return sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')", sprintf($attack, $id));
}

sub alerted
{
	my ($id) = @_;
	return "SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = '$id'";
}

# Waits until the server log, from offset, matches pattern; true on a match,
# false on a timeout (PostgreSQL::Test::Cluster's wait_for_log croaks then).
sub wait_for_log_from
{
	my ($node, $pattern, $offset) = @_;
	return defined eval { $node->wait_for_log($pattern, $offset) };
}

sub count_in_log
{
	my ($node, $pattern, $offset) = @_;
	my @hits = slurp_file($node->logfile, $offset) =~ /$pattern/g;
	return scalar @hits;
}

# The README's statements for the worker duty, word for word: its SQL block
# from the line "-- worker:" to the end of the block.
my $readme = slurp_file(($ENV{TESTDIR} || '.') . '/README.md');
my ($worker_grants) = $readme =~ /^(-- worker:.*?)^```/ms;
ok(defined $worker_grants && $worker_grants =~ /CREATE ROLE lambda_detect_worker/,
	"the README gives the worker duty's statements");

my $node = PostgreSQL::Test::Cluster->new('role');
$node->init;
my $trail = PostgreSQL::Test::Utils::tempdir();
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.naptime = '200ms'
lambda_detect.inbox_dir = '$trail'
lambda_detect.scan_interval = '200ms'
lambda_detect.file_settle_time = 0
max_prepared_transactions = 2
));
# the README's pg_hba.conf lines, above the others
my $hba = $node->data_dir . '/pg_hba.conf';
my $hba_text = slurp_file($hba);
open(my $fh, '>', $hba) or die "could not write $hba: $!";
print $fh "local all lambda_detect_worker reject\nhost all lambda_detect_worker all reject\n$hba_text";
close($fh);
$node->start;

# 1. the role, the README's grants, and the setting: the worker restarts as that role
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('postgres', $worker_grants);
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.worker_role = 'lambda_detect_worker'");
$node->reload;
ok($node->poll_query_until('postgres', q{
	SELECT a.usename = 'lambda_detect_worker' AND NOT r.rolsuper
	  FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename
	 WHERE a.backend_type = 'lambda_detect worker'}),
	'the worker runs as lambda_detect_worker, which is not a superuser');
is($node->safe_psql('postgres', q{
	SELECT pg_has_role('lambda_detect_worker', 'pg_read_all_stats', 'USAGE')
	    OR pg_has_role('lambda_detect_worker', 'pg_read_server_files', 'USAGE')}),
	'f', 'it may neither read all statistics nor read server files');
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT 1',
	extra_params => ['-U', 'lambda_detect_worker']);
like($stderr, qr/pg_hba\.conf rejects connection for host "\[local\]", user "lambda_detect_worker"/,
	'nobody can log in as the worker role');

# 2. its whole job: the inbox, a file, the rules, alerts, NOTIFY
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN lambda_detect_alerts;');
$node->safe_psql('postgres', submit_sql('role-inbox'));
ok($node->poll_query_until('postgres', alerted('role-inbox')),
	'an attack put in the inbox is ingested and alerted');
my $inbox_alert = $node->safe_psql('postgres',
	"SELECT alert_id FROM lambda_detect.alerts WHERE event_id = 'role-inbox'");
like($listener->query_safe('SELECT 1;'),
	qr/Asynchronous notification "lambda_detect_alerts" with payload ".*"alert_id": $inbox_alert,.*" received/,
	'and its NOTIFY is delivered');

open($fh, '>', "$trail/.part") or die;
print $fh '{"Records": [' . sprintf($attack, 'role-file') . ']}';
close($fh);
rename("$trail/.part", "$trail/trail.json") or die;
ok($node->poll_query_until('postgres', alerted('role-file')),
	'an attack in a file below inbox_dir is ingested and alerted');
is($node->safe_psql('postgres',
		"SELECT status FROM lambda_detect.ingested_files WHERE path = '$trail/trail.json'"),
	'ingested', 'the file is in the ledger');
is($node->safe_psql('postgres', q{
	SELECT count(*) > 0 AND bool_and(origin = 'worker') FROM lambda_detect.ingest_runs}),
	't', 'the worker recorded its ingest runs');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE status = 'succeeded' AND complete_until IS NOT NULL) > 0
	   AND count(*) FILTER (WHERE status <> 'succeeded') = 0
	  FROM lambda_detect.rule_runs}),
	't', 'its rule runs succeeded and moved the watermark');

# 3. the watermark.  With a one-second lookback, an event a run does not see
# is alerted later only if the watermark stayed at or before it.  Sessions
# of another role (the superuser) store attacks with ingest_now() in
# transactions that stay open across the worker's runs (without scanning
# inbox_dir, whose lock they would hold).
$node->safe_psql('postgres', q{
	UPDATE lambda_detect.rules SET lookback = '1 second', run_interval = '1 second'
	 WHERE rule = 'lambda-public-invocation'});

# Waits for a successful worker run of the seed rule that started after $after
# plus two lookbacks, and returns whether every worker run that started after
# $after kept the watermark at or before $bound (NULL: none recorded).
sub watermark_held
{
	my ($after, $bound) = @_;
	$node->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM lambda_detect.rule_runs
		 WHERE rule = 'lambda-public-invocation' AND trigger <> 'manual'
		   AND status = 'succeeded' AND started_at > '$after'::timestamptz + interval '2 seconds'})
	  or return 0;
	return $node->safe_psql('postgres', qq{
		SELECT bool_and(complete_until IS NULL OR complete_until <= '$bound')
		  FROM lambda_detect.rule_runs
		 WHERE rule = 'lambda-public-invocation' AND trigger <> 'manual'
		   AND started_at > '$after'}) eq 't';
}

my $untracked = $node->background_psql('postgres');
$untracked->query_safe("SET lambda_detect.inbox_dir = '';");
$untracked->query_safe('SET track_activities = off;');
$untracked->query_safe('BEGIN;');
$untracked->query_safe(submit_sql('wm-untracked') . ';');
my $t_untracked = $untracked->query_safe('SELECT now();');
$untracked->query_safe('SELECT events FROM lambda_detect.ingest_now();');
my $open = $node->background_psql('postgres');
$open->query_safe("SET lambda_detect.inbox_dir = '';");
$open->query_safe('BEGIN;');
$open->query_safe(submit_sql('wm-open') . ';');
my $t_open = $open->query_safe('SELECT now();');
$open->query_safe('SELECT events FROM lambda_detect.ingest_now();');
ok(watermark_held($t_open, $t_untracked),
	'runs while both are open keep the watermark before the older one (track_activities off there)');
$open->query_safe('COMMIT;');
$untracked->query_safe('COMMIT;');
ok($node->poll_query_until('postgres', alerted('wm-open')),
	'an attack committed after the runs that could not see it is alerted');
ok($node->poll_query_until('postgres', alerted('wm-untracked')),
	'also from a session with track_activities off');

my $prepared = $node->background_psql('postgres');
$prepared->query_safe("SET lambda_detect.inbox_dir = '';");
$prepared->query_safe('BEGIN;');
$prepared->query_safe(submit_sql('wm-prepared') . ';');
my $t_prepared = $prepared->query_safe('SELECT now();');
$prepared->query_safe('SELECT events FROM lambda_detect.ingest_now();');
$prepared->query_safe("PREPARE TRANSACTION 'wm';");
ok(watermark_held($t_prepared, $t_prepared),
	'runs while a prepared transaction is pending do not move the watermark past it');
$prepared->query_safe("COMMIT PREPARED 'wm';");
ok($node->poll_query_until('postgres', alerted('wm-prepared')),
	'an attack of a prepared transaction committed later is alerted');
$prepared->quit;
$open->quit;
$untracked->quit;

# 4. a grant missing at work: one clear log line, backoff, nothing runs; then GRANT
my $log_start = -s $node->logfile;
$node->safe_psql('postgres', 'REVOKE INSERT ON lambda_detect.alerts FROM lambda_detect_worker');
$node->safe_psql('postgres', submit_sql('role-denied'));
my $missing = qr/role "lambda_detect_worker" lacks 1 privilege the worker needs/;
ok(wait_for_log_from($node, $missing, $log_start), 'a missing grant is logged');
my $seen_at = time();
my $errors = $node->safe_psql('postgres', 'SELECT errors FROM lambda_detect.worker_status()');
like(slurp_file($node->logfile, $log_start),
	qr/ERROR:  lambda_detect worker: role "lambda_detect_worker" lacks 1 privilege the worker needs\n.*DETAIL:  Missing: INSERT on table lambda_detect\.alerts\.\n.*HINT:  As a superuser, run: GRANT INSERT ON lambda_detect\.alerts TO lambda_detect_worker;/,
	'as an error naming the privilege, with the GRANT to run');
is($node->safe_psql('postgres', q{
	SELECT error_sqlstate FROM lambda_detect.rule_runs WHERE status = 'failed' ORDER BY run_id DESC LIMIT 1}),
	'42501', 'the rule run that lacked it is recorded as failed');
is($node->safe_psql('postgres', 'SELECT state FROM lambda_detect.worker_status()'),
	'waiting for privileges', 'the heartbeat says what the worker waits for');
$node->safe_psql('postgres', submit_sql('role-queued'));
# checks 2, 3 and 4 come 1, 2 and 4 s apart; were the count read before
# check 1 was counted, three more would still take 3 s
ok($node->poll_query_until('postgres',
		'SELECT errors >= ' . ($errors + 3) . ' FROM lambda_detect.worker_status()'),
	'the worker keeps checking');
my $elapsed = time() - $seen_at;
cmp_ok($elapsed, '>=', 2, sprintf('with backoff (three more checks took %.1f s)', $elapsed));
is(count_in_log($node, $missing, $log_start), 1, 'the missing grant is logged once');
is($node->safe_psql('postgres', "SELECT count(*) FROM lambda_detect.inbox"), '1',
	'the inbox waits meanwhile');
$node->safe_psql('postgres', 'GRANT INSERT ON lambda_detect.alerts TO lambda_detect_worker');
ok($node->poll_query_until('postgres', alerted('role-queued')) &&
	$node->poll_query_until('postgres', alerted('role-denied')),
	'after the GRANT the worker goes on: both attacks are alerted');
isnt($node->safe_psql('postgres', 'SELECT state FROM lambda_detect.worker_status()'),
	'waiting for privileges', 'and it no longer waits');

# 5. a role that may not log in: a clear connection failure and backoff
$log_start = -s $node->logfile;
$node->safe_psql('postgres', 'ALTER ROLE lambda_detect_worker NOLOGIN');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(wait_for_log_from($node, qr/role "lambda_detect_worker" is not permitted to log in/, $log_start),
	'a NOLOGIN role cannot be the worker role in PostgreSQL 15');
ok(wait_for_log_from($node,
		qr/connecting to database "postgres" as role "lambda_detect_worker" failed 1 times; retrying in \d+ ms\n.*HINT:  .*the role needs LOGIN/,
		$log_start),
	'the worker says so and backs off');
$node->safe_psql('postgres', 'ALTER ROLE lambda_detect_worker LOGIN');
$node->safe_psql('postgres', submit_sql('role-login'));
ok($node->poll_query_until('postgres', alerted('role-login')),
	'with LOGIN back, it comes back and works');
# 6. the role loses LOGIN while the worker is connected: an ingest helper
# cannot connect, and the worker drains a backlog alone instead of starting
# a helper per batch that fails
$log_start = -s $node->logfile;
$node->safe_psql('postgres', 'ALTER ROLE lambda_detect_worker NOLOGIN');
$node->safe_psql('postgres', q{
	INSERT INTO lambda_detect.inbox (payload)
	SELECT jsonb_build_object('eventID', 'nologin-' || i, 'eventTime', '2026-11-01T10:00:00Z',
	         'eventSource', 's3.amazonaws.com', 'eventName', 'GetObject')
	  FROM generate_series(1, 20000) i});
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lambda_detect.inbox'),
	'with a NOLOGIN role the connected worker drains a backlog');
is(count_in_log($node, qr/FATAL:  role "lambda_detect_worker" is not permitted to log in/, $log_start),
	1, 'after one helper failed to connect, not one per batch');
$node->safe_psql('postgres', 'ALTER ROLE lambda_detect_worker LOGIN');

unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');

$listener->quit;
$node->stop;
done_testing();
