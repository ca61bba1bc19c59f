# What the server log and NOTIFY carry (issue 7: "NOTIFY payloads and log
# lines carry no secrets beyond what the alert row shows to its readers").
#
# Records with a marker in every field, and input that fails in each way the
# worker meets (a JSON token that does not parse, in a file and in a line of
# JSON lines; fields too long to index; a wrong type and an impossible time;
# a duplicate; a batch that a CHECK constraint and a trigger refuse in part,
# redone row by row; batches refused whole, so that the unit fails; a rule run
# that fails on its alert), go through the background worker, and
# ingest_now() and run_rule() fail the same ways for a SQL caller.  The
# marker must never reach the server log, which names ids, counts and
# SQLSTATEs instead, while the SQL caller still sees the whole error and the
# dead letters and rule runs keep it for the roles granted them.  The NOTIFY
# payload by default (full) carries fields of the alert row, as the design's
# contract has it; this server is configured as the docs advise where roles
# that may not read alerts can connect (lambda_detect.notify_payload =
# minimal): a role with no grant at all that LISTENs then receives each
# alert's id and rule, nothing of its event, while a superuser's session may
# still choose full.
use strict;
use warnings;
use File::Path qw(make_path);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# one JSON token, so that a parse error quotes it whole
my $marker = 'SECRET_MARKER_7f3a9e1c';
my $json = JSON::PP->new->canonical;
my $inbox = PostgreSQL::Test::Utils::tempdir() . '/in';
make_path($inbox);

my $node = PostgreSQL::Test::Cluster->new('secrets');
$node->init;
# log_statement = none: the test's own statements carry the marker, and only
# what the server says of them is looked at; verbose: every field of every report
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'lambda_detect'
lambda_detect.notify_payload = minimal
lambda_detect.naptime = '100ms'
lambda_detect.scan_interval = '100ms'
lambda_detect.file_settle_time = 0
lambda_detect.inbox_dir = '$inbox'
log_statement = none
log_error_verbosity = verbose
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION lambda_detect');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'")
  or die 'the worker did not start';
my $worker_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'");

# --- helpers ---

# A CloudTrail record with the marker in every field of free text.  It is an
# attack (a successful AddPermission of lambda:InvokeFunction to a principal
# starting with "*"), so its alert carries the marker in each of the alert's
# columns.  %over replaces top-level fields.
sub record
{
	my ($name, %over) = @_;
	my %r = (
		eventID => "$name-$marker",
		eventTime => '2026-11-01T10:00:00Z',
		eventSource => 'lambda.amazonaws.com',
		eventName => 'AddPermission20150331v2',
		eventType => 'AwsApiCall',
		awsRegion => "region-$marker",
		recipientAccountId => "account-$marker",
		sourceIPAddress => "host-$marker.example",
		userAgent => "agent-$marker",
		requestID => "request-$marker",
		userIdentity => {
			type => 'IAMUser',
			arn => "arn:aws:iam::111122223333:user/$marker",
			accountId => "account-$marker",
			accessKeyId => "AKIA$marker",
			userName => "user-$marker",
			principalId => "principal-$marker"
		},
		requestParameters => {
			action => 'lambda:InvokeFunction',
			principal => "*$marker",
			functionName => "function-$marker",
			statementId => "sid-$marker",
			sourceArn => "arn:aws:s3:::bucket-$marker"
		},
		responseElements => { statement => "{\"Sid\":\"$marker\"}" },
		additionalEventData => { note => $marker },
		%over);
	return $json->encode(\%r);
}

sub event_id { return "$_[0]-$marker"; }

# one INSERT, so one transaction: the worker claims the rows as one batch
sub submit
{
	my ($dbname, @records) = @_;
	$node->safe_psql($dbname,
		'INSERT INTO lambda_detect.inbox (source, payload) VALUES '
		  . join(', ', map { "('no-secrets', \$j\$$_\$j\$)" } @records));
}

sub write_file
{
	my ($path, $bytes) = @_;
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $bytes;
	close $fh or die "$path: $!";
}

sub query { return $node->safe_psql('postgres', $_[0]); }

sub poll { return $node->poll_query_until('postgres', $_[0]); }

# The notifications a LISTENing psql has printed so far, as decoded payloads.
my $heard = '';
sub notifications
{
	my ($listener) = @_;
	$heard .= $listener->query('SELECT 1');
	return map { decode_json($_) }
	  $heard =~ /Asynchronous notification "lambda_detect_alerts" with payload "(.*?)" received from server process/g;
}

