# The extension changes under a busy worker: DROP EXTENSION in the middle of
# a large drain completes without a crash, a block or a flood of log lines,
# and CREATE EXTENSION again resumes the work; a schema of another version
# (1.0 under the 1.1 library) is reported once while the inbox stays
# queued, and ALTER EXTENSION UPDATE lets the worker drain it and run the
# rules; DROP DATABASE in the middle of a drain completes too.  The worker's
# heartbeat is read from a second database, which keeps the extension.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $attack = q({"eventID": "%s", "eventTime": "2026-11-01T10:00:00Z",
  "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2",
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*", "functionName": "f"}});

# 100,000 small records in one statement, an attack every 10,000th
sub fill_inbox_sql
{
	my ($prefix) = @_;
	return qq{
	INSERT INTO lambda_detect.inbox (payload)
	SELECT jsonb_build_object('eventID', '$prefix-' || i, 'eventTime', '2026-11-01T10:00:00Z',
	         'eventSource', CASE WHEN i % 10000 = 0 THEN 'lambda.amazonaws.com' ELSE 's3.amazonaws.com' END,
	         'eventName', CASE WHEN i % 10000 = 0 THEN 'AddPermission20150331v2' ELSE 'GetObject' END,
	         'requestParameters', jsonb_build_object('action', 'lambda:InvokeFunction', 'principal', '*',
	                                                 'functionName', 'f' || i))
	  FROM generate_series(1, 100000) i};
}

sub submit
{
	my ($node, $db, $id) = @_;
	$node->safe_psql($db,
		sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')", sprintf($attack, $id)));
}

sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");
}

sub count_in_log
{
	my ($node, $pattern, $offset) = @_;
	my @hits = slurp_file($node->logfile, $offset) =~ /$pattern/g;
	return scalar @hits;
}

# Waits until the server log, from offset, matches pattern; true on a match,
# false on a timeout (PostgreSQL::Test::Cluster's wait_for_log croaks then).
sub wait_for_log_from
{
	my ($node, $pattern, $offset) = @_;
	return defined eval { $node->wait_for_log($pattern, $offset) };
}

my $node = PostgreSQL::Test::Cluster->new('lifecycle');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.naptime = '200ms'
));
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE observer');
$node->safe_psql('observer', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');

sub heartbeat
{
	my ($what) = @_;
	return $node->safe_psql('observer', "SELECT $what FROM lambda_detect.worker_status()");
}

# Wakes the worker $times times (a reload sets its latch) and waits each time
# until it has been round its loop again: its heartbeat moved.
sub wake_and_wait
{
	my ($times) = @_;
	for (1 .. $times)
	{
		my $before = heartbeat('last_activity_at');
		$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
		$node->poll_query_until('observer',
			"SELECT last_activity_at > '$before' FROM lambda_detect.worker_status()")
		  or return 0;
	}
	return 1;
}

my $missing = qr/extension "lambda_detect" is not installed in database "postgres"/;

# 1. DROP EXTENSION in the middle of a large drain
$node->safe_psql('postgres', fill_inbox_sql('drop'));
$node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM lambda_detect.ingest_runs')
  or die 'the drain never started';
my $left = $node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.inbox');
ok($left > 0, "the worker is draining ($left rows left)");
my $pid = worker_pid($node);
my $log_start = -s $node->logfile;
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET statement_timeout = '60s'; DROP EXTENSION lambda_detect CASCADE");
is($ret, 0, 'DROP EXTENSION completes (within 60 s)');
is($stderr, '', 'without an error');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
ok($node->poll_query_until('observer',
		"SELECT state = 'waiting for extension' AND pid = $pid FROM lambda_detect.worker_status()"),
	'the same worker waits for the extension');
ok(wake_and_wait(5), 'and looks for it again at each wake-up');
is(count_in_log($node, $missing, $log_start), 1, 'saying once that it is missing');
is(count_in_log($node, qr/\[$pid\] ERROR:/, $log_start), 0,
	'no unit of the worker failed on the vanishing tables');

$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');
submit($node, 'postgres', 'life-again');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'life-again'"),
	'CREATE EXTENSION again: new inbox rows are ingested and alerted');
is(worker_pid($node), $pid, 'by the same worker');

# 2. a schema of another version: the worker waits, the inbox stays queued
$log_start = -s $node->logfile;
$node->safe_psql('postgres', 'DROP EXTENSION lambda_detect');
$node->safe_psql('postgres', "CREATE EXTENSION lambda_detect VERSION '1.0'");
my $mismatch = qr/schema version 1\.0 in database "postgres" does not match library version 1\.1; waiting/;
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('observer',
		"SELECT state = 'waiting for ALTER EXTENSION UPDATE' FROM lambda_detect.worker_status()"),
	'the worker waits for ALTER EXTENSION UPDATE');
submit($node, 'postgres', 'upd-1');
$node->safe_psql('postgres', q{
	INSERT INTO lambda_detect.inbox (payload)
	SELECT jsonb_build_object('eventID', 'upd-' || i, 'eventTime', '2026-11-01T10:00:00Z',
	         'eventSource', 's3.amazonaws.com', 'eventName', 'GetObject')
	  FROM generate_series(2, 6) i});
ok(wake_and_wait(3), 'it looks again at each wake-up');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.inbox'), '6',
	'the inbox rows stay queued');
ok(wait_for_log_from($node, $mismatch, $log_start), 'the version mismatch is logged');
is(count_in_log($node, $mismatch, $log_start), 1, 'once');

$node->safe_psql('postgres', 'ALTER EXTENSION lambda_detect UPDATE');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'lambda_detect'"),
	'1.1', 'the schema is updated to the library version');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lambda_detect.inbox'),
	'after ALTER EXTENSION UPDATE the worker drains the queued rows');
is($node->safe_psql('postgres', "SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'upd-%'"),
	'6', 'every one of them is stored');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'upd-1'"),
	'and the rules run: the attack among them is alerted');
is(count_in_log($node, qr/\[$pid\] ERROR:/, $log_start), 0, 'without an error on the way');

# 3. DROP DATABASE in the middle of a large drain
$node->safe_psql('postgres', 'CREATE DATABASE busy');
$node->safe_psql('busy', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.database = 'busy'");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker' AND datname = 'busy'")
  or die 'the worker did not move to database busy';
$node->safe_psql('busy', fill_inbox_sql('busy'));
$node->poll_query_until('busy', 'SELECT count(*) > 0 FROM lambda_detect.ingest_runs')
  or die 'the drain never started';
$left = $node->safe_psql('busy', 'SELECT count(*) FROM lambda_detect.inbox');
ok($left > 0, "the worker is draining database busy ($left rows left)");
$log_start = -s $node->logfile;
($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET statement_timeout = '60s'; DROP DATABASE busy");
is($ret, 0, 'DROP DATABASE of the busy worker\'s database completes (within 60 s)');
ok(wait_for_log_from($node, qr/FATAL:  database "busy" does not exist/, $log_start),
	'the restarted worker finds it gone');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET lambda_detect.database');
$node->reload;
submit($node, 'postgres', 'life-back');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'life-back'"),
	'pointed back at its database, it works');

unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated/,
	'no process crashed');
$node->stop;
done_testing();
