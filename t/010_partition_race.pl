# maintain() moves late events out of events_default into the partition it
# makes for their day.  A statement running at the same moment must still
# see each moved row exactly once: PostgreSQL's ATTACH PARTITION lets
# statements planned before it run after it, which would miss the rows, so
# create_event_partition() takes an exclusive lock on events for the step.
# Without that lock, readers racing the move missed their row 17 times in
# 30 rounds of this test.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('race');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.run_rules = off
lambda_detect.maintenance_interval = 0
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');

my $rounds = 20;
my $missed = 0;
my $seen_twice = 0;
for my $round (1 .. $rounds)
{
	my $days = $round + 5;
	# the row, and 5,000 more of its day so that the move takes a while
	$node->safe_psql('postgres', qq{
		INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
		SELECT CASE WHEN g = 0 THEN 'race-$round' ELSE 'filler-$round-' || g END,
		       now() - interval '$days days', 'sts.amazonaws.com', 'AssumeRole', 'success', '{}'
		  FROM generate_series(0, 5000) g});

	# a reader counting the row, 200 times in a row, while the row moves
	my $script = join('', map { "SELECT count(*) FROM lambda_detect.events WHERE event_id = 'race-$round';\n" } 1 .. 200);
	my ($out, $err) = ('', '');
	my $reader = IPC::Run::start(
		[ 'psql', '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres') ],
		'<', \$script, '>', \$out, '2>', \$err);
	# the move starts once the reader is reading
	$reader->pump until $out ne '' || !$reader->pumpable;
	$node->safe_psql('postgres',
		"SELECT lambda_detect.create_event_partition(now() - interval '$days days')");
	$reader->finish;
	is($err, '', "round $round: the reader ran without error");
	my @counts = split /\n/, $out;
	$missed += grep { $_ eq '0' } @counts;
	$seen_twice += grep { $_ ne '0' && $_ ne '1' } @counts;
}
is($missed, 0, "no reader missed a row moved out of events_default ($rounds rounds)");
is($seen_twice, 0, 'no reader saw a moved row twice');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM lambda_detect.events WHERE tableoid = 'lambda_detect.events_default'::regclass"),
	'0', 'every row was moved into its partition');

done_testing();