# Polls the listener until it has printed at least $n notifications of kind
# $kind (bounded, like poll_query_until); returns them all.
sub wait_notifications
{
	my ($listener, $kind, $n) = @_;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		my @all = notifications($listener);
		return @all if (grep { $_->{kind} eq $kind } @all) >= $n;
		usleep(100_000);
	}
	return notifications($listener);
}

# --- a role with no grant at all listens ---

$node->safe_psql('postgres', 'CREATE ROLE regress_nobody LOGIN');
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT count(*) FROM lambda_detect.alerts',
	extra_params => [ '-U', 'regress_nobody' ]);
like($stderr, qr/permission denied for schema lambda_detect/,
	'the listening role can read no alert');
my $listener = $node->background_psql('postgres', extra_params => [ '-U', 'regress_nobody' ]);
$listener->query_safe('LISTEN lambda_detect_alerts');

# --- 1. records with the marker everywhere, through the inbox and files ---

submit('postgres', record('attack'));
ok(poll("SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = '" . event_id('attack') . "'"),
	'an attack with the marker in every field is ingested and alerted');
is(query(q{SELECT count(*) FROM lambda_detect.alerts a WHERE a::text LIKE '%} . $marker . q{%'
	AND principal LIKE '*%' AND actor_arn LIKE '%} . $marker . q{' AND user_agent LIKE '%} . $marker . q{'}),
	'1', 'the alert row shows the marker to its readers');

# a duplicate: the same record again, in its own batch
submit('postgres', record('attack'));
ok(poll("SELECT coalesce(sum(duplicates), 0) >= 1 FROM lambda_detect.ingest_runs"),
	'the same record again is counted as a duplicate');

# fields too long to index, a wrong type, an impossible time
submit('postgres',
	record('long-id', eventID => "$marker-" . ('x' x 600)),
	record('long-arn', userIdentity => { type => 'IAMUser', arn => "arn:$marker:" . ('a' x 3000) }),
	record('long-key', userIdentity => { type => 'IAMUser', accessKeyId => "$marker" . ('K' x 200) }),
	record('bad-type', eventName => { name => $marker }),
	record('bad-time', eventTime => "2026-02-30T10:00:00Z$marker"));
ok(poll(q{SELECT count(*) = 5 FROM lambda_detect.ingest_errors
	WHERE reason IN ('field_too_long', 'wrong_type', 'bad_timestamp')}),
	'fields too long, of a wrong type or an impossible time are dead-lettered');

# a file whose JSON has a bad token; JSON lines with one good and one bad line
write_file("$inbox/bad-token.json", qq({"Records": [{"userAgent": "agent-$marker"}, $marker]}));
write_file("$inbox/lines.jsonl", record('line-good') . "\n" . qq({"eventID": $marker}) . "\n");
ok(poll(q{SELECT count(*) = 2 FROM lambda_detect.ingested_files}), 'both files are read');
is(query(q{SELECT string_agg(reason || ' ' || coalesce(location, '-'), ', ' ORDER BY reason)
	FROM lambda_detect.ingest_errors WHERE reason = 'invalid_json'}),
	'invalid_json -, invalid_json line 2', 'their bad JSON is dead-lettered');
is(query(q{SELECT count(*) FROM lambda_detect.ingest_errors
	WHERE reason = 'invalid_json' AND message LIKE '%Token "} . $marker . q{" is invalid%'}),
	'2', 'with the parse error, which quotes the token');

# --- 2. a batch refused in part: redone row by row ---

# what an administrator may add: a CHECK constraint (its error quotes the
# whole row) and a trigger whose error quotes a value of the row
$node->safe_psql('postgres', q{
	ALTER TABLE lambda_detect.events ADD CONSTRAINT regress_refused
	    CHECK (user_agent IS NULL OR user_agent NOT LIKE 'refuse%');
	CREATE FUNCTION public.regress_raise() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    IF NEW.user_agent LIKE 'raise%' THEN
	        RAISE EXCEPTION 'refusing the event of %', NEW.user_name;
	    END IF;
	    RETURN NEW;
	END $$;
	CREATE TRIGGER regress_raise BEFORE INSERT ON lambda_detect.events
	    FOR EACH ROW EXECUTE FUNCTION public.regress_raise();
});
submit('postgres',
	record('mixed-good'),
	record('mixed-check', userAgent => "refuse-$marker"),
	record('mixed-raise', userAgent => "raise-$marker"));
