# lambda-detect-listen for real: alerts inserted while its connection is
# killed and while the server restarts all arrive exactly once and in order;
# SIGTERM ends it cleanly; the state file makes a restart resume after the
# last delivered alert; --exec retries a failing command without delivering
# twice; setup errors exit 1 with a clear message.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(usleep);

my $appname = 'lambda_detect_listen_tap';

my $node = PostgreSQL::Test::Cluster->new('listen');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.run_rules = off
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');
$node->safe_psql('postgres', 'CREATE DATABASE noext');
$node->safe_psql('postgres', 'CREATE ROLE tap_nobody LOGIN');

my $bin = $node->config_data('--bindir') . '/lambda-detect-listen';
ok(-x $bin, "the client is installed in the server's bindir ($bin)")
  or BAIL_OUT('lambda-detect-listen is not installed: run make install');

my $dir = PostgreSQL::Test::Utils::tempdir;
my $connstr = $node->connstr('postgres');

# Inserts n alerts tagged tag; returns their ids in order.
sub insert_alerts
{
	my ($tag, $n) = @_;
	my $ids = $node->safe_psql('postgres', qq{
		INSERT INTO lambda_detect.alerts (rule, rule_version, event_id, event_time, ingested_at,
		                                  severity, risk_score, reason, event_name)
		SELECT 'lambda-public-invocation', 1, '$tag-' || g, now(), now(), 'medium', 47,
		       'tap listener', 'AddPermission20150331v2'
		  FROM generate_series(1, $n) g
		RETURNING alert_id});
	return sort { $a <=> $b } split /\n/, $ids;
}

sub lines_of
{
	my ($file) = @_;
	return () unless -e $file;
	open my $fh, '<', $file or die "could not read $file: $!";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	return @lines;
}

# Bounded poll: until the file has at least n lines (or the timeout passes).
sub wait_for_lines
{
	my ($file, $n) = @_;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		my @lines = lines_of($file);
		return @lines if @lines >= $n;
		usleep(100_000);
	}
	return lines_of($file);
}

sub wait_for_file
{
	my ($file) = @_;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		return 1 if -s $file;
		usleep(100_000);
	}
	return 0;
}

sub ids_of
{
	return map { decode_json($_)->{alert_id} } @_;
}

# Starts the client in the background, standard output and error to files.
sub start_client
{
	my ($out, $err, @args) = @_;
	local $ENV{PGAPPNAME} = $appname;
	my $timer = IPC::Run::timeout(10 * $PostgreSQL::Test::Utils::timeout_default);
	my $h = IPC::Run::start([ $bin, @args ], '<', \undef, '>', $out, '2>', $err, $timer);
	return ($h, $timer);
}

# SIGTERM, then wait (bounded) for the exit; returns the raw wait status.
sub stop_client
{
	my ($h, $timer) = @_;
	$timer->start(30);
	$h->signal('TERM');
	$h->finish;
	return $h->full_result(0);
}

sub client_backend_pid
{
	my $pid;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		$pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE application_name = '$appname'");
		return $pid if $pid =~ /^\d+$/;
		usleep(100_000);
	}
	return undef;
}

# 1. delivery across a killed connection and a server restart
my $state = "$dir/listen.state";
my $out1 = "$dir/out1.jsonl";
my ($client, $timer) = start_client($out1, "$dir/err1", '--state-file', $state, $connstr);

my @expected = insert_alerts('before', 3);
my @lines = wait_for_lines($out1, 3);
is_deeply([ ids_of(@lines) ], \@expected, 'alerts inserted while it listens are delivered in order');
my $first = decode_json($lines[0]);
is($first->{event_id}, 'before-1', 'each line is the alert row as JSON');
ok(exists $first->{status} && exists $first->{resolution} && exists $first->{reason},
	'with every column of the row, not only the NOTIFY payload');

my $pid = client_backend_pid();
ok(defined $pid, 'its backend is found by application_name');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'its backend is terminated');
push @expected, insert_alerts('away', 2);
@lines = wait_for_lines($out1, 5);
is_deeply([ ids_of(@lines) ], \@expected,
	'alerts inserted while its connection was gone arrive after it reconnects');
isnt(client_backend_pid(), $pid, 'it reconnected with a new backend');

$node->restart;
push @expected, insert_alerts('restarted', 2);
@lines = wait_for_lines($out1, 7);
is_deeply([ ids_of(@lines) ], \@expected,
	'alerts inserted after a server restart arrive: every alert exactly once, in order');

