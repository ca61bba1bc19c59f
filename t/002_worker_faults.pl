# The worker under faults it must survive without losing work or spinning:
# an idle worker does not busy-loop; a rule run that cannot lock its rule
# is recorded as failed (not left "running") and retried; a rule run
# reaches back over a gap in which no run completed, so nothing ingested
# is skipped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $attack = q({"eventID": "%s", "eventTime": "2026-11-01T10:00:00Z",
  "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2",
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*", "functionName": "f"}});

sub submit
{
	my ($node, $id) = @_;
	$node->safe_psql('postgres',
		sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')", sprintf($attack, $id)));
}

my $node = PostgreSQL::Test::Cluster->new('faults');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.naptime = '1s'
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');
submit($node, 'fault-0');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'fault-0'")
  or die 'the worker never alerted';

# 1. idle: a handful of transactions a second, not a busy loop.  This
# observes a quiet period on purpose: there is no effect to wait for.
my $commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'";
$node->safe_psql('postgres', 'SELECT pg_stat_force_next_flush()');
my $before = $node->safe_psql('postgres', $commits);
sleep(3);
my $after = $node->safe_psql('postgres', $commits);
cmp_ok($after - $before, '<', 60, "an idle worker commits little (" . ($after - $before) . " in 3 s)");

# 2. a rule run that cannot lock its rule fails, is recorded, and is retried
$node->safe_psql('postgres', "ALTER DATABASE postgres SET lock_timeout = '300ms'");
my $old_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker' AND pid <> $old_pid")
  or die 'the worker did not come back';

my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; SELECT rule FROM lambda_detect.rules FOR UPDATE;');
submit($node, 'fault-1');
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM lambda_detect.rule_runs WHERE status = 'failed' AND error_sqlstate = '55P03'"),
	'a run that cannot lock its rule is recorded as failed, with its SQLSTATE');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM lambda_detect.rule_runs WHERE status = 'running' AND started_at < now() - interval '2 seconds'"),
	'0', 'no run is left running');
$holder->query_safe('COMMIT;');
$holder->quit;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'fault-1'"),
	'the retried run alerts once the rule is free');
$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET lock_timeout');

# 3. a gap: events ingested two hours ago that no run examined (the worker
# was stopped and runs were off) still alert, because the worker's next run
# starts where the last complete run left off, not an hour back
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.run_rules = off");
$node->reload;
$node->safe_psql('postgres', q{
	DELETE FROM lambda_detect.rule_runs;
	INSERT INTO lambda_detect.rule_runs (rule, rule_version, trigger, window_start, window_end,
	    started_at, finished_at, status, complete_until)
	VALUES ('lambda-public-invocation', 1, 'schedule', now() - interval '4 hours',
	    now() - interval '3 hours', now() - interval '3 hours', now() - interval '3 hours',
	    'succeeded', now() - interval '3 hours');
	INSERT INTO lambda_detect.events (event_id, event_time, ingested_at, event_source, event_name,
	    outcome, request_parameters, record)
	VALUES ('fault-gap', now() - interval '2 hours', now() - interval '2 hours',
	    'lambda.amazonaws.com', 'AddPermission20150331v2', 'success',
	    '{"action": "lambda:InvokeFunction", "principal": "*", "functionName": "g"}', '{}');
});
# an analyst's manual run over the last hour, meanwhile, must not count as
# having examined the gap
is($node->safe_psql('postgres', q{
	SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation')}),
	'0', 'a manual run of the last hour does not see the gap');
$node->safe_psql('postgres', "ALTER SYSTEM RESET lambda_detect.run_rules");
$node->reload;
submit($node, 'fault-3');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'fault-3'"),
	'with rules back on, a new attack alerts');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'fault-gap'"),
	'an event ingested in a gap longer than the lookback is still alerted');
ok($node->safe_psql('postgres', q{
	SELECT window_start <= now() - interval '3 hours' FROM lambda_detect.rule_runs r
	  JOIN lambda_detect.alerts a ON a.run_id = r.run_id WHERE a.event_id = 'fault-gap'}) eq 't',
	'that run reached back to the last complete run');
ok($node->safe_psql('postgres', q{
	SELECT bool_and(complete_until IS NOT NULL) FROM lambda_detect.rule_runs
	 WHERE status = 'succeeded' AND NOT truncated AND trigger <> 'manual'}) eq 't',
	'complete worker runs record how far they are complete');

is($node->safe_psql('postgres', q{
	SELECT bool_and(complete_until IS NULL) FROM lambda_detect.rule_runs WHERE trigger = 'manual'}),
	't', 'manual runs leave the watermark alone');

# 4. DROP DATABASE of the worker's database is not blocked by the worker,
# and only the database's owner can make the worker leave
$node->safe_psql('postgres', 'CREATE DATABASE dropme');
$node->safe_psql('dropme', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('postgres', 'CREATE ROLE regress_other LOGIN CREATEDB');
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.database = 'dropme'");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker' AND datname = 'dropme'"),
	'the worker runs in database dropme');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE dropme',
	extra_params => ['-U', 'regress_other']);
like($stderr, qr/must be owner of database dropme/, 'a non-owner cannot drop it');
is($node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'"),
	$pid, 'and its attempt leaves the worker alone');
($ret, $stdout, $stderr) = $node->psql('postgres', 'BEGIN; DROP DATABASE dropme; COMMIT;');
like($stderr, qr/cannot run inside a transaction block/, 'a DROP DATABASE that cannot succeed fails');
is($node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'"),
	$pid, 'and leaves the worker alone too');
($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE dropme');
is($ret, 0, 'the owner drops the database the worker was connected to');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'dropme'"),
	'0', 'it is gone');
$node->safe_psql('postgres', "ALTER SYSTEM RESET lambda_detect.database");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker' AND datname = 'postgres'"),
	'the worker comes back to its database once the setting points there again');

$node->stop;
done_testing();
