# Hostile and broken input (issue 7): every item of the corpus in t/corpus
# (listed with its delivery and expected outcome in t/corpus/MANIFEST.tsv),
# and the big and dynamic items made here at run time (a 100 MB string, a
# gzip bomb, 10,000-deep nesting, too many records, a directory named like a
# log file, links out of inbox_dir, a FIFO, an unreadable file and directory,
# files that grow while being read), are delivered to the background worker
# through the inbox table, as files and as JSON lines, each beside good
# records.  Each must end with its reason in ingest_errors or as a counted
# skip, the good records beside it must be stored, and the worker must stay
# up: the same process throughout, no failed unit, no crash in the log.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use IO::Compress::Gzip qw(gzip $GzipError);
use POSIX qw(mkfifo);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $corpus = dirname(__FILE__) . '/corpus';
my $root = PostgreSQL::Test::Utils::tempdir();
my $inbox = "$root/in";
my $stage = "$root/stage";
make_path($inbox, $stage, "$root/outside");

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.naptime = '100ms'
lambda_detect.scan_interval = '100ms'
lambda_detect.file_settle_time = 0
lambda_detect.inbox_dir = '$inbox'
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'")
  or die 'the worker did not start';
my $worker_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");

# --- helpers ---

sub good_record
{
	my ($id) = @_;
	return qq({"eventID": "$id", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "s3.amazonaws.com", )
	  . qq("eventName": "GetObject", "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.10"});
}

# a successful AddPermission granting lambda:InvokeFunction to "*": a seed-rule match
sub attack_record
{
	my ($id) = @_;
	return qq({"eventID": "$id", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "lambda.amazonaws.com", )
	  . qq("eventName": "AddPermission20150331v2", "awsRegion": "us-east-1", "recipientAccountId": "111122223333", )
	  . qq("userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory"}, )
	  . qq("requestParameters": {"action": "lambda:InvokeFunction", "functionName": "payments", )
	  . qq("principal": "*", "statementId": "open"}});
}

sub write_file
{
	my ($path, $bytes) = @_;
	make_path(dirname($path));
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $bytes;
	close $fh or die "$path: $!";
}

sub read_corpus
{
	my ($name) = @_;
	open my $fh, '<:raw', "$corpus/$name" or die "$corpus/$name: $!";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	return $bytes // '';
}

# SQL literal of text that cannot hold the quote's tag
sub dollar_quote
{
	my ($text) = @_;
	die "text holds the quote tag" if $text =~ /\$h5\$/;
	return "\$h5\$$text\$h5\$";
}

sub sql_literal
{
	my ($text) = @_;
	$text =~ s/'/''/g;
	return "'$text'";
}

# Moves a staged tree into inbox_dir at once, as "aws s3 sync" renames a
# finished download, so that the worker never sees a half-written file.
sub land
{
	my ($name) = @_;
	rename("$stage/$name", "$inbox/$name") or die "rename $name: $!";
}

# What became of one delivery, as a line to compare with the expected one:
# its dead letters (distinct SQLSTATE and reason; for a JSON line, only those
# at its line), how many of the good records beside it were stored, and the
# ledger row of its file.
sub outcome_of
{
	my (%d) = @_;
	my $letters =
	  $d{line}
	  ? "string_agg(DISTINCT CASE WHEN location LIKE 'line $d{line}%' THEN '' ELSE 'at ' || coalesce(location, 'file') || ' ' END || sqlstate || ' ' || reason, ', ')"
	  : "string_agg(DISTINCT sqlstate || ' ' || reason, ', ')";
	my $ids = join(', ', map { sql_literal($_) } @{ $d{good} });
	my $ledger =
	  defined $d{path}
	  ? "coalesce((SELECT status || ' skipped ' || skipped FROM lambda_detect.ingested_files WHERE path = "
	  . sql_literal($d{path}) . "), 'none')"
	  : "'-'";
	return $node->safe_psql('postgres', qq{
		SELECT concat_ws('; ',
		  'dead letters ' || coalesce((SELECT $letters FROM lambda_detect.ingest_errors
		                                WHERE source = } . sql_literal($d{source}) . qq{), 'none'),
		  'good kept ' || (SELECT count(*) FROM lambda_detect.events WHERE event_id IN ($ids)),
		  'ledger ' || $ledger)});
}