ok(poll(q{SELECT count(*) = 2 FROM lambda_detect.ingest_errors WHERE reason = 'store_failed'}),
	'the refused rows of a batch are dead-lettered');
is(query("SELECT count(*) FROM lambda_detect.events WHERE event_id = '" . event_id('mixed-good') . "'"),
	'1', 'and the good row beside them is stored');
is(query(q{SELECT string_agg(sqlstate || ' ' || (message LIKE '%} . $marker . q{%'), ', ' ORDER BY sqlstate)
	FROM lambda_detect.ingest_errors WHERE reason = 'store_failed'}),
	'23514 true, P0001 true', 'each dead letter keeps its whole error for the roles granted it');

# --- 3. batches refused whole: the worker's unit fails ---

submit('postgres', record('alike-raise-1', userAgent => "raise-$marker"),
	record('alike-raise-2', userAgent => "raise-$marker"));
ok(poll(q{SELECT last_error LIKE 'refusing the event of %' FROM lambda_detect.worker_status()}),
	'a batch whose every row a trigger refuses fails the unit');
$node->safe_psql('postgres', 'DROP TRIGGER regress_raise ON lambda_detect.events');
ok(poll(q{SELECT count(*) = 2 FROM lambda_detect.events WHERE event_id LIKE 'alike-raise-%'}),
	'the rows wait in the inbox and are stored once the trigger is gone');

submit('postgres', record('alike-check-1', userAgent => "refuse-$marker"),
	record('alike-check-2', userAgent => "refuse-$marker"));
ok(poll(q{SELECT last_error LIKE '%violates check constraint "regress_refused"' FROM lambda_detect.worker_status()}),
	'a batch whose every row a CHECK constraint refuses fails the unit');
$node->safe_psql('postgres', 'ALTER TABLE lambda_detect.events DROP CONSTRAINT regress_refused');
ok(poll(q{SELECT count(*) = 2 FROM lambda_detect.events WHERE event_id LIKE 'alike-check-%'}),
	'and those are stored once the constraint is gone');

# --- 4. a rule run that fails on its alert ---

$node->safe_psql('postgres', q{
	CREATE FUNCTION public.regress_refuse_alert() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    IF NEW.function_name LIKE 'refuse%' THEN
	        RAISE EXCEPTION 'refusing the alert on %', NEW.actor_arn;
	    END IF;
	    RETURN NEW;
	END $$;
	CREATE TRIGGER regress_refuse_alert BEFORE INSERT ON lambda_detect.alerts
	    FOR EACH ROW EXECUTE FUNCTION public.regress_refuse_alert();
});
submit('postgres', record('rule-fail', requestParameters => {
	action => 'lambda:InvokeFunction', principal => "*$marker",
	functionName => "refuse-$marker", statementId => "sid-$marker" }));
ok(poll(q{SELECT count(*) > 0 FROM lambda_detect.rule_runs
	WHERE status = 'failed' AND error_sqlstate = 'P0001' AND trigger <> 'manual'}),
	'the worker\'s rule run fails on the refused alert');
is(query(q{SELECT bool_and(error LIKE '%} . $marker . q{%') FROM lambda_detect.rule_runs
	WHERE status = 'failed' AND error_sqlstate = 'P0001'}),
	't', 'and records its error, which quotes the alert, in rule_runs');

# the same run from SQL: the caller sees the whole error
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT status, error_sqlstate FROM lambda_detect.run_rule('lambda-public-invocation')});
is($stdout, 'failed|P0001', 'run_rule() from SQL fails the same way');
like($stderr, qr/WARNING:  .*refusing the alert on arn:aws:iam::111122223333:user\/\Q$marker\E/,
	'and its caller sees the whole error');

$node->safe_psql('postgres', 'DROP TRIGGER regress_refuse_alert ON lambda_detect.alerts');
ok(poll("SELECT count(*) = 1 FROM lambda_detect.alerts WHERE event_id = '" . event_id('rule-fail') . "'"),
	'once the trigger is gone the worker alerts');

# --- 5. ingest_now() from SQL, where no worker runs ---

