# Two batches storing the same two events at once, met in opposite orders:
# with the worker's ingest helpers, batches run side by side all the time,
# and ON CONFLICT waits for a concurrent inserter of the same key, so two
# batches inserting the same events in opposite orders would deadlock.  A
# trigger holds batch A between its two events until batch B has stored its
# first and waits; each batch inserts in key order, so B waits for A's first
# event, not the other way round, and both complete.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('batches');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.run_rules = off
));
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION lambda_detect;
	-- batch A stops before storing event dl-y until the test lets it go
	CREATE FUNCTION public.hold_before_y() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.event_id = 'dl-y' AND current_setting('application_name') = 'batch_a' THEN
			PERFORM pg_advisory_lock(4242);
			PERFORM pg_advisory_unlock(4242);
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER hold_before_y BEFORE INSERT ON lambda_detect.events
		FOR EACH ROW EXECUTE FUNCTION public.hold_before_y();
});

sub record
{
	my ($id) = @_;
	return qq({"eventID": "$id", "eventTime": "2026-11-01T10:00:00Z", )
	  . qq("eventSource": "s3.amazonaws.com", "eventName": "GetObject"});
}
my ($x, $y) = (record('dl-x'), record('dl-y'));

my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(4242)');

# A: x then y, in its own transaction; it stores x and stops before y
my $a = $node->background_psql('postgres');
$a->query_safe("SET application_name = 'batch_a'; BEGIN;");
$a->query_safe("INSERT INTO lambda_detect.inbox (payload) VALUES ('[$x, $y]')");
$a->query_until(qr/a_started/,
	"\\echo a_started\nSELECT events FROM lambda_detect.ingest_now();\n\\echo a_done\n");
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE application_name = 'batch_a' AND wait_event = 'advisory'})
  or die 'batch A did not reach its second event';

# B: y then x; it waits for A on an event both hold
my $b = $node->background_psql('postgres');
$b->query_safe("SET application_name = 'batch_b'; BEGIN;");
$b->query_safe("INSERT INTO lambda_detect.inbox (payload) VALUES ('[$y, $x]')");
$b->query_until(qr/b_started/,
	"\\echo b_started\nSELECT events FROM lambda_detect.ingest_now();\n\\echo b_done\n");
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE application_name = 'batch_b' AND wait_event = 'transactionid'}),
	'batch B waits for batch A on an event both are storing');

my $log_start = -s $node->logfile;
$gate->query_safe('SELECT pg_advisory_unlock(4242)');
# A goes on to y, which B has not stored: A completes, storing both
like($a->query_until(qr/a_done/, ''), qr/^2$/m, 'batch A completes, storing both events');
$a->query_safe('COMMIT;');
like($b->query_until(qr/b_done/, ''), qr/^0$/m, 'then batch B, finding both stored');
$b->query_safe('COMMIT;');
unlike(slurp_file($node->logfile, $log_start), qr/deadlock detected/, 'without a deadlock');
is($node->safe_psql('postgres', q{
	SELECT string_agg(event_id, ',' ORDER BY event_id) FROM lambda_detect.events}),
	'dl-x,dl-y', 'each event stored once');
is($node->safe_psql('postgres', q{
	SELECT sum(events) || ' stored, ' || sum(duplicates) || ' duplicates' FROM lambda_detect.ingest_runs}),
	'2 stored, 2 duplicates', 'and counted once: B found both stored by A');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.ingest_errors'), '0',
	'nothing dead-lettered');

$a->quit;
$b->quit;
$gate->quit;
$node->stop;
done_testing();
