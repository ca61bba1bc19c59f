# The background worker's life: a missing database and a missing extension
# give a clear log line and a backoff, not a crash loop; then it works; it
# follows lambda_detect.database on reload, comes back after being
# terminated, and never runs on a hot standby until that is promoted.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $attack = q({"eventID": "%s", "eventTime": "2026-11-01T10:00:00Z",
  "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2",
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*", "functionName": "f"}});

sub worker_pid
{
	my ($node, $db) = @_;
	return $node->safe_psql($db || 'postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");
}

# Waits until the server log, from offset, matches pattern; true on a match,
# false on a timeout (PostgreSQL::Test::Cluster's wait_for_log croaks then).
sub wait_for_log_from
{
	my ($node, $pattern, $offset) = @_;
	return defined eval { $node->wait_for_log($pattern, $offset) };
}

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.database = 'detect'
lambda_detect.naptime = '200ms'
));
my $log_start = -s $node->logfile || 0;
$node->start;

# 1. the database does not exist: a clear message, and restarts that back off
ok(wait_for_log_from($node, qr/connecting to database "detect" failed 2 times; retrying in \d+ ms/, $log_start),
	'a missing database is reported with its backoff');
sleep(6);
my $fatals = () = slurp_file($node->logfile, $log_start) =~ /database "detect" does not exist/g;
ok($fatals <= 4, "no crash loop while the database is missing ($fatals attempts)");

# 2. the database exists, the extension does not: said once, then it waits
$log_start = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE DATABASE detect');
ok(wait_for_log_from($node, qr/extension "lambda_detect" is not installed in database "detect"/, $log_start),
	'a missing extension is reported');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker' AND datname = 'detect'"),
	'the worker runs in the database once it exists');

# 3. CREATE EXTENSION: the worker picks up the inbox and alerts, without any call
$node->safe_psql('detect', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('detect', sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')",
		sprintf($attack, 'life-1')));
ok($node->poll_query_until('detect',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'life-1'"),
	'the worker ingests and alerts after CREATE EXTENSION');
is($node->safe_psql('detect', 'SELECT count(*) FROM lambda_detect.inbox'), '0', 'the inbox is drained');

# 4. pg_terminate_backend: the worker comes back within its restart time
my $pid = worker_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker' AND pid <> $pid"),
	'a terminated worker is restarted');
$node->safe_psql('detect', sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')",
		sprintf($attack, 'life-2')));
ok($node->poll_query_until('detect',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'life-2'"),
	'the restarted worker works');

# 5. SIGHUP: a new lambda_detect.database moves the worker there
$node->safe_psql('postgres', 'CREATE DATABASE detect2');
$node->safe_psql('detect2', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.database = 'detect2'");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker' AND datname = 'detect2'"),
	'the worker follows lambda_detect.database on reload');
$node->safe_psql('detect2', sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')",
		sprintf($attack, 'life-3')));
ok($node->poll_query_until('detect2',
		"SELECT count(*) = 1 FROM lambda_detect.events WHERE event_id = 'life-3'"),
	'and ingests there');
is($node->safe_psql('detect2', 'SELECT database FROM lambda_detect.worker_status()'), 'detect2',
	'the heartbeat names the new database');

# 6. a hot standby runs no worker; once promoted, it does
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
$node->safe_psql('detect2', sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')",
		sprintf($attack, 'life-4')));
$node->poll_query_until('detect2', "SELECT count(*) = 1 FROM lambda_detect.events WHERE event_id = 'life-4'");
$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'"),
	'0', 'no worker on the standby');
is($standby->safe_psql('detect2', 'SELECT pid IS NULL FROM lambda_detect.worker_status()'), 't',
	'the standby heartbeat shows no worker');
$node->stop;
$standby->promote;
ok($standby->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'"),
	'the promoted standby starts the worker');
$standby->safe_psql('detect2', sprintf("INSERT INTO lambda_detect.inbox (payload) VALUES ('%s')",
		sprintf($attack, 'life-5')));
ok($standby->poll_query_until('detect2',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'life-5'"),
	'and it ingests and alerts');
$standby->stop;

done_testing();