# The outcome line a delivery should have.
sub expected_outcome
{
	my (%d) = @_;
	my $outcome = $d{outcome};
	my $letters = $outcome =~ /^error (\S+) (\S+)$/ ? "$1 $2" : 'none';
	my $ledger = '-';
	if (defined $d{path})
	{
		my $skipped = $outcome =~ /^skip / ? 1 : 0;
		my $status =
		    $d{line} || $d{good_inside} ? 'ingested'
		  : $skipped ? 'skipped'
		  :            'error';
		$ledger = "$status skipped $skipped";
	}
	return "dead letters $letters; good kept " . scalar(@{ $d{good} }) . "; ledger $ledger";
}

my @deliveries;    # every delivery: what to check once it is ingested
my %skips;         # expected counted skips: {inbox|files}{reason} => n

sub expect
{
	my (%d) = @_;
	push @deliveries, \%d;
	if ($d{outcome} =~ /^skip (\S+)$/)
	{
		$skips{ $d{kind} }{$1} += $d{skip_count} // 1;
	}
}

sub check_deliveries
{
	for my $d (@deliveries)
	{
		next if $d->{checked}++;
		is(outcome_of(%$d), expected_outcome(%$d), "$d->{name} via $d->{via}: $d->{outcome}");
	}
}

# The inbox and every listed file are done with.
sub wait_for_ingestion
{
	my ($files) = @_;
	my $paths = join(', ', map { sql_literal($_) } @$files);
	$node->poll_query_until('postgres', qq{
		SELECT (SELECT count(*) = 0 FROM lambda_detect.inbox)
		   AND (SELECT count(*) FROM lambda_detect.ingested_files WHERE path IN ($paths)) = } . scalar(@$files))
	  or die 'the worker did not finish ingesting';
}

sub worker_is_the_same
{
	my ($when) = @_;
	is($node->safe_psql('postgres', q{
			SELECT string_agg(pid::text, ',') FROM pg_stat_activity
			 WHERE backend_type = 'lambda_detect worker'}),
		$worker_pid, "$when: the worker is the same process");
	is($node->safe_psql('postgres', 'SELECT errors FROM lambda_detect.worker_health'),
		'0', "$when: no unit of the worker failed");
}

# --- 1. the static corpus ---

my @manifest;
open my $mf, '<', "$corpus/MANIFEST.tsv" or die "MANIFEST.tsv: $!";
while (my $line = <$mf>)
{
	chomp $line;
	next if $line =~ /^#/ || $line eq '';
	my ($name, $via, $outcome) = split /\t/, $line;
	die "bad manifest line: $line"
	  unless defined $outcome && $via =~ /^(inbox|file|line)$/
	  && $outcome =~ /^(error \S+ \S+|skip \S+)$/;
	push @manifest, [ $name, $via, $outcome ];
}
close $mf;
opendir my $cd, $corpus or die "$corpus: $!";
my %listed = map { $_->[0] => 1 } @manifest;
my @unlisted = grep { !/^\./ && $_ ne 'MANIFEST.tsv' && !$listed{$_} } readdir $cd;
closedir $cd;
is(join(' ', sort @unlisted), '', 'every file of the corpus is in MANIFEST.tsv');
cmp_ok(scalar(keys %listed), '>=', 40, 'the static corpus holds at least 40 items');

