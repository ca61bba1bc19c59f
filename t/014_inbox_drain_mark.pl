# The worker's inbox drain starts each batch after the last row it claimed
# (ingest_unit in src/worker.c).  Part 1: while another session holds an
# old snapshot, the rows earlier batches deleted stay in the inbox's index;
# the drain does not read them again for every batch.  Index entries read
# stay a few per row: 2 per row claimed, plus each drain that starts from
# the first id (at most one a second, one after the last batch, each idle
# wake-up while the snapshot is held) reading every deleted row once; with
# every batch of 50 searching from the first id, these 6,000 rows cost
# about 60 per row, and as much again when the plan read the id range in
# full.  Part 2: a row whose transaction commits
# after the drain has passed its id is still stored, and while a backlog
# keeps every batch full, not only once the backlog is gone: the drain
# starts again from the first id at least every second.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('drain');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.run_rules = off
lambda_detect.ingest_helpers = 0
lambda_detect.naptime = '200ms'
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');

# inbox rows $from..$to, one small event each, in one statement
sub fill_inbox
{
	my ($prefix, $from, $to) = @_;
	$node->safe_psql('postgres', qq{
	INSERT INTO lambda_detect.inbox (payload)
	SELECT jsonb_build_object('eventID', '$prefix-' || i, 'eventTime', '2026-11-01T10:00:00Z',
	         'eventSource', 's3.amazonaws.com', 'eventName', 'GetObject')
	  FROM generate_series($from, $to) i});
}

sub stored
{
	my ($prefix) = @_;
	return "(SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE '$prefix-%')";
}

my $entries_read = q{(SELECT idx_tup_read FROM pg_stat_user_indexes
                      WHERE indexrelid = 'lambda_detect.inbox_pkey'::regclass)};

# --- part 1: an old snapshot held while the worker drains 3,000 rows ------
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET lambda_detect.batch_size = 50;
	SELECT pg_reload_conf();});
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM lambda_detect.inbox;');
my $read_before = $node->safe_psql('postgres', "SELECT $entries_read");

fill_inbox('snap', 1, 6000);
ok($node->poll_query_until('postgres', "SELECT " . stored('snap') . " = 6000"),
	'the worker drains 6,000 rows while a session holds an old snapshot');
$holder->query_safe('COMMIT;');
$holder->quit;
# the worker's statistics reach the server within a second or so
ok($node->poll_query_until('postgres', "SELECT $entries_read - $read_before >= 12000"),
	"the drain's reads of the inbox index are counted");
my $read = $node->safe_psql('postgres', "SELECT $entries_read - $read_before");
cmp_ok($read, '<=', 15 * 6000,
	"the drain read at most 15 index entries per row ($read), not the deleted rows again for every batch");

# --- part 2: a row committed late, below the drain's mark -----------------
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET lambda_detect.batch_size = 25;
	SELECT pg_reload_conf();});
my $late = $node->background_psql('postgres');
$late->query_safe('BEGIN;');
$late->query_safe(q{INSERT INTO lambda_detect.inbox (payload) VALUES
	('{"eventID": "late-1", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject"}')});
my $runs_before = $node->safe_psql('postgres',
	"SELECT coalesce(max(id), 0) FROM lambda_detect.ingest_runs");

# a backlog of 100,000 rows, whose ids are all above the late row's
fill_inbox('backlog', 1, 100000);
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) >= 3 FROM lambda_detect.ingest_runs
	 WHERE id > $runs_before AND kind = 'inbox' AND inbox_rows = 25}),
	'the worker drains the backlog in full batches, past the uncommitted row');
$late->query_safe('COMMIT;');
$late->quit;

ok($node->poll_query_until('postgres', "SELECT " . stored('late') . " = 1"),
	'the row committed after the drain passed its id is stored');
ok($node->poll_query_until('postgres', "SELECT " . stored('backlog') . " = 100000"),
	'and the whole backlog');
is($node->safe_psql('postgres', q{
	SELECT (SELECT ingested_at FROM lambda_detect.events WHERE event_id = 'late-1')
	       < (SELECT max(ingested_at) FROM lambda_detect.events WHERE event_id LIKE 'backlog-%')}),
	't', 'the late row was stored while the backlog was still being drained');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.inbox'), '0',
	'the inbox is empty');

$node->stop;
done_testing();