is(stop_client($client, $timer), 0, 'SIGTERM ends it with exit status 0');
note("client messages:\n" . slurp_file("$dir/err1"));
@lines = lines_of($out1);
is(scalar(@lines), 7, 'nothing more was printed');
is(slurp_file($state), "$expected[-1]\n", 'the state file holds the last delivered alert id');
like(slurp_file("$dir/err1"), qr/reconnecting in \d+ s/, 'it said it was reconnecting');
like(slurp_file("$dir/err1"), qr/stopped after delivering 7 alerts/, 'and what it did when stopped');

# 2. a restart with the same state file delivers only what came after
my @later = insert_alerts('stopped', 2);
my $out2 = "$dir/out2.jsonl";
($client, $timer) = start_client($out2, "$dir/err2", '--state-file', $state, $connstr);
@lines = wait_for_lines($out2, 2);
push @later, insert_alerts('resumed', 1);
@lines = wait_for_lines($out2, 3);
is_deeply([ ids_of(@lines) ], \@later,
	'restarted with its state file, it delivers only the alerts after the last one, in order');
is(stop_client($client, $timer), 0, 'and stops cleanly again');
is(scalar(lines_of($out2)), 3, 'without repeating any');

# 3. --exec: a command that fails twice, then succeeds
my $hook = "$dir/hook.sh";
open my $fh, '>', $hook or die $!;
print $fh <<'SH';
n=$(cat "$1/counter" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$1/counter"
echo "$LAMBDA_DETECT_ALERT_ID" >> "$1/attempts"
if [ "$n" -le 2 ]; then exit 1; fi
cat >> "$1/delivered"
SH
close $fh;
my $exec_state = "$dir/exec.state";
($client, $timer) = start_client("$dir/out3", "$dir/err3", '--from-now', '--count', '3',
	'--state-file', $exec_state, '--exec', "sh '$hook' '$dir'", $connstr);
ok(wait_for_file($exec_state), 'with --from-now it starts after the newest alert');
is(slurp_file($exec_state), "$later[-1]\n", 'which its new state file records');
my @hooked = insert_alerts('exec', 3);
$timer->start(60);
$client->finish;
is($client->full_result(0), 0, 'it exits 0 once --count alerts are delivered');
is_deeply([ lines_of("$dir/attempts") ], [ $hooked[0], $hooked[0], $hooked[0], $hooked[1], $hooked[2] ],
	'the failing command was retried for the same alert until it succeeded, then the next ones ran once');
is_deeply([ ids_of(lines_of("$dir/delivered")) ], \@hooked,
	'each alert reached the command exactly once, in order, as JSON on its standard input');
note("client messages:\n" . slurp_file("$dir/err3"));
like(slurp_file("$dir/err3"), qr/alert $hooked[0]: command exited with status 1/, 'the failures were reported');
is(slurp_file($exec_state), "$hooked[-1]\n", 'the state file holds the last alert the command took');

# a command that keeps failing: exit 3, the alert is not marked delivered
my $fail_state = "$dir/fail.state";
PostgreSQL::Test::Utils::append_to_file($fail_state, "$hooked[-1]\n");
my @stuck = insert_alerts('stuck', 1);
{
	local $ENV{PGAPPNAME} = $appname;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ $bin, '--state-file', $fail_state, '--max-retries', '1', '--exec', 'exit 7', $connstr ],
		'<', \undef, '>', \$stdout, '2>', \$stderr, IPC::Run::timeout(60));
	is($? >> 8, 3, 'a command that keeps failing stops the client with exit status 3');
	like($stderr, qr/alert $stuck[0] could not be delivered: --exec failed 2 times/,
		'saying which alert could not be delivered');
	is(slurp_file($fail_state), "$hooked[-1]\n", 'and that alert is not marked delivered');
}

# 4. setup errors: exit 1 and a message that says what to do
sub run_client
{
	my @args = @_;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ $bin, @args ], '<', \undef, '>', \$stdout, '2>', \$stderr, IPC::Run::timeout(60));
	return ($? >> 8, $stderr);
}
my ($rc, $err) = run_client('this is not a conninfo');
is($rc, 1, 'a connection string that cannot be parsed exits 1');
like($err, qr/invalid connection string: missing "=" after "this"/, 'with libpq\'s reason');
($rc, $err) = run_client($node->connstr('noext'));
is($rc, 1, 'a database without the extension exits 1');
like($err, qr/the lambda_detect extension is not installed in this database/, 'saying so');
like($err, qr/hint: run CREATE EXTENSION lambda_detect, or connect to the database that has it/,
	'with the hint');
($rc, $err) = run_client($connstr . ' user=tap_nobody');
is($rc, 1, 'a role without privileges exits 1');
like($err, qr/permission denied for schema lambda_detect.*hint: grant this role USAGE on schema lambda_detect and SELECT on lambda_detect\.alerts/s,
	'with the grants it needs');
($rc, $err) = run_client('--count', '0', $connstr);
is($rc, 64, 'bad usage exits 64');

$node->stop;
done_testing();