my @inbox_rows;
my @files;
for my $item (@manifest)
{
	my ($name, $via, $outcome) = @$item;
	my $bytes = read_corpus($name);
	(my $tag = $name) =~ s/\W/_/g;
	my %d = (name => $name, via => $via, outcome => $outcome);

	if ($via eq 'inbox')
	{
		my @ids = ("h5-inbox-$tag-before", "h5-inbox-$tag-after");
		push @inbox_rows,
		  [ "h5:$name:before", good_record($ids[0]) ],
		  [ "h5:$name", $bytes ],
		  [ "h5:$name:after", good_record($ids[1]) ];
		expect(%d, kind => 'inbox', source => "h5:$name", good => \@ids);
	}
	elsif ($via eq 'file')
	{
		my @ids = ("h5-file-$tag-a", "h5-file-$tag-z");
		write_file("$stage/file/$tag/a-good.json", good_record($ids[0]) . "\n");
		write_file("$stage/file/$tag/$name", $bytes);
		write_file("$stage/file/$tag/z-good.json", good_record($ids[1]) . "\n");
		push @files, map { "$inbox/file/$tag/$_" } ('a-good.json', $name, 'z-good.json');
		expect(%d, kind => 'files', source => "$inbox/file/$tag/$name",
			path => "$inbox/file/$tag/$name", good => \@ids);
	}
	else
	{
		my @ids = ("h5-line-$tag-1", "h5-line-$tag-3");
		(my $one = $bytes) =~ s/\n\z//;
		die "$name is not one line" if $one =~ /\n/;
		write_file("$stage/line/$tag.jsonl",
			good_record($ids[0]) . "\n" . $one . "\n" . good_record($ids[1]) . "\n");
		push @files, "$inbox/line/$tag.jsonl";
		expect(%d, kind => 'files', source => "$inbox/line/$tag.jsonl",
			path => "$inbox/line/$tag.jsonl", line => 2, good => \@ids);
	}
}
# an attack beside the corpus, in the inbox and in a file: the rules still run
write_file("$stage/file/attack.json", attack_record('h5-attack-file') . "\n");
push @files, "$inbox/file/attack.json";
push @inbox_rows, [ 'h5:attack', attack_record('h5-attack-inbox') ];

land('file');
land('line');
$node->safe_psql('postgres',
	"INSERT INTO lambda_detect.inbox (source, payload) VALUES\n"
	  . join(",\n",
		map { '(' . sql_literal($_->[0]) . ', ' . dollar_quote($_->[1]) . '::jsonb)' } @inbox_rows));
wait_for_ingestion(\@files);
check_deliveries();
ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 2 FROM lambda_detect.alerts
		 WHERE event_id IN ('h5-attack-inbox', 'h5-attack-file')}),
	'the attacks delivered beside the corpus are alerted');
worker_is_the_same('after the static corpus');

# --- 2. big and dynamic items, made here ---

my @dyn_files;

# Good sibling files around a dynamic item in directory $dir of the stage.
sub siblings
{
	my ($dir, $tag) = @_;
	my @ids = ("h5-dyn-$tag-a", "h5-dyn-$tag-z");
	write_file("$stage/dyn/$dir/a-good.json", good_record($ids[0]) . "\n");
	write_file("$stage/dyn/$dir/z-good.json", good_record($ids[1]) . "\n");
	push @dyn_files, "$inbox/dyn/$dir/a-good.json", "$inbox/dyn/$dir/z-good.json";
	return \@ids;
}

# a 100 MB string (as eventID) between two good records of one log file,
# in a file and in an inbox row built by the server
{
	my $huge = 'x' x (100 * 1024 * 1024);
	write_file("$stage/dyn/huge/huge_string.json",
		'{"Records": [' . good_record('h5-huge-file-1') . ', '
		  . qq({"eventID": "$huge", "eventTime": "2026-11-01T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject"}, )
		  . good_record('h5-huge-file-3') . ']}');
	push @dyn_files, "$inbox/dyn/huge/huge_string.json";
	expect(name => '100 MB string', via => 'file', kind => 'files',
		outcome => 'error 22001 field_too_long', source => "$inbox/dyn/huge/huge_string.json",
		path => "$inbox/dyn/huge/huge_string.json", good_inside => 1,
		good => [ 'h5-huge-file-1', 'h5-huge-file-3' ]);
}
my @dyn_inbox = (
	q{('h5:huge', jsonb_build_object('Records', jsonb_build_array(}
	  . dollar_quote(good_record('h5-huge-inbox-1')) . q{::jsonb,
	    jsonb_build_object('eventID', repeat('x', 100 * 1024 * 1024), 'eventTime', '2026-11-01T10:00:00Z',
	                       'eventSource', 's3.amazonaws.com', 'eventName', 'GetObject'), }
	  . dollar_quote(good_record('h5-huge-inbox-3')) . q{::jsonb)))});
