# The worker's directory cache (src/dir_cache.c): once every file of a
# directory has been read, the worker's scans skip the directory while it
# is unchanged.  Still read at the next scan: a file added to a known
# directory, a new directory.  A directory holding a file that failed is
# read at every scan, so that a chmod retries the file.  A file rewritten
# in place under the same name is not seen by the quick scans, and is read
# by the full scan that lambda_detect.full_scan_interval schedules.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dircache');
$node->init;
my $trail = $node->basedir . '/trail';
my $day = "$trail/AWSLogs/111111111111/CloudTrail/us-east-1/2026/11";
make_path("$day/01", "$day/02");
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.inbox_dir = '$trail'
lambda_detect.scan_interval = '200ms'
lambda_detect.file_settle_time = 0
lambda_detect.full_scan_interval = '1h'
lambda_detect.ingest_helpers = 0
lambda_detect.naptime = '200ms'
log_min_messages = debug1
));

# a CloudTrail log file holding one record per eventID
sub write_log
{
	my ($path, @ids) = @_;
	my @records = map {
		qq({"eventID": "$_", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "s3.amazonaws.com",)
		  . qq( "eventName": "GetObject", "recipientAccountId": "111111111111"})
	} @ids;
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh '{"Records": [' . join(', ', @records) . ']}';
	close($fh);
}

sub stored
{
	my ($id) = @_;
	return "SELECT count(*) = 1 FROM lambda_detect.events WHERE event_id = '$id'";
}

# waits for n quick scans that read no directory at all, from log offset
sub wait_idle_scans
{
	my ($n, $offset) = @_;
	for (1 .. $n)
	{
		$offset = $node->wait_for_log(
			qr/quick scan of inbox_dir: 0 directories read \(0 now complete\), \d+ skipped unchanged, 0 files listed/,
			$offset);
	}
	return $offset;
}

write_log("$day/01/a.json", 'a1', 'a2');
write_log("$day/02/b.json", 'b1');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');

# 1. everything read, then scans that read no directory
ok($node->poll_query_until('postgres', 'SELECT count(*) = 3 FROM lambda_detect.events'),
	'the files are ingested');
my $offset = wait_idle_scans(1, 0);
pass('once every file is read, a scan skips every directory');

# 2. a file added to a known directory, and a new directory
write_log("$day/01/c.json", 'c1');
ok($node->poll_query_until('postgres', stored('c1')),
	'a file added to a directory already read is read (the new name changed its mtime)');
make_path("$day/03/late");
write_log("$day/03/late/d.json", 'd1');
ok($node->poll_query_until('postgres', stored('d1')),
	'a new directory is read, and the directories below it');
$offset = wait_idle_scans(1, -s $node->logfile);

# 3. a file that cannot be read keeps its directory read until it can be
# (the directory's mtime is set an hour back, so that its age alone would
# let it count as complete at once)
write_log("$day/02/locked.json", 'e1');
chmod(0000, "$day/02/locked.json") or die "chmod: $!";
utime(time, time - 3600, "$day/02") or die "utime: $!";
ok( $node->poll_query_until(
		'postgres', q{SELECT status = 'error' FROM lambda_detect.ingested_files
		               WHERE path LIKE '%/02/locked.json'}),
	'a file that cannot be read is an error in the ledger');
$offset = -s $node->logfile;
for (1 .. 3)
{
	$offset = $node->wait_for_log(
		qr/quick scan of inbox_dir: 1 directories read \(0 now complete\)/, $offset);
}
pass('its directory is read at every scan (it never counts as complete)');
chmod(0644, "$day/02/locked.json") or die "chmod: $!";
ok($node->poll_query_until('postgres', stored('e1')),
	'after a chmod (no change to the directory) the file is retried and read');
$offset = wait_idle_scans(1, -s $node->logfile);

# 4. a file rewritten in place: quick scans do not see it, a full scan does
write_log("$day/01/a.json", 'a1', 'a2', 'a3');
$offset = wait_idle_scans(3, -s $node->logfile);
is($node->safe_psql('postgres', stored('a3')), 'f',
	'quick scans skip a directory whose file was rewritten in place');
$node->safe_psql('postgres', q{ALTER SYSTEM SET lambda_detect.full_scan_interval = '1s'});
$node->reload;
ok($node->poll_query_until('postgres', stored('a3')),
	'the next full scan reads the rewritten file');
ok($node->log_contains(qr/full scan of inbox_dir/, $offset), 'that scan was a full one');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lambda_detect.events'), '7',
	'every event stored once');

# 5. a known subdirectory swapped for a link, the parent's mtime put back:
# the walk of a skipped directory checks each subdirectory with lstat, as a
# listing does, and never follows the link
my $outside = $node->basedir . '/outside';
make_path($outside);
write_log("$outside/x.json", 'x1');
my $old = time - 7200;
utime($old, $old, "$day/03") or die "utime: $!";
$offset = wait_idle_scans(2, -s $node->logfile);
rename("$day/03/late", "$day/03/.late") or die "rename: $!";
symlink($outside, "$day/03/late") or die "symlink: $!";
utime($old, $old, "$day/03") or die "utime: $!";
$offset = wait_idle_scans(3, $offset);
is($node->safe_psql('postgres', stored('x1')), 'f',
	'a subdirectory replaced by a link is not followed by a scan that skips its parent');

$node->stop;
done_testing();
