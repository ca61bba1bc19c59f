# Crashes in the middle of the work lose and duplicate nothing: kill -9 of
# the worker while it drains a large inbox and while it scans a directory,
# an immediate server stop during ingestion, and kill -9 while a rule run
# waits for its rule (the run is closed out as failed, the next one alerts).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
my $trail = PostgreSQL::Test::Utils::tempdir();
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.naptime = '200ms'
lambda_detect.batch_size = 200
restart_after_crash = on
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');

# a record generator in SQL: prefix-i, with an attack every 1000th
$node->safe_psql('postgres', q{
CREATE FUNCTION crash_rec(prefix text, i int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('eventID', prefix || '-' || i, 'eventTime', '2026-11-01T10:00:00Z',
    'eventSource', CASE WHEN i % 1000 = 0 THEN 'lambda.amazonaws.com' ELSE 'sts.amazonaws.com' END,
    'eventName', CASE WHEN i % 1000 = 0 THEN 'AddPermission20150331v2' ELSE 'AssumeRole' END,
    'awsRegion', 'us-east-1', 'recipientAccountId', '111122223333',
    'userIdentity', jsonb_build_object('type', 'IAMUser', 'arn', 'arn:aws:iam::111122223333:user/u' || (i % 50)),
    'requestParameters', jsonb_build_object('action', 'lambda:InvokeFunction', 'principal', '*',
                                            'functionName', 'f' || i, 'roleSessionName', repeat('x', 400)))
$$;
});

sub worker_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");
}

# Waits for the worker to exist again after a crash restart.
sub wait_for_worker
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'")
	  or die 'the worker did not come back';
}

# 1. kill -9 in the middle of a large inbox drain
$node->safe_psql('postgres',
	"INSERT INTO lambda_detect.inbox (payload) SELECT crash_rec('crash-inbox', i) FROM generate_series(1, 20000) i");
$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM lambda_detect.ingest_runs WHERE kind = 'inbox'")
  or die 'the drain never started';
my $left = $node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.inbox');
ok($left > 0, "the drain was under way when the worker was killed ($left rows left)");
kill 'KILL', worker_pid();
wait_for_worker();
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lambda_detect.inbox'),
	'after the crash the inbox is drained');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'crash-inbox-%'"),
	'20000', 'every submitted event is stored, exactly once');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 20 FROM lambda_detect.alerts WHERE event_id LIKE 'crash-inbox-%'"),
	'every attack in it is alerted once');

# 2. kill -9 in the middle of a directory scan
for my $f (0 .. 39)
{
	my $first = $f * 500 + 1;
	my $last = $first + 499;
	$node->safe_psql('postgres', qq{
		COPY (SELECT jsonb_build_object('Records', jsonb_agg(crash_rec('crash-file', i)))::text
		        FROM generate_series($first, $last) i)
		  TO PROGRAM 'mkdir -p $trail/staging/d && gzip -1 > $trail/staging/d/f$f.json.gz'
		  WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')});
}
# the worker scans alone here: a helper reading half the files beside it
# would often finish the scan before the kill
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.ingest_helpers = 0");
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.inbox_dir = '$trail/in'");
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.file_settle_time = 0");
$node->safe_psql('postgres', "ALTER SYSTEM SET lambda_detect.scan_interval = '200ms'");
mkdir "$trail/in";
$node->reload;
rename("$trail/staging/d", "$trail/in/d") or die "rename: $!";
$node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM lambda_detect.ingested_files')
  or die 'the scan never started';
my $read = $node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.ingested_files');
ok($read < 40, "the scan was under way when the worker was killed ($read of 40 files)");
kill 'KILL', worker_pid();
wait_for_worker();
ok($node->poll_query_until('postgres', 'SELECT count(*) = 40 FROM lambda_detect.ingested_files'),
	'after the crash every file is in the ledger');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'crash-file-%'"),
	'20000', 'every record of every file is stored, exactly once');
is($node->safe_psql('postgres',
		"SELECT coalesce(sum(events), 0) FROM lambda_detect.ingested_files"),
	'20000', 'the ledger counts each file once');

# 3. immediate stop during ingestion
$node->safe_psql('postgres',
	"INSERT INTO lambda_detect.inbox (payload) SELECT crash_rec('crash-stop', i) FROM generate_series(1, 20000) i");
$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM lambda_detect.events WHERE event_id LIKE 'crash-stop-%'")
  or die 'the drain never started';
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM lambda_detect.inbox'),
	'after an immediate stop the inbox is drained');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'crash-stop-%'"),
	'20000', 'every event submitted before the stop is stored, exactly once');

# 4. kill -9 while a rule run waits for its rule
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; SELECT rule FROM lambda_detect.rules FOR UPDATE;');
$node->safe_psql('postgres',
	"INSERT INTO lambda_detect.inbox (payload) SELECT crash_rec('crash-rule', 1000)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM lambda_detect.rule_runs WHERE status = 'running'"),
	'a rule run is under way (waiting for its rule)');
kill 'KILL', worker_pid();
$holder->{run}->kill_kill;	# the crash restart ends every session anyway
wait_for_worker();
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM lambda_detect.rule_runs WHERE status = 'running'"),
	'no run is left running after the restart');
is($node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM lambda_detect.rule_runs WHERE status = 'failed' AND error LIKE 'interrupted%'"),
	't', 'the interrupted run is recorded as failed, with why');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = 'crash-rule-1000'"),
	'the next run creates the alert');

$node->stop;
done_testing();