expect(name => '100 MB string', via => 'inbox', kind => 'inbox',
	outcome => 'error 22001 field_too_long', source => 'h5:huge',
	good => [ 'h5-huge-inbox-1', 'h5-huge-inbox-3' ]);

# a gzip bomb: 1 GiB of zeros in 64 gzip members of 16 MiB, 1 MB on disk;
# inflating stops at lambda_detect.max_payload_size (128 MB)
{
	my $zeros = "\0" x (16 * 1024 * 1024);
	my $member;
	gzip(\$zeros => \$member) or die $GzipError;
	my $ids = siblings('bomb', 'bomb');
	write_file("$stage/dyn/bomb/bomb.json.gz", $member x 64);
	push @dyn_files, "$inbox/dyn/bomb/bomb.json.gz";
	expect(name => 'gzip bomb (1 GiB of zeros)', via => 'file', kind => 'files',
		outcome => 'error 54000 too_large', source => "$inbox/dyn/bomb/bomb.json.gz",
		path => "$inbox/dyn/bomb/bomb.json.gz", good => $ids);
}

# 10,000-deep nesting: a whole file, a JSON line, an element of Records
{
	my $deep = ('[' x 10000) . (']' x 10000);
	my $ids = siblings('deep', 'deep');
	write_file("$stage/dyn/deep/deep.json", $deep);
	push @dyn_files, "$inbox/dyn/deep/deep.json";
	expect(name => '10,000-deep nesting', via => 'file', kind => 'files',
		outcome => 'error 54000 too_deep', source => "$inbox/dyn/deep/deep.json",
		path => "$inbox/dyn/deep/deep.json", good => $ids);

	write_file("$stage/dyn/deep_lines/deep.jsonl",
		good_record('h5-deep-line-1') . "\n$deep\n" . good_record('h5-deep-line-3') . "\n");
	push @dyn_files, "$inbox/dyn/deep_lines/deep.jsonl";
	expect(name => '10,000-deep nesting', via => 'line', kind => 'files',
		outcome => 'error 54000 too_deep', source => "$inbox/dyn/deep_lines/deep.jsonl",
		path => "$inbox/dyn/deep_lines/deep.jsonl", line => 2,
		good => [ 'h5-deep-line-1', 'h5-deep-line-3' ]);

	push @dyn_inbox,
	  "('h5:deep', " . dollar_quote('{"Records": [' . good_record('h5-deep-inbox-1') . ", $deep, "
		  . good_record('h5-deep-inbox-3') . ']}') . '::jsonb)';
	expect(name => '10,000-deep nesting', via => 'inbox', kind => 'inbox',
		outcome => 'error 42804 not_cloudtrail', source => 'h5:deep',
		good => [ 'h5-deep-inbox-1', 'h5-deep-inbox-3' ]);
}