$node->safe_psql('postgres', 'CREATE DATABASE callers');
$node->safe_psql('callers', q{
	CREATE EXTENSION lambda_detect;
	ALTER TABLE lambda_detect.events ADD CONSTRAINT regress_refused
	    CHECK (user_agent IS NULL OR user_agent NOT LIKE 'refuse%');
});
submit('callers', record('caller-good'), record('caller-check', userAgent => "refuse-$marker"));
($ret, $stdout, $stderr) = $node->psql('callers',
	"SET lambda_detect.inbox_dir = ''; SELECT inbox_rows, events, errors FROM lambda_detect.ingest_now()");
is($stdout, '2|1|1', 'ingest_now() stores the good row and dead-letters the refused one');
like($stderr, qr/WARNING:  .*could not be stored.*\nDETAIL:  .*Failing row contains \(.*\Q$marker\E/,
	'and its caller sees the whole error');

# --- what the listener received ---

my $alerts = query('SELECT count(*) FROM lambda_detect.alerts');
my @heard = grep { $_->{kind} eq 'new' } wait_notifications($listener, 'new', $alerts);
is(scalar @heard, $alerts, "the role with no grant heard each of the $alerts new alerts");
is(join(' ', sort { $a <=> $b } map { $_->{alert_id} } @heard),
	query(q{SELECT string_agg(alert_id::text, ' ' ORDER BY alert_id) FROM lambda_detect.alerts}),
	'by its id');
is(join(' ', sort keys %{ { map { (join(',', sort keys %$_) => 1) } @heard } }),
	'alert_id,kind,risk_score,rule,rule_version,severity,status',
	'each payload names the alert and its rule, nothing of the event');
is((grep { $json->encode($_) =~ /\Q$marker\E/ } @heard), 0, 'no payload holds the marker');

# --- the server log ---

my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$marker\E/, 'the server log never holds the marker');
my $row = qr/WARNING:  01000: lambda_detect: inbox row \d+ could not be stored and was moved to ingest_errors\n.*DETAIL:  Dead letter \d+: /;
like($log, qr/\[$worker_pid\] $row\QSQLSTATE 23514, constraint "regress_refused" of table "lambda_detect.events_/,
	'the worker logs a refused row by its dead letter, SQLSTATE and constraint');
like($log, qr/\[$worker_pid\] $row\QSQLSTATE P0001.\E\n/, 'and a row a trigger refused by its SQLSTATE');
like($log, qr/\[$worker_pid\] LOG:  00000: lambda_detect: inbox batch failed, storing its rows one by one\n.*DETAIL:  SQLSTATE (23514|P0001)/,
	'the batch they were in by its SQLSTATE');
like($log, qr/\[$worker_pid\] ERROR:  P0001: lambda_detect worker: draining inbox failed\n.*DETAIL:  SQLSTATE P0001\.  /,
	'a failed unit is logged as an error, with its SQLSTATE');
like($log, qr/\[$worker_pid\] ERROR:  23514: lambda_detect worker: draining inbox failed\n.*DETAIL:  \QSQLSTATE 23514, constraint "regress_refused" of table "lambda_detect.events_/,
	'and the names of the objects involved');
like($log, qr/LOG:  P0001: lambda_detect: run \d+ of rule "lambda-public-invocation" failed\n.*DETAIL:  SQLSTATE P0001\./,
	'a run_rule() that failed for a SQL caller is logged by its run and SQLSTATE');
like($log, qr/\] 009_no_secrets\.pl $row\QSQLSTATE 23514, constraint "regress_refused"/,
	'so is a row ingest_now() could not store for a SQL caller');
is($node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'lambda_detect worker'"),
	$worker_pid, 'the worker stayed up throughout');

# --- a superuser's deliberate choice: the full payload ---

($ret, $stdout, $stderr) = $node->psql('postgres', 'SET lambda_detect.notify_payload = full',
	extra_params => [ '-U', 'regress_nobody' ]);
like($stderr, qr/permission denied to set parameter "lambda_detect\.notify_payload"/,
	'a role that is not a superuser cannot choose the full payload');
$node->safe_psql('postgres', "SET lambda_detect.notify_payload = full;
	UPDATE lambda_detect.alerts SET status = 'acknowledged' WHERE event_id = '" . event_id('attack') . "'");
my ($status) = grep { $_->{kind} eq 'status' } wait_notifications($listener, 'status', 1);
ok(defined $status && $status->{actor_arn} eq "arn:aws:iam::111122223333:user/$marker",
	'with lambda_detect.notify_payload = full every listener receives the event\'s fields');
$listener->quit;

$node->stop;
done_testing();
