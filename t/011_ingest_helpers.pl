# Ingest helpers (lambda_detect.ingest_helpers): a backlog in the inbox is
# drained by the worker and a helper it starts, side by side, without a row
# lost, stored twice or counted twice, even when the two copies of an event
# are claimed by different processes and a helper is killed mid-batch; a
# backlog of log files is shared the same way, each file read once; an
# attack a helper stores is alerted; helpers exit once the work is done;
# with the setting at 0 none starts.  (DROP DATABASE stopping helpers is
# part 3 of t/007, whose drain starts one.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('helpers');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.naptime = '200ms'
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');

# 2 * $n inbox rows holding $n events, each twice and $n rows apart (so
# that the copies fall in different batches); event $prefix-777 an attack
sub fill_inbox
{
	my ($prefix, $n) = @_;
	$node->safe_psql('postgres', qq{
	INSERT INTO lambda_detect.inbox (payload)
	SELECT jsonb_build_object('eventID', '$prefix-' || i % $n, 'eventTime', '2026-11-01T10:00:00Z',
	         'eventSource', CASE WHEN i % $n = 777 THEN 'lambda.amazonaws.com' ELSE 's3.amazonaws.com' END,
	         'eventName', CASE WHEN i % $n = 777 THEN 'AddPermission20150331v2' ELSE 'GetObject' END,
	         'requestParameters', jsonb_build_object('action', 'lambda:InvokeFunction', 'principal', '*',
	                                                 'functionName', 'f' || i % $n))
	  FROM generate_series(1, 2 * $n) i});
}

# a query true when one process of the type waits for a lock
sub blocked
{
	my ($type) = @_;
	return qq{SELECT count(*) = 1 FROM pg_stat_activity
	           WHERE backend_type = '$type' AND wait_event_type = 'Lock'};
}
my $helpers = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lambda_detect ingest helper'};

# 1. a backlog: once the drain has begun, a lock on events holds every
# batch where it is, so the helper is seen working beside the worker
fill_inbox('h', 30000);
$node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM lambda_detect.ingest_runs')
  or die 'the drain never started';
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE lambda_detect.events IN SHARE MODE;');
ok($node->poll_query_until('postgres', blocked('lambda_detect ingest helper')),
	'the worker started a helper, which is draining the inbox beside it');
ok($node->poll_query_until('postgres', blocked('lambda_detect worker')),
	'while the worker drains too');

# 2. a helper killed in the middle of a batch: its claim is rolled back
my $helper_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect ingest helper'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($helper_pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $helper_pid")
  or die 'the helper did not exit';
$holder->query_safe('COMMIT;');
$holder->quit;

ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lambda_detect.inbox'),
	'the inbox is drained');
is($node->safe_psql('postgres', q{
	SELECT sum(inbox_rows) || ' rows, ' || sum(events) || ' events, ' || sum(duplicates) || ' duplicates'
	  FROM lambda_detect.ingest_runs}),
	'60000 rows, 30000 events, 30000 duplicates',
	'every row counted once: each event stored once, its copy counted as a duplicate');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' stored, ' || count(DISTINCT event_id) || ' distinct'
	  FROM lambda_detect.events WHERE event_id LIKE 'h-%'}),
	'30000 stored, 30000 distinct', 'nothing lost or stored twice, with a helper killed mid-batch');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'h-777'"),
	'the attack in the backlog is alerted, once');
ok($node->poll_query_until('postgres', "SELECT ($helpers) = 0"),
	'helpers exit once the inbox is drained');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.ingest_errors'), '0',
	'and nothing was dead-lettered');

# 3. a backlog of log files: the worker's scan, finding more files than one
# transaction takes, has a helper scan beside it; each file is read once
my $trail = $node->basedir . '/trail';
mkdir $trail or die "mkdir $trail: $!";
for my $f (1 .. 80)
{
	my @records = map {
		my $id = "file-$f-$_";
		my ($src, $name) = ($f == 40 && $_ == 7)
		  ? ('lambda.amazonaws.com', 'AddPermission20150331v2')
		  : ('s3.amazonaws.com', 'GetObject');
		qq({"eventID": "$id", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "$src", )
		  . qq("eventName": "$name", "requestParameters": {"action": "lambda:InvokeFunction", )
		  . qq("principal": "*", "functionName": "f$f"}})
	} 1 .. 100;
	append_to_file(sprintf('%s/trail-%02d.json', $trail, $f),
		'{"Records": [' . join(', ', @records) . ']}');
}
# a lock on the file ledger holds each scan at the end of its first file
# (the inbox batches go on); the helper is started when the worker's
# listing shows more files than one transaction takes
$holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE lambda_detect.ingested_files IN SHARE MODE;');
$node->safe_psql('postgres', qq{
	ALTER SYSTEM SET lambda_detect.inbox_dir = '$trail';
	ALTER SYSTEM SET lambda_detect.file_settle_time = 0;
	ALTER SYSTEM SET lambda_detect.scan_interval = '200ms'});
$node->reload;
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 2 FROM pg_stat_activity
	 WHERE backend_type IN ('lambda_detect worker', 'lambda_detect ingest helper')
	   AND wait_event_type = 'Lock' AND query = 'lambda_detect: scanning inbox_dir'}),
	'a helper scans inbox_dir beside the worker, each reading a file of its own')
  or diag($node->safe_psql('postgres', q{
	SELECT backend_type, wait_event_type, wait_event, query FROM pg_stat_activity
	 WHERE backend_type LIKE 'lambda_detect%'}));
$holder->query_safe('COMMIT;');
$holder->quit;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 80 FROM lambda_detect.ingested_files'),
	'every file is read');
is($node->safe_psql('postgres', q{
	SELECT sum(files) || ' files, ' || sum(events) || ' events, ' || sum(duplicates) || ' duplicates'
	  FROM lambda_detect.ingest_runs WHERE kind = 'files'}),
	'80 files, 8000 events, 0 duplicates', 'each file read once, by one of them');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'file-40-7'"),
	'the attack in a file is alerted');
ok($node->poll_query_until('postgres', "SELECT ($helpers) = 0"),
	'the helper exits once the files are read');

# 4. ingest_helpers = 0: the worker drains alone
$node->safe_psql('postgres', 'ALTER SYSTEM SET lambda_detect.ingest_helpers = 0');
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('lambda_detect.ingest_helpers') = '0'");
$node->safe_psql('postgres', 'TRUNCATE lambda_detect.ingest_runs');
fill_inbox('solo', 10000);
$node->poll_query_until('postgres', 'SELECT count(*) > 1 FROM lambda_detect.ingest_runs')
  or die 'the drain never started';
$holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE lambda_detect.events IN SHARE MODE;');
ok($node->poll_query_until('postgres', blocked('lambda_detect worker')),
	'with ingest_helpers = 0 the worker drains');
is($node->safe_psql('postgres', $helpers), '0', 'alone');
$holder->query_safe('COMMIT;');
$holder->quit;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lambda_detect.inbox'),
	'and drains it all');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'solo-%'"),
	'10000', 'every event of it stored once');

unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated|ERROR:/,
	'no process crashed and no unit failed');
$node->stop;
done_testing();