# more records than lambda_detect.max_records (100000): rejected whole
{
	my $many = '{"Records": [' . join(', ', ('{}') x 100001) . ']}';
	my $ids = siblings('many', 'many');
	write_file("$stage/dyn/many/many.json", $many);
	push @dyn_files, "$inbox/dyn/many/many.json";
	expect(name => '100,001 records', via => 'file', kind => 'files',
		outcome => 'error 54000 too_many_records', source => "$inbox/dyn/many/many.json",
		path => "$inbox/dyn/many/many.json", good => $ids);

	push @dyn_inbox,
	  q{('h5:many:before', } . dollar_quote(good_record('h5-many-inbox-before')) . '::jsonb)',
	  q{('h5:many', (SELECT jsonb_build_object('Records', jsonb_agg('{}'::jsonb)) FROM generate_series(1, 100001)))},
	  q{('h5:many:after', } . dollar_quote(good_record('h5-many-inbox-after')) . '::jsonb)';
	expect(name => '100,001 records', via => 'inbox', kind => 'inbox',
		outcome => 'error 54000 too_many_records', source => 'h5:many',
		good => [ 'h5-many-inbox-before', 'h5-many-inbox-after' ]);
}

# a directory named like a log file: skipped and counted; its contents are read
{
	my $ids = siblings('dir', 'dir');
	write_file("$stage/dyn/dir/x.json.gz/inner.json", good_record('h5-dir-inner') . "\n");
	push @dyn_files, "$inbox/dyn/dir/x.json.gz", "$inbox/dyn/dir/x.json.gz/inner.json";
	expect(name => 'a directory named x.json.gz', via => 'file', kind => 'files',
		outcome => 'skip not_regular_file', source => "$inbox/dyn/dir/x.json.gz",
		path => "$inbox/dyn/dir/x.json.gz", good => [ @$ids, 'h5-dir-inner' ]);
}

# symbolic links: one to a good log file outside inbox_dir (never followed:
# its event must not be stored), one to nothing
{
	write_file("$root/outside/trap.json", good_record('h5-outside-trap') . "\n");
	my $ids = siblings('links', 'links');
	symlink("$root/outside/trap.json", "$stage/dyn/links/outside.json") or die "symlink: $!";
	symlink("$root/nowhere.json.gz", "$stage/dyn/links/dangling.json.gz") or die "symlink: $!";
	push @dyn_files, "$inbox/dyn/links/outside.json", "$inbox/dyn/links/dangling.json.gz";
	expect(name => 'a symbolic link out of inbox_dir', via => 'file', kind => 'files',
		outcome => 'skip not_regular_file', source => "$inbox/dyn/links/outside.json",
		path => "$inbox/dyn/links/outside.json", good => $ids);
	expect(name => 'a dangling symbolic link', via => 'file', kind => 'files',
		outcome => 'skip not_regular_file', source => "$inbox/dyn/links/dangling.json.gz",
		path => "$inbox/dyn/links/dangling.json.gz", good => $ids);
}

# a FIFO named like a log file: opening it would block the worker for ever
{
	my $ids = siblings('fifo', 'fifo');
	mkfifo("$stage/dyn/fifo/pipe.jsonl", 0600) or die "mkfifo: $!";
	push @dyn_files, "$inbox/dyn/fifo/pipe.jsonl";
	expect(name => 'a FIFO named pipe.jsonl', via => 'file', kind => 'files',
		outcome => 'skip not_regular_file', source => "$inbox/dyn/fifo/pipe.jsonl",
		path => "$inbox/dyn/fifo/pipe.jsonl", good => $ids);
}

# an unreadable file (mode 000) and an unreadable directory; the worker runs
# as their owner, not as root, so the modes hold
{
	my $ids = siblings('unreadable', 'unreadable');
	write_file("$stage/dyn/unreadable/locked.json", good_record('h5-locked-file') . "\n");
	chmod(0000, "$stage/dyn/unreadable/locked.json") or die "chmod: $!";
	push @dyn_files, "$inbox/dyn/unreadable/locked.json";
	expect(name => 'an unreadable file (mode 000)', via => 'file', kind => 'files',
		outcome => 'error 42501 unreadable_file', source => "$inbox/dyn/unreadable/locked.json",
		path => "$inbox/dyn/unreadable/locked.json", good => $ids);

	write_file("$stage/dyn/unreadable/locked_dir/inside.json", good_record('h5-locked-dir') . "\n");
	chmod(0000, "$stage/dyn/unreadable/locked_dir") or die "chmod: $!";
	push @dyn_files, "$inbox/dyn/unreadable/locked_dir";
	expect(name => 'an unreadable directory (mode 000)', via => 'file', kind => 'files',
		outcome => 'error 58030 unreadable_directory', source => "$inbox/dyn/unreadable/locked_dir",
		path => "$inbox/dyn/unreadable/locked_dir", good => $ids);
}

land('dyn');
$node->safe_psql('postgres',
	"INSERT INTO lambda_detect.inbox (source, payload) VALUES\n" . join(",\n", @dyn_inbox));
wait_for_ingestion(\@dyn_files);
check_deliveries();
is($node->safe_psql('postgres',
		"SELECT count(*) FROM lambda_detect.events WHERE event_id IN ('h5-outside-trap', 'h5-locked-file', 'h5-locked-dir')"),
	'0', 'nothing was read through a link, from the unreadable file or from the unreadable directory');
worker_is_the_same('after the big and dynamic items');

# --- 3. files that grow while being read ---
#
# The worker lists grow/a.jsonl and grow/b.jsonl, reads a.jsonl and blocks
# storing it, on an uncommitted event of ours with the same key (eventID and
# eventTime).  Then both files grow: a.jsonl after the worker read it,
# b.jsonl after it was listed but before it is opened.  Neither may be
# half-read or dead-lettered: a.jsonl is stored as read and read again
# because it changed; b.jsonl is left for the next scan, which reads it
# whole.
my $holder = $node->background_psql('postgres');
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid();');
$holder->query_safe(q{BEGIN;
	INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
	VALUES ('h5-grow-a-1', '2026-11-01T10:00:00Z', 's3.amazonaws.com', 'GetObject', 'success', '{}');});
write_file("$stage/grow/a.jsonl", good_record('h5-grow-a-1') . "\n" . good_record('h5-grow-a-2') . "\n");
write_file("$stage/grow/b.jsonl", good_record('h5-grow-b-1') . "\n");
land('grow');
ok($node->poll_query_until('postgres', qq{
		SELECT pg_blocking_pids(pid) = ARRAY[$holder_pid] FROM pg_stat_activity
		 WHERE backend_type = 'lambda_detect worker'}),
	'the worker waits for our event, storing a.jsonl');

sub append_line
{
	my ($path, $line) = @_;
	open my $fh, '>>', $path or die "$path: $!";
	print $fh "$line\n";
	close $fh or die "$path: $!";
}
append_line("$inbox/grow/a.jsonl", good_record('h5-grow-a-3'));
append_line("$inbox/grow/b.jsonl", good_record('h5-grow-b-2'));
$holder->query_safe('ROLLBACK;');
$holder->quit;

ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 2 FROM lambda_detect.ingested_files
		 WHERE path LIKE '%/grow/_.jsonl' AND documents = 3 - (path LIKE '%/b.jsonl')::int}),
	'both grown files are read again, whole');
is($node->safe_psql('postgres', q{
		SELECT string_agg(regexp_replace(path, '.*/', '') || ' ' || status || ' documents ' || documents
		                  || ' events ' || events || ' duplicates ' || duplicates, '; ' ORDER BY path)
		  FROM lambda_detect.ingested_files WHERE path LIKE '%/grow/%'}),
	'a.jsonl ingested documents 3 events 1 duplicates 2; b.jsonl ingested documents 2 events 2 duplicates 0',
	'a.jsonl was stored as first read, then re-read; b.jsonl was read only once it was whole');
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'h5-grow-%'}),
	'5', 'every line of the grown files is stored');
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM lambda_detect.ingest_errors WHERE source LIKE '%/grow/%'}),
	'0', 'no part of a grown file was dead-lettered');

# --- counted skips, the worker, the log ---

for my $kind ('inbox', 'files')
{
	my $want = join(', ', map { "$_ $skips{$kind}{$_}" } sort keys %{ $skips{$kind} });
	is($node->safe_psql('postgres', qq{
			SELECT string_agg(r || ' ' || n, ', ' ORDER BY r) FROM
			  (SELECT r, sum(n::int) AS n FROM lambda_detect.ingest_runs, jsonb_each_text(skipped_reasons) AS s(r, n)
			    WHERE kind = '$kind' GROUP BY r) x}),
		$want, "the skips of $kind ingestion are counted by reason");
}
worker_is_the_same('at the end');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|exited with exit code|was terminated|PANIC|server process .* crashed/,
	'no server process crashed or exited');
unlike($log, qr/\[$worker_pid\] (ERROR|FATAL)/, 'the worker logged no error');
$node->stop;

# the test's tempdir is removed by the framework; give it back the modes it needs
chmod(0700, "$inbox/dyn/unreadable/locked_dir");
done_testing();
