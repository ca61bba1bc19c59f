-- lambda_detect install script.
--
-- The Makefile assembles this script from the numbered files in schema/, in
-- order; each file holds one part of the schema.  Edit those, not the
-- assembled lambda_detect--<version>.sql.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION lambda_detect" to load this file. \quit

COMMENT ON SCHEMA lambda_detect IS
    'lambda_detect: CloudTrail ingestion and detection of AWS Lambda function policies opened to public invocation';
-- The SQL landing queue: clients INSERT or COPY raw CloudTrail JSON here.
--
-- The background worker claims rows with FOR UPDATE SKIP LOCKED, turns them
-- into events and deletes them in the same transaction, so a crash loses or
-- duplicates nothing.  A statement trigger wakes the worker when the
-- inserting transaction commits, so ingestion starts at once.

CREATE TABLE lambda_detect.inbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text,
    payload     jsonb       NOT NULL
);

COMMENT ON TABLE lambda_detect.inbox IS
    'Landing queue of raw CloudTrail JSON (a record, a log file body, an array, or an EventBridge event); drained by the worker or ingest_now()';
COMMENT ON COLUMN lambda_detect.inbox.id IS 'Arrival order; the worker drains in this order';
COMMENT ON SEQUENCE lambda_detect.inbox_id_seq IS 'Ids of inbox rows';
COMMENT ON COLUMN lambda_detect.inbox.received_at IS 'When the row was inserted';
COMMENT ON COLUMN lambda_detect.inbox.source IS 'Free-form label of where the payload came from (kept on dead letters)';
COMMENT ON COLUMN lambda_detect.inbox.payload IS 'The CloudTrail JSON as received';

CREATE FUNCTION lambda_detect.wake_worker_at_commit()
RETURNS trigger
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_wake_worker_at_commit';

COMMENT ON FUNCTION lambda_detect.wake_worker_at_commit() IS
    'Statement trigger function: sets the ingest worker''s latch when the inserting transaction commits';

CREATE TRIGGER inbox_wake_worker
    AFTER INSERT ON lambda_detect.inbox
    FOR EACH STATEMENT
    EXECUTE FUNCTION lambda_detect.wake_worker_at_commit();

COMMENT ON TRIGGER inbox_wake_worker ON lambda_detect.inbox IS
    'Wakes the background worker when rows are committed to the inbox';
-- Normalized CloudTrail events: one row per distinct eventID.
--
-- The columns are the fields the rules and the investigation guide need, as
-- typed values; the original record is kept whole in "record".  eventID is
-- the idempotency key: an event delivered twice (two trails, a re-read file)
-- is stored once.

CREATE TABLE lambda_detect.events (
    event_id             text        NOT NULL,
    event_time           timestamptz NOT NULL,
    ingested_at          timestamptz NOT NULL DEFAULT now(),
    event_source         text        NOT NULL,
    event_name           text        NOT NULL,
    event_type           text,
    aws_region           text,
    recipient_account_id text,
    actor_account_id     text,
    actor_arn            text,
    actor_type           text,
    access_key_id        text,
    user_name            text,
    source_ip            inet,
    source_address       text,
    user_agent           text,
    error_code           text,
    error_message        text,
    outcome              text        NOT NULL,
    read_only            boolean,
    request_id           text,
    request_parameters   jsonb,
    response_elements    jsonb,
    record               jsonb       NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (event_id),
    CONSTRAINT events_outcome_check CHECK (outcome IN ('success', 'failure'))
);

COMMENT ON TABLE lambda_detect.events IS
    'Normalized CloudTrail events, one row per distinct eventID';
COMMENT ON COLUMN lambda_detect.events.event_id IS 'CloudTrail eventID, the idempotency key';
COMMENT ON COLUMN lambda_detect.events.event_time IS 'CloudTrail eventTime: when AWS handled the request';
COMMENT ON COLUMN lambda_detect.events.ingested_at IS 'When lambda_detect stored the event; rule windows are on this time, so late deliveries still alert';
COMMENT ON COLUMN lambda_detect.events.event_source IS 'CloudTrail eventSource (Elastic event.provider), e.g. lambda.amazonaws.com';
COMMENT ON COLUMN lambda_detect.events.event_name IS 'CloudTrail eventName verbatim (Elastic event.action), e.g. AddPermission20150331v2';
COMMENT ON COLUMN lambda_detect.events.event_type IS 'CloudTrail eventType, e.g. AwsApiCall';
COMMENT ON COLUMN lambda_detect.events.aws_region IS 'CloudTrail awsRegion';
COMMENT ON COLUMN lambda_detect.events.recipient_account_id IS 'CloudTrail recipientAccountId: the account that owns the resource';
COMMENT ON COLUMN lambda_detect.events.actor_account_id IS 'userIdentity.accountId: the account of the caller';
COMMENT ON COLUMN lambda_detect.events.actor_arn IS 'userIdentity.arn: who made the call';
COMMENT ON COLUMN lambda_detect.events.actor_type IS 'userIdentity.type, e.g. IAMUser, AssumedRole, Root, AWSService';
COMMENT ON COLUMN lambda_detect.events.access_key_id IS 'userIdentity.accessKeyId';
COMMENT ON COLUMN lambda_detect.events.user_name IS 'userIdentity.userName, else the session issuer''s userName for assumed roles';
COMMENT ON COLUMN lambda_detect.events.source_ip IS 'sourceIPAddress when it is an IP address; NULL when it is a service name';
COMMENT ON COLUMN lambda_detect.events.source_address IS 'sourceIPAddress verbatim (an address or an AWS service name)';
COMMENT ON COLUMN lambda_detect.events.user_agent IS 'CloudTrail userAgent';
COMMENT ON COLUMN lambda_detect.events.error_code IS 'CloudTrail errorCode, when the call failed';
COMMENT ON COLUMN lambda_detect.events.error_message IS 'CloudTrail errorMessage, when the call failed';
COMMENT ON COLUMN lambda_detect.events.outcome IS 'failure when errorCode or errorMessage is present and non-empty, else success (as Elastic derives event.outcome)';
COMMENT ON COLUMN lambda_detect.events.read_only IS 'CloudTrail readOnly';
COMMENT ON COLUMN lambda_detect.events.request_id IS 'CloudTrail requestID';
COMMENT ON COLUMN lambda_detect.events.request_parameters IS 'CloudTrail requestParameters as JSON';
COMMENT ON COLUMN lambda_detect.events.response_elements IS 'CloudTrail responseElements as JSON';
COMMENT ON COLUMN lambda_detect.events.record IS 'The original CloudTrail record';

-- The rules' filter.  Only Lambda events whose names the rules use are in
-- it, ordered by ingest time, so a rule run reads the candidates of its
-- window and nothing else, however large the table grows.  The rule engine
-- (src/rule_engine.c, LD_CANDIDATE_PREDICATE) repeats this predicate word for
-- word so that the planner can prove the index applies.
CREATE INDEX events_rule_candidates_idx
    ON lambda_detect.events (ingested_at)
    WHERE event_source = 'lambda.amazonaws.com'
      AND (event_name LIKE 'AddPermission%'
           OR event_name LIKE 'CreateFunctionUrlConfig%'
           OR event_name LIKE 'UpdateFunctionUrlConfig%');

COMMENT ON INDEX lambda_detect.events_rule_candidates_idx IS
    'Rule candidates only (Lambda AddPermission and function URL events), by ingest time';

CREATE INDEX events_actor_time_idx ON lambda_detect.events (actor_arn, event_time);
COMMENT ON INDEX lambda_detect.events_actor_time_idx IS 'Investigation: what else did this actor do around an alert';

CREATE INDEX events_source_ip_time_idx ON lambda_detect.events (source_ip, event_time);
COMMENT ON INDEX lambda_detect.events_source_ip_time_idx IS 'Investigation: what else came from this address around an alert';

CREATE INDEX events_event_time_idx ON lambda_detect.events (event_time);
COMMENT ON INDEX lambda_detect.events_event_time_idx IS 'Investigation and retention by event time';

-- The record and the JSON columns are compressed with lz4 where the server
-- has it: pglz gives up on most CloudTrail records (their IDs and keys leave
-- less than the 25% saving it requires) after spending the time to try,
-- while lz4 is several times faster and keeps what it saves.  Measured with
-- make bench: about 8% less disk per event and faster ingestion.
DO $$
BEGIN
    IF 'lz4' = ANY (SELECT pg_catalog.unnest(enumvals) FROM pg_catalog.pg_settings
                     WHERE name = 'default_toast_compression') THEN
        ALTER TABLE lambda_detect.events
            ALTER COLUMN record SET COMPRESSION lz4,
            ALTER COLUMN request_parameters SET COMPRESSION lz4,
            ALTER COLUMN response_elements SET COMPRESSION lz4;
    END IF;
END
$$;
-- What ingestion did: dead letters, the file ledger, and one row per batch.

CREATE TABLE lambda_detect.ingest_errors (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at       timestamptz NOT NULL DEFAULT now(),
    sqlstate          text        NOT NULL,
    reason            text        NOT NULL,
    message           text        NOT NULL,
    source            text,
    location          text,
    inbox_id          bigint,
    inbox_received_at timestamptz,
    payload           jsonb,
    raw_text          text
);

COMMENT ON TABLE lambda_detect.ingest_errors IS
    'Dead letters: every payload, record, line or file that could not be ingested, with the reason and the original (or its path)';
COMMENT ON COLUMN lambda_detect.ingest_errors.id IS 'Dead letter id';
COMMENT ON SEQUENCE lambda_detect.ingest_errors_id_seq IS 'Ids of ingest_errors';
COMMENT ON COLUMN lambda_detect.ingest_errors.occurred_at IS 'When ingestion rejected it';
COMMENT ON COLUMN lambda_detect.ingest_errors.sqlstate IS 'SQLSTATE-style class of the fault, e.g. 22P02 invalid JSON, 23502 missing field, 54000 over a limit';
COMMENT ON COLUMN lambda_detect.ingest_errors.reason IS 'Short machine-readable reason, e.g. invalid_json, missing_field, bad_timestamp, too_large';
COMMENT ON COLUMN lambda_detect.ingest_errors.message IS 'Human-readable explanation';
COMMENT ON COLUMN lambda_detect.ingest_errors.source IS 'The inbox row''s source label, or the file path';
COMMENT ON COLUMN lambda_detect.ingest_errors.location IS 'Where in the payload or file: Records[3], line 12, detail';
COMMENT ON COLUMN lambda_detect.ingest_errors.inbox_id IS 'The inbox row it came from, if any (that row is gone: this is its copy)';
COMMENT ON COLUMN lambda_detect.ingest_errors.inbox_received_at IS 'When that inbox row was received';
COMMENT ON COLUMN lambda_detect.ingest_errors.payload IS 'The rejected JSON (record or whole payload) when it was valid JSON';
COMMENT ON COLUMN lambda_detect.ingest_errors.raw_text IS 'The rejected text when it was not valid JSON (cut at lambda_detect.max_error_text; the file path locates the rest)';

CREATE INDEX ingest_errors_occurred_at_idx ON lambda_detect.ingest_errors (occurred_at);
COMMENT ON INDEX lambda_detect.ingest_errors_occurred_at_idx IS 'Recent dead letters first, and retention';

CREATE TABLE lambda_detect.ingested_files (
    path        text        PRIMARY KEY,
    size        bigint      NOT NULL,
    mtime       timestamptz NOT NULL,
    ctime       timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL,
    documents   integer     NOT NULL DEFAULT 0,
    events      integer     NOT NULL DEFAULT 0,
    duplicates  integer     NOT NULL DEFAULT 0,
    skipped     integer     NOT NULL DEFAULT 0,
    errors      integer     NOT NULL DEFAULT 0,
    note        text,
    CONSTRAINT ingested_files_status_check CHECK (status IN ('ingested', 'skipped', 'error'))
);

COMMENT ON TABLE lambda_detect.ingested_files IS
    'Ledger of files read below lambda_detect.inbox_dir: a file is read again only when its size or mtime changes (files are never moved or deleted)';
COMMENT ON COLUMN lambda_detect.ingested_files.path IS 'Absolute path of the file';
COMMENT ON COLUMN lambda_detect.ingested_files.size IS 'Size in bytes when it was read';
COMMENT ON COLUMN lambda_detect.ingested_files.mtime IS 'Modification time when it was read';
COMMENT ON COLUMN lambda_detect.ingested_files.ctime IS 'Status change time when it was read; a file that failed is retried when this changes (e.g. after chmod)';
COMMENT ON COLUMN lambda_detect.ingested_files.ingested_at IS 'When it was read';
COMMENT ON COLUMN lambda_detect.ingested_files.status IS 'ingested (events stored), skipped (nothing to store, e.g. a digest file) or error (see ingest_errors)';
COMMENT ON COLUMN lambda_detect.ingested_files.documents IS 'JSON documents in the file (1, or one per line for JSON lines)';
COMMENT ON COLUMN lambda_detect.ingested_files.events IS 'Events newly stored from the file';
COMMENT ON COLUMN lambda_detect.ingested_files.duplicates IS 'Records whose eventID was already stored';
COMMENT ON COLUMN lambda_detect.ingested_files.skipped IS 'Records or documents skipped with a counted reason (digest, Insight, empty)';
COMMENT ON COLUMN lambda_detect.ingested_files.errors IS 'Dead letters written for the file';
COMMENT ON COLUMN lambda_detect.ingested_files.note IS 'Why the file was skipped or failed (e.g. a symbolic link, a truncated gzip stream)';

CREATE TABLE lambda_detect.ingest_runs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    origin          text        NOT NULL,
    kind            text        NOT NULL,
    inbox_rows      integer     NOT NULL DEFAULT 0,
    files           integer     NOT NULL DEFAULT 0,
    records         integer     NOT NULL DEFAULT 0,
    events          integer     NOT NULL DEFAULT 0,
    duplicates      integer     NOT NULL DEFAULT 0,
    candidates      integer     NOT NULL DEFAULT 0,
    skipped         integer     NOT NULL DEFAULT 0,
    errors          integer     NOT NULL DEFAULT 0,
    skipped_reasons jsonb,
    CONSTRAINT ingest_runs_origin_check CHECK (origin IN ('worker', 'ingest_now')),
    CONSTRAINT ingest_runs_kind_check CHECK (kind IN ('inbox', 'files'))
);

COMMENT ON TABLE lambda_detect.ingest_runs IS
    'One row per ingestion batch that found work: what it read, stored, skipped and rejected';
COMMENT ON COLUMN lambda_detect.ingest_runs.id IS 'Batch id, increasing';
COMMENT ON SEQUENCE lambda_detect.ingest_runs_id_seq IS 'Ids of ingest_runs';
COMMENT ON COLUMN lambda_detect.ingest_runs.started_at IS 'When the batch started';
COMMENT ON COLUMN lambda_detect.ingest_runs.finished_at IS 'When the batch finished (duration = finished_at - started_at)';
COMMENT ON COLUMN lambda_detect.ingest_runs.origin IS 'worker (the background worker) or ingest_now (a SQL call)';
COMMENT ON COLUMN lambda_detect.ingest_runs.kind IS 'inbox (rows of lambda_detect.inbox) or files (files below inbox_dir)';
COMMENT ON COLUMN lambda_detect.ingest_runs.inbox_rows IS 'Inbox rows consumed';
COMMENT ON COLUMN lambda_detect.ingest_runs.files IS 'Files read';
COMMENT ON COLUMN lambda_detect.ingest_runs.records IS 'CloudTrail records found (stored + duplicates)';
COMMENT ON COLUMN lambda_detect.ingest_runs.events IS 'Events newly stored';
COMMENT ON COLUMN lambda_detect.ingest_runs.duplicates IS 'Records whose eventID was already stored';
COMMENT ON COLUMN lambda_detect.ingest_runs.candidates IS 'Newly stored events that are rule candidates (they trigger a rule run)';
COMMENT ON COLUMN lambda_detect.ingest_runs.skipped IS 'Documents or records skipped with a counted reason';
COMMENT ON COLUMN lambda_detect.ingest_runs.errors IS 'Dead letters written';
COMMENT ON COLUMN lambda_detect.ingest_runs.skipped_reasons IS 'Skips by reason, e.g. {"digest_file": 1}';

CREATE INDEX ingest_runs_started_at_idx ON lambda_detect.ingest_runs (started_at);
COMMENT ON INDEX lambda_detect.ingest_runs_started_at_idx IS 'Recent batches first, and retention';
-- normalize(): the one place that turns any accepted CloudTrail shape into
-- event rows.  Implemented in C (src/normalize.c).

CREATE FUNCTION lambda_detect.normalize(
    payload                  jsonb,
    OUT ordinal              integer,
    OUT status               text,
    OUT sqlstate             text,
    OUT reason               text,
    OUT message              text,
    OUT location             text,
    OUT event_id             text,
    OUT event_time           timestamptz,
    OUT event_source         text,
    OUT event_name           text,
    OUT event_type           text,
    OUT aws_region           text,
    OUT recipient_account_id text,
    OUT actor_account_id     text,
    OUT actor_arn            text,
    OUT actor_type           text,
    OUT access_key_id        text,
    OUT user_name            text,
    OUT source_ip            inet,
    OUT source_address       text,
    OUT user_agent           text,
    OUT error_code           text,
    OUT error_message        text,
    OUT outcome              text,
    OUT read_only            boolean,
    OUT request_id           text,
    OUT request_parameters   jsonb,
    OUT response_elements    jsonb,
    OUT record               jsonb)
RETURNS SETOF record
LANGUAGE C STRICT STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_normalize';

COMMENT ON FUNCTION lambda_detect.normalize(jsonb) IS
    'Turns a CloudTrail payload (record, {"Records":[...]}, array, or EventBridge event) into one row per record: status event (with the typed fields), skipped (digest, Insight, empty; reason says which) or rejected (sqlstate, reason, message); never raises for bad input';
-- SQL twins of the worker's background actions, and its heartbeat.

CREATE FUNCTION lambda_detect.ingest_now(
    OUT inbox_rows integer,
    OUT files      integer,
    OUT records    integer,
    OUT events     integer,
    OUT duplicates integer,
    OUT skipped    integer,
    OUT errors     integer)
RETURNS record
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_ingest_now';

COMMENT ON FUNCTION lambda_detect.ingest_now() IS
    'Drains the inbox and scans lambda_detect.inbox_dir (when set) once, in the calling transaction, exactly as the worker does; returns what it did.  SECURITY DEFINER: EXECUTE is the only grant a caller needs';

CREATE FUNCTION lambda_detect.worker_status(
    OUT pid                 integer,
    OUT database            text,
    OUT started_at          timestamptz,
    OUT state               text,
    OUT last_activity_at    timestamptz,
    OUT last_ingest_at      timestamptz,
    OUT last_scan_at        timestamptz,
    OUT last_rule_run_at    timestamptz,
    OUT batches             bigint,
    OUT events              bigint,
    OUT errors              bigint,
    OUT last_error          text,
    OUT last_error_at       timestamptz)
RETURNS record
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_worker_status';

COMMENT ON FUNCTION lambda_detect.worker_status() IS
    'Heartbeat of the background worker from shared memory: pid (NULL when not running), state, last activity, counters and last error';

CREATE VIEW lambda_detect.worker_health AS
    SELECT * FROM lambda_detect.worker_status();

COMMENT ON VIEW lambda_detect.worker_health IS
    'The background worker''s heartbeat as a one-row view (see worker_status())';
-- The rule catalog and the history of rule runs.
--
-- A rule is typed parameters plus the name of a matcher implemented in C
-- (never SQL text).  run_rule() applies one rule to the events ingested in
-- its window and records the run in rule_runs.  The seed rule keeps exact
-- parity with Elastic's; three companion rules cover what it is known to
-- miss (docs/rules.md).

CREATE TABLE lambda_detect.rules (
    rule             text        PRIMARY KEY,
    rule_id        uuid        NOT NULL UNIQUE,
    name             text        NOT NULL,
    description      text        NOT NULL,
    version          integer     NOT NULL DEFAULT 1,
    matcher          text        NOT NULL,
    severity         text        NOT NULL,
    risk_score       integer     NOT NULL,
    run_interval     interval    NOT NULL,
    lookback         interval    NOT NULL,
    max_signals      integer     NOT NULL,
    mitre_tactics    text[]      NOT NULL DEFAULT '{}',
    mitre_techniques text[]      NOT NULL DEFAULT '{}',
    "references"     text[]      NOT NULL DEFAULT '{}',
    enabled          boolean     NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rules_rule_check CHECK (rule ~ '^[a-z0-9][a-z0-9-]{0,99}$'),
    CONSTRAINT rules_severity_check CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT rules_risk_score_check CHECK (risk_score BETWEEN 0 AND 100),
    CONSTRAINT rules_run_interval_check CHECK (run_interval >= interval '1 second'),
    CONSTRAINT rules_lookback_check CHECK (lookback > interval '0'),
    CONSTRAINT rules_max_signals_check CHECK (max_signals BETWEEN 1 AND 100000),
    CONSTRAINT rules_matcher_check CHECK (matcher IN ('lambda_public_invocation',
                                                      'lambda_public_wildcard_action',
                                                      'lambda_function_url_public',
                                                      'lambda_cross_account_invocation'))
);

COMMENT ON TABLE lambda_detect.rules IS
    'Detection rule catalog: typed parameters and the C matcher each rule uses';
COMMENT ON COLUMN lambda_detect.rules.rule IS 'Stable key of lower-case letters, digits and dashes (at most 100), e.g. lambda-public-invocation';
COMMENT ON COLUMN lambda_detect.rules.rule_id IS 'Rule id; for the seed rule, Elastic''s rule_id';
COMMENT ON COLUMN lambda_detect.rules.name IS 'Display name';
COMMENT ON COLUMN lambda_detect.rules.description IS 'What the rule detects and why it matters';
COMMENT ON COLUMN lambda_detect.rules.version IS 'Rule version, copied onto each alert';
COMMENT ON COLUMN lambda_detect.rules.matcher IS 'Name of the C matcher that evaluates candidates';
COMMENT ON COLUMN lambda_detect.rules.severity IS 'low, medium, high or critical';
COMMENT ON COLUMN lambda_detect.rules.risk_score IS 'Risk score 0-100';
COMMENT ON COLUMN lambda_detect.rules.run_interval IS 'How often the worker runs the rule (it also runs right after ingesting candidates)';
COMMENT ON COLUMN lambda_detect.rules.lookback IS 'Width of the ingest-time window a run examines';
COMMENT ON COLUMN lambda_detect.rules.max_signals IS 'Most new alerts one run creates; a run that hits it is marked truncated and followed at once by another';
COMMENT ON COLUMN lambda_detect.rules.mitre_tactics IS 'MITRE ATT&CK tactic ids';
COMMENT ON COLUMN lambda_detect.rules.mitre_techniques IS 'MITRE ATT&CK technique ids';
COMMENT ON COLUMN lambda_detect.rules."references" IS 'Links for analysts';
COMMENT ON COLUMN lambda_detect.rules.enabled IS 'Whether the worker runs the rule';
COMMENT ON COLUMN lambda_detect.rules.updated_at IS 'When the rule row last changed';

INSERT INTO lambda_detect.rules
    (rule, rule_id, name, description, version, matcher, severity, risk_score,
     run_interval, lookback, max_signals, mitre_tactics, mitre_techniques, "references")
VALUES
    ('lambda-public-invocation',
     '151d8f72-0747-11ef-a0c2-f661ea17fbcc',
     'AWS Lambda Function Policy Updated to Allow Public Invocation',
     'Identifies when an AWS Lambda function policy is updated to allow public invocation: '
     'a successful AddPermission call granting lambda:InvokeFunction to principal "*". '
     'Adversaries open a function to the world to keep a way back in (persistence) or to trigger '
     'code without credentials. Exact parity with Elastic''s prebuilt rule of the same rule_id, version 1.',
     1, 'lambda_public_invocation', 'medium', 47,
     interval '10 minutes', interval '60 minutes', 100,
     ARRAY['TA0003'], ARRAY['T1546'],
     ARRAY['https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html',
           'https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html']);

-- The companion rules: the gaps of the seed rule, each a rule of its own so
-- that the seed keeps parity and every alert says which rule fired.  Their
-- rule_ids are fixed, so that they are the same in every installation.
-- Severity, risk score and MITRE ids are argued in docs/rules.md.
INSERT INTO lambda_detect.rules
    (rule, rule_id, name, description, version, matcher, severity, risk_score,
     run_interval, lookback, max_signals, mitre_tactics, mitre_techniques, "references")
VALUES
    ('lambda-public-wildcard-action',
     'c1835994-948f-4944-8dd0-ebd4f595554f',
     'AWS Lambda Function Policy Updated to Allow Public Invocation with a Wildcard or Case-Variant Action',
     'Identifies a successful AddPermission call granting a principal starting with "*" the action '
     '"lambda:*", "*", or a case variant of lambda:InvokeFunction (IAM action names are '
     'case-insensitive), which the seed rule lambda-public-invocation does not match.  "lambda:*" '
     'and "*" open every function action to anyone, not only invocation; an unusual spelling of '
     'the action can be a deliberate evasion.  Never fires for an event the seed rule matches.',
     1, 'lambda_public_wildcard_action', 'high', 73,
     interval '10 minutes', interval '60 minutes', 100,
     ARRAY['TA0003'], ARRAY['T1546'],
     ARRAY['https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html',
           'https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html',
           'https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html']),
    ('lambda-function-url-public',
     'a8f31ce3-bd59-41af-a1ae-e4eba85ad1c3',
     'AWS Lambda Function URL Configured Without Authentication',
     'Identifies a successful CreateFunctionUrlConfig or UpdateFunctionUrlConfig call with '
     'authType NONE: the function gets an HTTPS endpoint on which Lambda performs no IAM '
     'authentication, so whoever its resource-based policy admits can call it without AWS '
     'credentials.  These are not AddPermission events, so the seed rule never sees them.',
     1, 'lambda_function_url_public', 'medium', 47,
     interval '10 minutes', interval '60 minutes', 100,
     ARRAY['TA0003'], ARRAY['T1546'],
     ARRAY['https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunctionUrlConfig.html',
           'https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionUrlConfig.html',
           'https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html']),
    ('lambda-cross-account-invocation',
     'f0e02c9d-0711-4f10-835a-8358660889f9',
     'AWS Lambda Function Policy Updated to Allow Invocation from Another Account',
     'Identifies a successful AddPermission call granting an invoke action (lambda:InvokeFunction '
     'in any case, lambda:InvokeFunctionUrl, "lambda:*" or "*") to another AWS account: a 12-digit '
     'account id, or the root, a user or a role of that account, other than the account that owns '
     'the function.  An outside account able to run the code is a quieter backdoor than a public '
     'grant, and also the usual shape of a legitimate integration: allow-list known partners with '
     'exceptions.',
     1, 'lambda_cross_account_invocation', 'low', 21,
     interval '10 minutes', interval '60 minutes', 100,
     ARRAY['TA0003'], ARRAY['T1546'],
     ARRAY['https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html',
           'https://docs.aws.amazon.com/lambda/latest/dg/permissions-function-cross-account.html']);

CREATE FUNCTION lambda_detect.touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION lambda_detect.touch_updated_at() IS
    'Trigger function: stamps updated_at on the changed rule';

CREATE TRIGGER rules_touch_updated_at
    BEFORE UPDATE ON lambda_detect.rules
    FOR EACH ROW EXECUTE FUNCTION lambda_detect.touch_updated_at();

COMMENT ON TRIGGER rules_touch_updated_at ON lambda_detect.rules IS
    'Keeps rules.updated_at current';

CREATE TABLE lambda_detect.rule_runs (
    run_id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule           text        NOT NULL,
    rule_version   integer     NOT NULL,
    trigger        text        NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    candidates     integer     NOT NULL DEFAULT 0,
    matched        integer     NOT NULL DEFAULT 0,
    alerts_created integer     NOT NULL DEFAULT 0,
    duplicates     integer     NOT NULL DEFAULT 0,
    suppressed     integer     NOT NULL DEFAULT 0,
    truncated      boolean     NOT NULL DEFAULT false,
    complete_until timestamptz,
    status         text        NOT NULL,
    error_sqlstate text,
    error          text,
    CONSTRAINT rule_runs_trigger_check CHECK (trigger IN ('manual', 'schedule', 'ingest', 'catchup')),
    CONSTRAINT rule_runs_status_check CHECK (status IN ('running', 'succeeded', 'failed'))
);

COMMENT ON TABLE lambda_detect.rule_runs IS
    'One row per rule run: its window, what it examined and created, and how it ended';
COMMENT ON COLUMN lambda_detect.rule_runs.run_id IS 'Run id, increasing';
COMMENT ON SEQUENCE lambda_detect.rule_runs_run_id_seq IS 'Ids of rule_runs';
COMMENT ON COLUMN lambda_detect.rule_runs.rule IS 'The rule that ran';
COMMENT ON COLUMN lambda_detect.rule_runs.rule_version IS 'The rule''s version at the time';
COMMENT ON COLUMN lambda_detect.rule_runs.trigger IS 'manual (run_rule), schedule (interval due), ingest (candidates just stored) or catchup (previous run truncated)';
COMMENT ON COLUMN lambda_detect.rule_runs.window_start IS 'Start of the ingest-time window examined (inclusive)';
COMMENT ON COLUMN lambda_detect.rule_runs.window_end IS 'End of the ingest-time window examined (inclusive)';
COMMENT ON COLUMN lambda_detect.rule_runs.started_at IS 'When the run started';
COMMENT ON COLUMN lambda_detect.rule_runs.finished_at IS 'When the run finished; NULL while running';
COMMENT ON COLUMN lambda_detect.rule_runs.candidates IS 'Candidate events examined (read through the partial index)';
COMMENT ON COLUMN lambda_detect.rule_runs.matched IS 'Candidates the rule matched (new alerts + duplicates + suppressed)';
COMMENT ON COLUMN lambda_detect.rule_runs.alerts_created IS 'New alerts created';
COMMENT ON COLUMN lambda_detect.rule_runs.duplicates IS 'Matches skipped because the (rule, event) alert already existed';
COMMENT ON COLUMN lambda_detect.rule_runs.suppressed IS 'New matches an exception covered: not alerted, recorded in suppressed_matches';
COMMENT ON COLUMN lambda_detect.rule_runs.truncated IS 'The run hit max_signals; the rest is left for the follow-up run';
COMMENT ON COLUMN lambda_detect.rule_runs.complete_until IS 'Worker runs only: every event ingested before this time had been examined by this or an earlier run (the next worker run starts its window here at the latest, so nothing ingested is ever skipped)';
COMMENT ON COLUMN lambda_detect.rule_runs.status IS 'running, succeeded or failed';
COMMENT ON COLUMN lambda_detect.rule_runs.error_sqlstate IS 'SQLSTATE of the error of a failed run';
COMMENT ON COLUMN lambda_detect.rule_runs.error IS 'Error message of a failed run';

CREATE INDEX rule_runs_rule_started_idx ON lambda_detect.rule_runs (rule, started_at);
COMMENT ON INDEX lambda_detect.rule_runs_rule_started_idx IS 'A rule''s recent runs, for scheduling and history';

CREATE INDEX rule_runs_watermark_idx ON lambda_detect.rule_runs (rule, complete_until)
    WHERE complete_until IS NOT NULL;
COMMENT ON INDEX lambda_detect.rule_runs_watermark_idx IS 'Where the worker''s next run of a rule must start, found without reading the rule''s whole history';

CREATE FUNCTION lambda_detect.run_rule(rule text, as_of timestamptz DEFAULT now())
RETURNS lambda_detect.rule_runs
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_run_rule';

COMMENT ON FUNCTION lambda_detect.run_rule(text, timestamptz) IS
    'Runs one rule now over the ingest-time window [as_of - lookback, as_of] in the calling transaction; returns its rule_runs row (a failed run is recorded with its error, not raised).  SECURITY DEFINER: EXECUTE is the only grant a caller needs';
-- Alerts: one row per (rule, event), with the triage fields of the
-- investigation guide, a status analysts move through, and NOTIFY on the
-- channel lambda_detect_alerts for integrations.

CREATE TABLE lambda_detect.alerts (
    alert_id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule               text        NOT NULL,
    rule_version       integer     NOT NULL,
    run_id             bigint,
    event_id           text        NOT NULL,
    event_time         timestamptz NOT NULL,
    ingested_at        timestamptz NOT NULL,
    detected_at        timestamptz NOT NULL DEFAULT now(),
    severity           text        NOT NULL,
    risk_score         integer     NOT NULL,
    reason             text        NOT NULL,
    account_id         text,
    aws_region         text,
    event_name         text        NOT NULL,
    function_name      text,
    function_arn       text,
    statement_id       text,
    action             text,
    principal          text,
    scoped_by          jsonb       NOT NULL DEFAULT '{}',
    actor_arn          text,
    actor_type         text,
    access_key_id      text,
    user_name          text,
    source_ip          inet,
    source_address     text,
    user_agent         text,
    request_parameters jsonb,
    response_elements  jsonb,
    status             text        NOT NULL DEFAULT 'open',
    status_changed_at  timestamptz,
    status_changed_by  text,
    status_note        text,
    CONSTRAINT alerts_rule_event_key UNIQUE (rule, event_id),
    CONSTRAINT alerts_status_check CHECK (status IN ('open', 'acknowledged', 'closed')),
    CONSTRAINT alerts_severity_check CHECK (severity IN ('low', 'medium', 'high', 'critical'))
);

COMMENT ON TABLE lambda_detect.alerts IS
    'Detections: one row per (rule, event), with triage fields; inserting or changing status notifies channel lambda_detect_alerts';
COMMENT ON COLUMN lambda_detect.alerts.alert_id IS 'Alert id, increasing in creation order (listeners resume from the last one they saw)';
COMMENT ON SEQUENCE lambda_detect.alerts_alert_id_seq IS 'Ids of alerts';
COMMENT ON COLUMN lambda_detect.alerts.rule IS 'The rule that fired';
COMMENT ON COLUMN lambda_detect.alerts.rule_version IS 'That rule''s version';
COMMENT ON COLUMN lambda_detect.alerts.run_id IS 'The rule_runs row that created the alert';
COMMENT ON COLUMN lambda_detect.alerts.event_id IS 'The CloudTrail eventID that matched';
COMMENT ON COLUMN lambda_detect.alerts.event_time IS 'When the API call happened';
COMMENT ON COLUMN lambda_detect.alerts.ingested_at IS 'When the event was ingested';
COMMENT ON COLUMN lambda_detect.alerts.detected_at IS 'When the alert was created';
COMMENT ON COLUMN lambda_detect.alerts.severity IS 'The rule''s severity';
COMMENT ON COLUMN lambda_detect.alerts.risk_score IS 'The rule''s risk score';
COMMENT ON COLUMN lambda_detect.alerts.reason IS 'What matched, in words';
COMMENT ON COLUMN lambda_detect.alerts.account_id IS 'The account that owns the function (recipientAccountId)';
COMMENT ON COLUMN lambda_detect.alerts.aws_region IS 'Region of the call';
COMMENT ON COLUMN lambda_detect.alerts.event_name IS 'The API call, e.g. AddPermission20150331v2';
COMMENT ON COLUMN lambda_detect.alerts.function_name IS 'requestParameters.functionName as given (a name, an ARN or a partial ARN)';
COMMENT ON COLUMN lambda_detect.alerts.function_arn IS 'The function''s ARN, from functionName and the event''s account and region';
COMMENT ON COLUMN lambda_detect.alerts.statement_id IS 'requestParameters.statementId: the policy statement to remove to revert';
COMMENT ON COLUMN lambda_detect.alerts.action IS 'requestParameters.action: the action granted';
COMMENT ON COLUMN lambda_detect.alerts.principal IS 'requestParameters.principal: who was granted it';
COMMENT ON COLUMN lambda_detect.alerts.scoped_by IS 'Narrowing conditions present on the grant (sourceArn, sourceAccount, principalOrgID, functionUrlAuthType, eventSourceToken, invokedViaFunctionUrl): {} means unrestricted';
COMMENT ON COLUMN lambda_detect.alerts.actor_arn IS 'Who made the call';
COMMENT ON COLUMN lambda_detect.alerts.actor_type IS 'userIdentity.type of the caller';
COMMENT ON COLUMN lambda_detect.alerts.access_key_id IS 'Access key used';
COMMENT ON COLUMN lambda_detect.alerts.user_name IS 'User name of the caller';
COMMENT ON COLUMN lambda_detect.alerts.source_ip IS 'Source address of the call, when an IP';
COMMENT ON COLUMN lambda_detect.alerts.source_address IS 'sourceIPAddress verbatim';
COMMENT ON COLUMN lambda_detect.alerts.user_agent IS 'User agent of the call';
COMMENT ON COLUMN lambda_detect.alerts.request_parameters IS 'requestParameters of the event';
COMMENT ON COLUMN lambda_detect.alerts.response_elements IS 'responseElements of the event (the resulting policy statement)';
COMMENT ON COLUMN lambda_detect.alerts.status IS 'open, acknowledged or closed';
COMMENT ON COLUMN lambda_detect.alerts.status_changed_at IS 'When status last changed';
COMMENT ON COLUMN lambda_detect.alerts.status_changed_by IS 'Who last changed status (the current role)';
COMMENT ON COLUMN lambda_detect.alerts.status_note IS 'Analyst''s note on the last status change';

CREATE INDEX alerts_detected_at_idx ON lambda_detect.alerts (detected_at);
COMMENT ON INDEX lambda_detect.alerts_detected_at_idx IS 'Recent alerts first';

CREATE INDEX alerts_open_idx ON lambda_detect.alerts (alert_id) WHERE status <> 'closed';
COMMENT ON INDEX lambda_detect.alerts_open_idx IS 'The triage queue: alerts not yet closed';

-- Builds the NOTIFY payload of one alert.  Values are cut so that the JSON
-- text stays under NOTIFY's 8000-byte limit whatever the event held: first
-- at 256 characters, then 64, then 16.  At 64 the payload always fits (ten
-- text values of at most 64 characters, each at most 6 bytes once escaped),
-- so the last pass is a margin, not a hope.
CREATE FUNCTION lambda_detect.alert_notify_payload(a lambda_detect.alerts, kind text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cut     integer;
    payload text;
BEGIN
    FOREACH cut IN ARRAY ARRAY[256, 64, 16] LOOP
        payload := pg_catalog.jsonb_build_object(
            'kind', kind,
            'alert_id', a.alert_id,
            'rule', pg_catalog.left(a.rule, cut),
            'rule_version', a.rule_version,
            'event_id', pg_catalog.left(a.event_id, cut),
            'severity', pg_catalog.left(a.severity, cut),
            'risk_score', a.risk_score,
            'status', a.status,
            'event_time', a.event_time,
            'account_id', pg_catalog.left(a.account_id, cut),
            'aws_region', pg_catalog.left(a.aws_region, cut),
            'function_name', pg_catalog.left(a.function_name, cut),
            'statement_id', pg_catalog.left(a.statement_id, cut),
            'principal', pg_catalog.left(a.principal, cut),
            'actor_arn', pg_catalog.left(a.actor_arn, cut),
            'source_ip', pg_catalog.left(a.source_address, cut))::text;
        EXIT WHEN pg_catalog.octet_length(payload) < 7900;
    END LOOP;
    RETURN payload;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_notify_payload(lambda_detect.alerts, text) IS
    'Compact JSON of an alert for NOTIFY, always under the 8000-byte limit (long values are cut to 256, 64 or 16 characters; the alerts table has them whole)';

-- SECURITY DEFINER so that an analyst allowed to UPDATE alerts.status needs
-- no grant on the payload function; everything it calls is qualified.
CREATE FUNCTION lambda_detect.notify_alert()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('lambda_detect_alerts',
        lambda_detect.alert_notify_payload(NEW,
            CASE TG_OP WHEN 'INSERT' THEN 'new' ELSE 'status' END));
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION lambda_detect.notify_alert() IS
    'Trigger function: NOTIFY lambda_detect_alerts with the alert''s compact payload (kind new or status)';

CREATE TRIGGER alerts_notify_insert
    AFTER INSERT ON lambda_detect.alerts
    FOR EACH ROW EXECUTE FUNCTION lambda_detect.notify_alert();

COMMENT ON TRIGGER alerts_notify_insert ON lambda_detect.alerts IS
    'Sends each new alert to LISTEN lambda_detect_alerts';

CREATE TRIGGER alerts_notify_status
    AFTER UPDATE OF status ON lambda_detect.alerts
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION lambda_detect.notify_alert();

COMMENT ON TRIGGER alerts_notify_status ON lambda_detect.alerts IS
    'Sends status changes to LISTEN lambda_detect_alerts';

CREATE FUNCTION lambda_detect.stamp_alert_status()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_changed_at := pg_catalog.now();
        NEW.status_changed_by := pg_catalog.current_user();
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION lambda_detect.stamp_alert_status() IS
    'Trigger function: records who changed an alert''s status and when';

CREATE TRIGGER alerts_stamp_status
    BEFORE UPDATE OF status ON lambda_detect.alerts
    FOR EACH ROW EXECUTE FUNCTION lambda_detect.stamp_alert_status();

COMMENT ON TRIGGER alerts_stamp_status ON lambda_detect.alerts IS
    'Keeps status_changed_at and status_changed_by current';
-- The seed rule's investigation guide, answered by SQL, and alert triage.
--
-- Each step of the guide is a function over an alert id:
--
--   alert_actor           who did it; have they (or their access key) done it before
--   alert_request         what was granted, how narrowly, the resulting policy statement
--   alert_source          where from: address seen before?, known network?, which tool
--   alert_timing          when: inside or outside business hours, in the organisation's zone
--   alert_related_events  what else the actor, the access key or the address did around it
--   alert_remediation     the aws CLI commands that revert the grant and verify it
--   investigate           all of the above as one JSON document
--
-- Triage moves an alert open -> acknowledged -> closed (with a resolution)
-- through acknowledge_alert() and close_alert(); a trigger enforces the same
-- transitions on direct UPDATEs.  Views: open_alerts (the queue by severity
-- and account) and alerts_ecs (alerts under Elastic's field names).
--
-- Settings (time zone, business hours, history, correlation window) live in
-- the table investigation_settings, which holds at most one row: with no row
-- the defaults apply (UTC, Monday to Friday 09:00-18:00, 90 days, 1 hour).
-- A seeded row would not survive pg_dump (CREATE EXTENSION would recreate it
-- and the restore would collide with it), so the table starts empty.
--
-- No function here is SECURITY DEFINER: each runs with its caller's
-- privileges (SELECT on the tables it reads, UPDATE on the alert columns
-- triage changes), so that status_changed_by records the analyst.

-- ---------------------------------------------------------------------------
-- Tables the investigation needs

CREATE TABLE lambda_detect.known_networks (
    network  cidr        PRIMARY KEY,
    name     text        NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT known_networks_name_check CHECK (name <> '')
);

COMMENT ON TABLE lambda_detect.known_networks IS
    'The organisation''s own networks (offices, VPN egress, CI runners): a source address inside one is expected';
COMMENT ON COLUMN lambda_detect.known_networks.network IS 'IPv4 or IPv6 network, e.g. 198.51.100.0/24; networks may nest (the most specific match is reported)';
COMMENT ON COLUMN lambda_detect.known_networks.name IS 'What the network is, e.g. office VPN egress';
COMMENT ON COLUMN lambda_detect.known_networks.added_at IS 'When the network was added';

SELECT pg_catalog.pg_extension_config_dump('lambda_detect.known_networks', '');

CREATE TABLE lambda_detect.investigation_settings (
    singleton          boolean   NOT NULL DEFAULT true PRIMARY KEY,
    time_zone          text      NOT NULL DEFAULT 'UTC',
    business_hours_start time    NOT NULL DEFAULT '09:00',
    business_hours_end time      NOT NULL DEFAULT '18:00',
    business_days      integer[] NOT NULL DEFAULT '{1,2,3,4,5}',
    history            interval  NOT NULL DEFAULT '90 days',
    correlation_window interval  NOT NULL DEFAULT '1 hour',
    CONSTRAINT investigation_settings_singleton_check CHECK (singleton),
    -- an unknown zone raises 22023 "time zone ... not recognized"
    CONSTRAINT investigation_settings_time_zone_check
        CHECK (pg_catalog.timezone(time_zone, timestamptz '2000-01-01 00:00:00+00') IS NOT NULL),
    CONSTRAINT investigation_settings_business_days_check
        CHECK (business_days <@ '{1,2,3,4,5,6,7}'::integer[]
               AND pg_catalog.array_ndims(business_days) IS NOT DISTINCT FROM 1),
    CONSTRAINT investigation_settings_history_check
        CHECK (history > interval '0' AND history < interval '100 years'),
    CONSTRAINT investigation_settings_correlation_window_check
        CHECK (correlation_window > interval '0' AND correlation_window <= interval '30 days')
);

COMMENT ON TABLE lambda_detect.investigation_settings IS
    'Settings of the investigation functions: at most one row; with none, the defaults of the columns apply (UTC, Mon-Fri 09:00-18:00, 90 days, 1 hour)';
COMMENT ON COLUMN lambda_detect.investigation_settings.singleton IS 'Always true: the key that keeps the table to one row';
COMMENT ON COLUMN lambda_detect.investigation_settings.time_zone IS 'Time zone of business hours (an IANA name such as Europe/Paris); default UTC';
COMMENT ON COLUMN lambda_detect.investigation_settings.business_hours_start IS 'Start of business hours, local time (inclusive); default 09:00';
COMMENT ON COLUMN lambda_detect.investigation_settings.business_hours_end IS 'End of business hours, local time (exclusive); earlier than the start for a shift across midnight; equal to the start for whole days; default 18:00';
COMMENT ON COLUMN lambda_detect.investigation_settings.business_days IS 'Business days as ISO day numbers (1 = Monday ... 7 = Sunday); a shift across midnight belongs to the day it starts; default Monday to Friday';
COMMENT ON COLUMN lambda_detect.investigation_settings.history IS 'How far before an alert to look for earlier activity (first seen, done before); default 90 days';
COMMENT ON COLUMN lambda_detect.investigation_settings.correlation_window IS 'How far before and after an alert alert_related_events() looks; default 1 hour';

SELECT pg_catalog.pg_extension_config_dump('lambda_detect.investigation_settings', '');

CREATE FUNCTION lambda_detect.effective_investigation_settings()
RETURNS lambda_detect.investigation_settings
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(
        (SELECT s FROM lambda_detect.investigation_settings s),
        ROW(true, 'UTC', time '09:00', time '18:00', '{1,2,3,4,5}'::integer[],
            interval '90 days', interval '1 hour')::lambda_detect.investigation_settings)
$$;

COMMENT ON FUNCTION lambda_detect.effective_investigation_settings() IS
    'The investigation settings in effect: the row of investigation_settings, or the defaults when it has none';

-- Correlating by access key is a step of the guide.
CREATE INDEX events_access_key_time_idx ON lambda_detect.events (access_key_id, event_time);
COMMENT ON INDEX lambda_detect.events_access_key_time_idx IS 'Investigation: what else was done with this access key around an alert';

-- ---------------------------------------------------------------------------
-- Triage columns and rules on alerts

ALTER TABLE lambda_detect.alerts
    ADD COLUMN resolution text
        CONSTRAINT alerts_resolution_check
        CHECK (resolution IN ('true_positive', 'false_positive', 'benign'));
ALTER TABLE lambda_detect.alerts
    ADD CONSTRAINT alerts_closed_resolution_check
        CHECK ((status = 'closed') = (resolution IS NOT NULL));

COMMENT ON COLUMN lambda_detect.alerts.resolution IS
    'How a closed alert was resolved: true_positive, false_positive or benign; NULL while not closed';
COMMENT ON CONSTRAINT alerts_closed_resolution_check ON lambda_detect.alerts IS
    'A closed alert has a resolution, an alert not closed has none';

CREATE FUNCTION lambda_detect.check_alert_transition()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- a status outside the three is left to alerts_status_check
    IF NEW.status NOT IN ('open', 'acknowledged', 'closed') THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'closed'
       AND (NEW.status <> 'closed' OR NEW.resolution IS DISTINCT FROM OLD.resolution) THEN
        RAISE EXCEPTION 'alert % is closed', OLD.alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('It was closed as %s by %s at %s.',
                                             OLD.resolution, OLD.status_changed_by, OLD.status_changed_at),
                  HINT = 'A closed alert stays closed: its resolution is the record of the decision.';
    END IF;
    IF OLD.status = 'acknowledged' AND NEW.status = 'open' THEN
        RAISE EXCEPTION 'alert % cannot go back from acknowledged to open', OLD.alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Alerts move open -> acknowledged -> closed; close it with lambda_detect.close_alert().';
    END IF;
    IF NEW.status = 'closed' AND NEW.resolution IS NULL THEN
        RAISE EXCEPTION 'closing alert % needs a resolution', OLD.alert_id
            USING ERRCODE = 'check_violation',
                  HINT = 'Use lambda_detect.close_alert(alert_id, resolution, note) with resolution true_positive, false_positive or benign.';
    END IF;
    IF NEW.status <> 'closed' AND NEW.resolution IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is not closed and cannot have a resolution', OLD.alert_id
            USING ERRCODE = 'check_violation',
                  HINT = 'A resolution is set when the alert is closed, with lambda_detect.close_alert().';
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION lambda_detect.check_alert_transition() IS
    'Trigger function: alerts move open -> acknowledged -> closed (or open -> closed), a closed alert has a resolution and stays closed';

CREATE TRIGGER alerts_check_transition
    BEFORE UPDATE OF status, resolution ON lambda_detect.alerts
    FOR EACH ROW EXECUTE FUNCTION lambda_detect.check_alert_transition();

COMMENT ON TRIGGER alerts_check_transition ON lambda_detect.alerts IS
    'Refuses status changes that skip back (closed -> anything, acknowledged -> open) and closing without a resolution, also for direct UPDATEs';

-- ---------------------------------------------------------------------------
-- Small documented helpers

CREATE FUNCTION lambda_detect.find_alert(alert_id bigint)
RETURNS lambda_detect.alerts
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_alert lambda_detect.alerts;
BEGIN
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT a.* INTO found_alert FROM lambda_detect.alerts a WHERE a.alert_id = find_alert.alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'SELECT alert_id, status, function_name FROM lambda_detect.alerts ORDER BY alert_id DESC lists the alerts.';
    END IF;
    RETURN found_alert;
END;
$$;

COMMENT ON FUNCTION lambda_detect.find_alert(bigint) IS
    'The alert with this id; raises P0002 when there is none and 22004 for NULL (every investigation function starts here)';

CREATE FUNCTION lambda_detect.shell_quote(value text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN value OPERATOR(pg_catalog.~) '^[A-Za-z0-9:/._-]+$' THEN value
        ELSE '''' OPERATOR(pg_catalog.||)
             pg_catalog.replace(value, '''', '''\''''') OPERATOR(pg_catalog.||) ''''
    END
$$;

COMMENT ON FUNCTION lambda_detect.shell_quote(text) IS
    'The value as one word for a POSIX shell: as is when made only of A-Z a-z 0-9 : / . _ -, else in single quotes with each embedded quote written ''\''';

CREATE FUNCTION lambda_detect.cli_option(option text, value text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF option !~ '^[a-z][a-z0-9-]*$' THEN
        RAISE EXCEPTION 'invalid option name "%"', option
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An option name is lower-case letters, digits and dashes, without the leading --.';
    END IF;
    -- a value that starts with a dash would be read as an option: glue it on
    IF pg_catalog.left(value, 1) = '-' THEN
        RETURN '--' || option || '=' || lambda_detect.shell_quote(value);
    END IF;
    RETURN '--' || option || ' ' || lambda_detect.shell_quote(value);
END;
$$;

COMMENT ON FUNCTION lambda_detect.cli_option(text, text) IS
    'One command-line option for the aws CLI, shell-quoted: --option value, or --option=value when the value starts with a dash; NULL when the value is NULL';

CREATE FUNCTION lambda_detect.classify_user_agent(user_agent text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        -- infrastructure as code first: their agents embed the SDK they use
        WHEN ua ~ '(terraform|hashicorp|aws-cdk|cloudformation|pulumi)' THEN 'iac'
        WHEN ua ~ 'aws-cli/' THEN 'cli'
        WHEN ua ~ '(aws internal|aws-internal/|console\.amazonaws\.com|signin\.amazonaws\.com|^console\.[a-z0-9.-]*amazonaws\.com|^\[?[a-z0-9]*console/)' THEN 'console'
        WHEN ua ~ '(aws-sdk-|boto3/|botocore/)' THEN 'sdk'
        ELSE 'other'
    END
      FROM (SELECT pg_catalog.lower(user_agent) AS ua) s
$$;

COMMENT ON FUNCTION lambda_detect.classify_user_agent(text) IS
    'What made an API call, from its user agent (case-insensitive): iac (Terraform, HashiCorp, aws-cdk, CloudFormation, Pulumi), cli (aws-cli/), console (AWS Internal, aws-internal/, console.amazonaws.com, signin.amazonaws.com, console.<service>.amazonaws.com, <Service>Console/), sdk (aws-sdk-*, Boto3/, botocore/), else other; NULL for NULL';

CREATE FUNCTION lambda_detect.parse_policy_statement(statement text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parsed jsonb;
BEGIN
    BEGIN
        parsed := statement::jsonb;
    EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
        RETURN NULL;
    END;
    IF pg_catalog.jsonb_typeof(parsed) <> 'object' THEN
        RETURN NULL;
    END IF;
    RETURN parsed;
END;
$$;

COMMENT ON FUNCTION lambda_detect.parse_policy_statement(text) IS
    'The policy statement that AddPermission returns (responseElements.statement, a JSON string) as a JSON object; NULL, never an error, when it is not valid JSON or not an object';

CREATE FUNCTION lambda_detect.off_hours(
    at_time timestamptz,
    time_zone text DEFAULT NULL,
    hours_start time DEFAULT NULL,
    hours_end time DEFAULT NULL,
    business_days integer[] DEFAULT NULL,
    OUT local_time timestamp,
    OUT local_day text,
    OUT zone text,
    OUT off_hours boolean,
    OUT reason text)
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    settings   lambda_detect.investigation_settings := lambda_detect.effective_investigation_settings();
    day_start  time := COALESCE(hours_start, settings.business_hours_start);
    day_end    time := COALESCE(hours_end, settings.business_hours_end);
    days       integer[] := COALESCE(business_days, settings.business_days);
    clock      time;
    dow        integer;
    shift_day  integer;
    in_hours   boolean;
BEGIN
    IF at_time IS NULL THEN
        RAISE EXCEPTION 'at_time must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT pg_catalog.isfinite(at_time) THEN
        RAISE EXCEPTION 'at_time must be a finite time' USING ERRCODE = 'datetime_field_overflow';
    END IF;
    IF NOT (days <@ '{1,2,3,4,5,6,7}'::integer[]) THEN
        RAISE EXCEPTION 'business_days must be ISO day numbers, 1 (Monday) to 7 (Sunday)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    zone := COALESCE(time_zone, settings.time_zone);
    local_time := pg_catalog.timezone(zone, at_time);
    local_day := pg_catalog.to_char(local_time, 'FMDay');
    clock := local_time::time;
    dow := pg_catalog.date_part('isodow', local_time)::integer;
    shift_day := dow;
    IF day_start = day_end THEN
        in_hours := true;
    ELSIF day_start < day_end THEN
        in_hours := clock >= day_start AND clock < day_end;
    ELSIF clock >= day_start THEN
        in_hours := true;
    ELSIF clock < day_end THEN
        -- the small hours belong to the shift that started the day before
        in_hours := true;
        shift_day := CASE WHEN dow = 1 THEN 7 ELSE dow - 1 END;
    ELSE
        in_hours := false;
    END IF;
    IF in_hours AND NOT (shift_day = ANY (days)) THEN
        off_hours := true;
        reason := 'not a business day';
    ELSIF NOT in_hours AND NOT (dow = ANY (days)) THEN
        off_hours := true;
        reason := 'not a business day';
    ELSIF NOT in_hours THEN
        off_hours := true;
        reason := 'outside business hours';
    ELSE
        off_hours := false;
    END IF;
END;
$$;

COMMENT ON FUNCTION lambda_detect.off_hours(timestamptz, text, time, time, integer[]) IS
    'Whether a time falls outside business hours: local time and day in the zone, and the reason (not a business day, outside business hours); NULL arguments take investigation_settings';

-- ---------------------------------------------------------------------------
-- The investigation guide, one function per step

-- Identify the actor
CREATE FUNCTION lambda_detect.alert_actor(alert_id bigint, history interval DEFAULT NULL)
RETURNS TABLE (
    actor_arn text,
    actor_type text,
    actor_account_id text,
    access_key_id text,
    user_name text,
    history_start timestamptz,
    actor_first_seen timestamptz,
    actor_prior_events bigint,
    actor_prior_grants bigint,
    actor_last_grant timestamptz,
    new_actor boolean,
    access_key_first_seen timestamptz,
    access_key_prior_events bigint,
    access_key_prior_grants bigint,
    access_key_last_grant timestamptz,
    new_access_key boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a      lambda_detect.alerts := lambda_detect.find_alert(alert_actor.alert_id);
    span   interval := COALESCE(alert_actor.history,
                                           (lambda_detect.effective_investigation_settings()).history);
BEGIN
    IF NOT span > interval '0' THEN
        RAISE EXCEPTION 'history must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    actor_arn := a.actor_arn;
    actor_type := a.actor_type;
    access_key_id := a.access_key_id;
    user_name := a.user_name;
    history_start := a.event_time - span;
    SELECT e.actor_account_id INTO actor_account_id
      FROM lambda_detect.events e WHERE e.event_id = a.event_id;

    -- earlier events of the actor: [event_time - history, event_time], the alerted one aside
    IF a.actor_arn IS NOT NULL THEN
        SELECT pg_catalog.min(e.event_time), pg_catalog.count(*),
               pg_catalog.count(*) FILTER (WHERE e.event_source = 'lambda.amazonaws.com'
                                             AND e.event_name LIKE 'AddPermission%'
                                             AND e.outcome = 'success'),
               pg_catalog.max(e.event_time) FILTER (WHERE e.event_source = 'lambda.amazonaws.com'
                                                      AND e.event_name LIKE 'AddPermission%'
                                                      AND e.outcome = 'success')
          INTO actor_first_seen, actor_prior_events, actor_prior_grants, actor_last_grant
          FROM lambda_detect.events e
         WHERE e.actor_arn = a.actor_arn
           AND e.event_time >= a.event_time - span AND e.event_time <= a.event_time
           AND e.event_id <> a.event_id;
        new_actor := actor_prior_events = 0;
    END IF;
    IF a.access_key_id IS NOT NULL THEN
        SELECT pg_catalog.min(e.event_time), pg_catalog.count(*),
               pg_catalog.count(*) FILTER (WHERE e.event_source = 'lambda.amazonaws.com'
                                             AND e.event_name LIKE 'AddPermission%'
                                             AND e.outcome = 'success'),
               pg_catalog.max(e.event_time) FILTER (WHERE e.event_source = 'lambda.amazonaws.com'
                                                      AND e.event_name LIKE 'AddPermission%'
                                                      AND e.outcome = 'success')
          INTO access_key_first_seen, access_key_prior_events, access_key_prior_grants, access_key_last_grant
          FROM lambda_detect.events e
         WHERE e.access_key_id = a.access_key_id
           AND e.event_time >= a.event_time - span AND e.event_time <= a.event_time
           AND e.event_id <> a.event_id;
        new_access_key := access_key_prior_events = 0;
    END IF;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_actor(bigint, interval) IS
    'Guide step "identify the actor": ARN, type, account, access key, user name, and over the history before the alert (default from investigation_settings) when the actor and the key were first seen, how many events and successful AddPermission calls they made';

-- Request details
CREATE FUNCTION lambda_detect.alert_request(alert_id bigint)
RETURNS TABLE (
    event_name text,
    function_name text,
    function_arn text,
    qualifier text,
    statement_id text,
    action text,
    principal text,
    source_arn text,
    source_account text,
    principal_org_id text,
    function_url_auth_type text,
    event_source_token text,
    scoped_by jsonb,
    unrestricted boolean,
    policy_statement jsonb,
    policy_statement_text text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a   lambda_detect.alerts := lambda_detect.find_alert(alert_request.alert_id);
    rp  jsonb := CASE WHEN pg_catalog.jsonb_typeof(a.request_parameters) = 'object'
                      THEN a.request_parameters ELSE '{}'::jsonb END;
    st  jsonb := CASE WHEN pg_catalog.jsonb_typeof(a.response_elements) = 'object'
                      THEN a.response_elements -> 'statement' END;
BEGIN
    event_name := a.event_name;
    function_name := a.function_name;
    function_arn := a.function_arn;
    qualifier := NULLIF(rp ->> 'qualifier', '');
    statement_id := a.statement_id;
    action := a.action;
    principal := a.principal;
    source_arn := NULLIF(rp ->> 'sourceArn', '');
    source_account := NULLIF(rp ->> 'sourceAccount', '');
    principal_org_id := NULLIF(rp ->> 'principalOrgID', '');
    function_url_auth_type := NULLIF(rp ->> 'functionUrlAuthType', '');
    event_source_token := NULLIF(rp ->> 'eventSourceToken', '');
    scoped_by := a.scoped_by;
    unrestricted := a.scoped_by = '{}'::jsonb;
    policy_statement_text := st #>> '{}';
    policy_statement := CASE pg_catalog.jsonb_typeof(st)
                            WHEN 'string' THEN lambda_detect.parse_policy_statement(policy_statement_text)
                            WHEN 'object' THEN st
                        END;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_request(bigint) IS
    'Guide step "request details": function (name, ARN, qualifier), statement id, action, principal, each narrowing condition, whether none applies, and the resulting policy statement parsed (NULL when malformed; the raw text is in policy_statement_text)';

-- Source of the request
CREATE FUNCTION lambda_detect.alert_source(alert_id bigint, history interval DEFAULT NULL)
RETURNS TABLE (
    source_address text,
    source_ip inet,
    ip_first_seen_for_actor timestamptz,
    ip_prior_events_for_actor bigint,
    ip_new_for_actor boolean,
    ip_first_seen_in_account timestamptz,
    ip_prior_events_in_account bigint,
    ip_new_for_account boolean,
    known_network cidr,
    known_network_name text,
    in_known_network boolean,
    user_agent text,
    user_agent_class text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a      lambda_detect.alerts := lambda_detect.find_alert(alert_source.alert_id);
    span   interval := COALESCE(alert_source.history,
                                           (lambda_detect.effective_investigation_settings()).history);
BEGIN
    IF NOT span > interval '0' THEN
        RAISE EXCEPTION 'history must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    source_address := a.source_address;
    source_ip := a.source_ip;
    user_agent := a.user_agent;
    user_agent_class := lambda_detect.classify_user_agent(a.user_agent);
    IF a.source_ip IS NOT NULL THEN
        IF a.actor_arn IS NOT NULL THEN
            SELECT pg_catalog.min(e.event_time), pg_catalog.count(*)
              INTO ip_first_seen_for_actor, ip_prior_events_for_actor
              FROM lambda_detect.events e
             WHERE e.source_ip = a.source_ip AND e.actor_arn = a.actor_arn
               AND e.event_time >= a.event_time - span AND e.event_time <= a.event_time
               AND e.event_id <> a.event_id;
            ip_new_for_actor := ip_prior_events_for_actor = 0;
        END IF;
        IF a.account_id IS NOT NULL THEN
            SELECT pg_catalog.min(e.event_time), pg_catalog.count(*)
              INTO ip_first_seen_in_account, ip_prior_events_in_account
              FROM lambda_detect.events e
             WHERE e.source_ip = a.source_ip AND e.recipient_account_id = a.account_id
               AND e.event_time >= a.event_time - span AND e.event_time <= a.event_time
               AND e.event_id <> a.event_id;
            ip_new_for_account := ip_prior_events_in_account = 0;
        END IF;
        SELECT n.network, n.name INTO known_network, known_network_name
          FROM lambda_detect.known_networks n
         WHERE a.source_ip <<= n.network
         ORDER BY pg_catalog.masklen(n.network) DESC
         LIMIT 1;
        in_known_network := known_network IS NOT NULL;
    END IF;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_source(bigint, interval) IS
    'Guide step "source of the request": address, whether the actor and the account saw it over the history before the alert, the most specific known_networks entry holding it, and the user agent with its class (classify_user_agent); address fields are NULL when the caller was an AWS service';

-- Timestamp context
CREATE FUNCTION lambda_detect.alert_timing(alert_id bigint, time_zone text DEFAULT NULL)
RETURNS TABLE (
    event_time timestamptz,
    ingested_at timestamptz,
    detected_at timestamptz,
    ingest_delay interval,
    zone text,
    local_time timestamp,
    local_day text,
    business_hours text,
    off_hours boolean,
    reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a   lambda_detect.alerts := lambda_detect.find_alert(alert_timing.alert_id);
    s   lambda_detect.investigation_settings := lambda_detect.effective_investigation_settings();
    oh  record;
BEGIN
    SELECT o.* INTO oh FROM lambda_detect.off_hours(a.event_time, alert_timing.time_zone) o;
    event_time := a.event_time;
    ingested_at := a.ingested_at;
    detected_at := a.detected_at;
    ingest_delay := a.ingested_at - a.event_time;
    zone := oh.zone;
    local_time := oh.local_time;
    local_day := oh.local_day;
    business_hours := pg_catalog.format('%s-%s on ISO days %s',
                                        pg_catalog.to_char(s.business_hours_start, 'HH24:MI'),
                                        pg_catalog.to_char(s.business_hours_end, 'HH24:MI'),
                                        pg_catalog.array_to_string(s.business_days, ','));
    off_hours := oh.off_hours;
    reason := oh.reason;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_timing(bigint, text) IS
    'Guide step "timestamp context": when the call happened, was ingested and alerted, its local time and day in the configured zone (or the one given), and whether that is outside business hours (off_hours)';

-- Correlate
CREATE FUNCTION lambda_detect.alert_related_events(alert_id bigint, time_window interval DEFAULT NULL)
RETURNS TABLE (
    matched_by text[],
    time_offset interval,
    event_time timestamptz,
    event_id text,
    event_source text,
    event_name text,
    outcome text,
    error_code text,
    aws_region text,
    recipient_account_id text,
    actor_arn text,
    access_key_id text,
    source_address text,
    user_agent text,
    request_parameters jsonb,
    is_alert_event boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a      lambda_detect.alerts := lambda_detect.find_alert(alert_related_events.alert_id);
    span   interval := COALESCE(alert_related_events.time_window,
                                           (lambda_detect.effective_investigation_settings()).correlation_window);
    lo     timestamptz;
    hi     timestamptz;
BEGIN
    IF NOT span > interval '0' THEN
        RAISE EXCEPTION 'time_window must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    lo := a.event_time - span;
    hi := a.event_time + span;
    -- one arm per investigation index: (actor_arn, event_time),
    -- (access_key_id, event_time), (source_ip, event_time); the arms are
    -- separate so that a busy hour does not turn them into one time scan
    RETURN QUERY
    SELECT pg_catalog.array_remove(ARRAY[
               CASE WHEN e.actor_arn = a.actor_arn THEN 'actor' END,
               CASE WHEN e.access_key_id = a.access_key_id THEN 'access_key' END,
               CASE WHEN e.source_ip = a.source_ip THEN 'source_ip' END], NULL),
           e.event_time - a.event_time,
           e.event_time, e.event_id, e.event_source, e.event_name, e.outcome, e.error_code,
           e.aws_region, e.recipient_account_id, e.actor_arn, e.access_key_id,
           e.source_address, e.user_agent, e.request_parameters,
           e.event_id = a.event_id
      FROM lambda_detect.events e
     WHERE e.event_id IN (
               SELECT x.event_id FROM lambda_detect.events x
                WHERE x.actor_arn = a.actor_arn AND x.event_time >= lo AND x.event_time <= hi
               UNION
               SELECT x.event_id FROM lambda_detect.events x
                WHERE x.access_key_id = a.access_key_id AND x.event_time >= lo AND x.event_time <= hi
               UNION
               SELECT x.event_id FROM lambda_detect.events x
                WHERE x.source_ip = a.source_ip AND x.event_time >= lo AND x.event_time <= hi)
     ORDER BY e.event_time, e.event_id;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_related_events(bigint, interval) IS
    'Guide step "correlate": CloudTrail events by the same actor, access key or source address within the window before and after the alert (default from investigation_settings), in time order, with what matched; the alerted event is included and marked';

-- Outcome and remediation
CREATE FUNCTION lambda_detect.alert_remediation(alert_id bigint)
RETURNS TABLE (
    function_ref text,
    statement_id text,
    qualifier text,
    region text,
    remove_permission_command text,
    get_policy_command text,
    note text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a   lambda_detect.alerts := lambda_detect.find_alert(alert_remediation.alert_id);
BEGIN
    function_ref := COALESCE(a.function_arn, a.function_name);
    statement_id := a.statement_id;
    IF pg_catalog.jsonb_typeof(a.request_parameters -> 'qualifier') = 'string' THEN
        qualifier := NULLIF(a.request_parameters ->> 'qualifier', '');
    END IF;
    region := COALESCE(NULLIF(a.aws_region, ''),
                                  CASE WHEN a.function_arn LIKE 'arn:%'
                                       THEN NULLIF(pg_catalog.split_part(a.function_arn, ':', 4), '') END);
    IF function_ref IS NULL OR function_ref = '' THEN
        note := 'the event names no function: no command can be built';
    ELSIF region IS NULL THEN
        note := 'the event names no region: no command can be built';
    ELSIF a.event_name LIKE 'CreateFunctionUrlConfig%' OR a.event_name LIKE 'UpdateFunctionUrlConfig%' THEN
        -- a public function URL is no policy statement: the revert is to
        -- require IAM authentication on the URL (or to delete the URL)
        remove_permission_command := pg_catalog.concat_ws(' ', 'aws lambda update-function-url-config',
            lambda_detect.cli_option('function-name', function_ref),
            '--auth-type AWS_IAM',
            lambda_detect.cli_option('qualifier', qualifier),
            lambda_detect.cli_option('region', region));
        get_policy_command := pg_catalog.concat_ws(' ', 'aws lambda get-function-url-config',
            lambda_detect.cli_option('function-name', function_ref),
            lambda_detect.cli_option('qualifier', qualifier),
            lambda_detect.cli_option('region', region));
        note := 'the URL was public (AuthType NONE): update-function-url-config makes it require IAM '
                '(or delete-function-url-config removes it); get-function-url-config must then show AuthType AWS_IAM';
    ELSE
        get_policy_command := pg_catalog.concat_ws(' ', 'aws lambda get-policy',
            lambda_detect.cli_option('function-name', function_ref),
            lambda_detect.cli_option('qualifier', qualifier),
            lambda_detect.cli_option('region', region));
        IF statement_id IS NULL OR statement_id = '' THEN
            note := 'the event names no statement id: find the statement with get-policy';
        ELSE
            remove_permission_command := pg_catalog.concat_ws(' ', 'aws lambda remove-permission',
                lambda_detect.cli_option('function-name', function_ref),
                lambda_detect.cli_option('statement-id', statement_id),
                lambda_detect.cli_option('qualifier', qualifier),
                lambda_detect.cli_option('region', region));
            note := pg_catalog.format('after remove-permission, get-policy must not show statement %s '
                                      '(or must fail with ResourceNotFoundException when it was the last one)',
                                      statement_id);
        END IF;
    END IF;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_remediation(bigint) IS
    'Guide step "outcome and remediation": the aws lambda remove-permission command that reverts the grant and the get-policy command that verifies it (function ARN, statement id, qualifier when the grant had one, region; shell-quoted); for a public function URL, update-function-url-config --auth-type AWS_IAM and get-function-url-config instead';

-- Everything at once
CREATE FUNCTION lambda_detect.investigate(alert_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a        lambda_detect.alerts := lambda_detect.find_alert(investigate.alert_id);
    related  jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object(
               'window', (lambda_detect.effective_investigation_settings()).correlation_window,
               'events', pg_catalog.count(*),
               'by_actor', pg_catalog.count(*) FILTER (WHERE 'actor' = ANY (r.matched_by)),
               'by_access_key', pg_catalog.count(*) FILTER (WHERE 'access_key' = ANY (r.matched_by)),
               'by_source_ip', pg_catalog.count(*) FILTER (WHERE 'source_ip' = ANY (r.matched_by)),
               'failed', pg_catalog.count(*) FILTER (WHERE r.outcome = 'failure'),
               'before', pg_catalog.count(*) FILTER (WHERE r.time_offset < interval '0'),
               'after', pg_catalog.count(*) FILTER (WHERE r.time_offset > interval '0'))
      INTO related
      FROM lambda_detect.alert_related_events(a.alert_id) r
     WHERE NOT r.is_alert_event;
    RETURN pg_catalog.jsonb_build_object(
        'alert', pg_catalog.jsonb_build_object(
            'alert_id', a.alert_id, 'rule', a.rule, 'severity', a.severity,
            'risk_score', a.risk_score, 'status', a.status, 'resolution', a.resolution,
            'event_id', a.event_id, 'account_id', a.account_id, 'aws_region', a.aws_region,
            'reason', a.reason),
        'actor', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_actor(a.alert_id) x),
        'request', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_request(a.alert_id) x),
        'source', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_source(a.alert_id) x),
        'timing', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_timing(a.alert_id) x),
        'related', related,
        'remediation', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_remediation(a.alert_id) x));
END;
$$;

COMMENT ON FUNCTION lambda_detect.investigate(bigint) IS
    'The whole investigation guide for one alert as one JSON document: alert, actor, request, source, timing, a count of related events, remediation';

-- ---------------------------------------------------------------------------
-- Triage

CREATE FUNCTION lambda_detect.acknowledge_alert(alert_id bigint, note text DEFAULT NULL)
RETURNS lambda_detect.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a  lambda_detect.alerts;
BEGIN
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT x.* INTO a FROM lambda_detect.alerts x
     WHERE x.alert_id = acknowledge_alert.alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'SELECT alert_id, status, function_name FROM lambda_detect.alerts ORDER BY alert_id DESC lists the alerts.';
    END IF;
    IF a.status = 'acknowledged' THEN
        RAISE EXCEPTION 'alert % is already acknowledged', alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('It was acknowledged by %s at %s.', a.status_changed_by, a.status_changed_at),
                  HINT = 'Close it with lambda_detect.close_alert(alert_id, resolution, note).';
    ELSIF a.status = 'closed' THEN
        RAISE EXCEPTION 'alert % is closed', alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('It was closed as %s by %s at %s.', a.resolution, a.status_changed_by, a.status_changed_at),
                  HINT = 'A closed alert stays closed: its resolution is the record of the decision.';
    END IF;
    UPDATE lambda_detect.alerts x SET status = 'acknowledged', status_note = note
     WHERE x.alert_id = acknowledge_alert.alert_id
    RETURNING x.* INTO a;
    RETURN a;
END;
$$;

COMMENT ON FUNCTION lambda_detect.acknowledge_alert(bigint, text) IS
    'Triage: an open alert becomes acknowledged, with an optional note; records who (current_user) and when, and notifies lambda_detect_alerts; returns the alert';

CREATE FUNCTION lambda_detect.close_alert(alert_id bigint, resolution text, note text)
RETURNS lambda_detect.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a  lambda_detect.alerts;
BEGIN
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF resolution IS NULL THEN
        RAISE EXCEPTION 'closing an alert needs a resolution'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'The resolution is true_positive, false_positive or benign.';
    END IF;
    IF resolution NOT IN ('true_positive', 'false_positive', 'benign') THEN
        RAISE EXCEPTION 'invalid resolution "%"', resolution
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The resolution is true_positive, false_positive or benign.';
    END IF;
    IF pg_catalog.btrim(COALESCE(note, '')) = '' THEN
        RAISE EXCEPTION 'closing an alert needs a note'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say why: what was found, who confirmed it, what was done.';
    END IF;
    SELECT x.* INTO a FROM lambda_detect.alerts x
     WHERE x.alert_id = close_alert.alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'SELECT alert_id, status, function_name FROM lambda_detect.alerts ORDER BY alert_id DESC lists the alerts.';
    END IF;
    IF a.status = 'closed' THEN
        RAISE EXCEPTION 'alert % is already closed', alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('It was closed as %s by %s at %s.', a.resolution, a.status_changed_by, a.status_changed_at),
                  HINT = 'A closed alert stays closed: its resolution is the record of the decision.';
    END IF;
    UPDATE lambda_detect.alerts x
       SET status = 'closed', resolution = close_alert.resolution, status_note = note
     WHERE x.alert_id = close_alert.alert_id
    RETURNING x.* INTO a;
    RETURN a;
END;
$$;

COMMENT ON FUNCTION lambda_detect.close_alert(bigint, text, text) IS
    'Triage: an open or acknowledged alert becomes closed with a resolution (true_positive, false_positive, benign) and a note; records who (current_user) and when, and notifies lambda_detect_alerts; returns the alert';

CREATE VIEW lambda_detect.open_alerts WITH (security_invoker = true) AS
SELECT a.severity,
       a.account_id,
       pg_catalog.count(*) FILTER (WHERE a.status = 'open') AS open,
       pg_catalog.count(*) FILTER (WHERE a.status = 'acknowledged') AS acknowledged,
       pg_catalog.count(*) AS total,
       pg_catalog.max(a.risk_score) AS max_risk_score,
       pg_catalog.min(a.event_time) AS oldest_event_time,
       pg_catalog.max(a.detected_at) AS newest_detected_at,
       pg_catalog.array_agg(a.alert_id ORDER BY a.alert_id) AS alert_ids
  FROM lambda_detect.alerts a
 WHERE a.status <> 'closed'
 GROUP BY a.severity, a.account_id
 ORDER BY CASE a.severity WHEN 'critical' THEN 1 WHEN 'high' THEN 2 WHEN 'medium' THEN 3 ELSE 4 END,
          pg_catalog.count(*) DESC, a.account_id;

COMMENT ON VIEW lambda_detect.open_alerts IS
    'The triage queue: alerts not yet closed, by severity (most severe first) and account';
COMMENT ON COLUMN lambda_detect.open_alerts.severity IS 'Severity of the alerts';
COMMENT ON COLUMN lambda_detect.open_alerts.account_id IS 'Account that owns the functions (NULL when the event named none)';
COMMENT ON COLUMN lambda_detect.open_alerts.open IS 'Alerts still open (nobody has looked)';
COMMENT ON COLUMN lambda_detect.open_alerts.acknowledged IS 'Alerts acknowledged, not yet closed';
COMMENT ON COLUMN lambda_detect.open_alerts.total IS 'open + acknowledged';
COMMENT ON COLUMN lambda_detect.open_alerts.max_risk_score IS 'Highest risk score among them';
COMMENT ON COLUMN lambda_detect.open_alerts.oldest_event_time IS 'When the oldest of their API calls happened';
COMMENT ON COLUMN lambda_detect.open_alerts.newest_detected_at IS 'When the newest of them was created';
COMMENT ON COLUMN lambda_detect.open_alerts.alert_ids IS 'Their alert ids, in order';

CREATE VIEW lambda_detect.alerts_ecs WITH (security_invoker = true) AS
SELECT a.alert_id                       AS "lambda_detect.alert_id",
       a.detected_at                    AS "@timestamp",
       a.event_time                     AS "kibana.alert.original_time",
       a.ingested_at                    AS "event.ingested",
       'signal'::text                   AS "event.kind",
       'aws.cloudtrail'::text           AS "event.dataset",
       e.event_source                   AS "event.provider",
       a.event_name                     AS "event.action",
       a.event_id                       AS "event.id",
       e.outcome                        AS "event.outcome",
       'aws'::text                      AS "cloud.provider",
       a.account_id                     AS "cloud.account.id",
       a.aws_region                     AS "cloud.region",
       a.source_ip                      AS "source.ip",
       a.source_address                 AS "source.address",
       a.user_agent                     AS "user_agent.original",
       a.user_name                      AS "user.name",
       a.actor_arn                      AS "aws.cloudtrail.user_identity.arn",
       a.actor_type                     AS "aws.cloudtrail.user_identity.type",
       a.access_key_id                  AS "aws.cloudtrail.user_identity.access_key_id",
       a.request_parameters::text       AS "aws.cloudtrail.request_parameters",
       a.request_parameters             AS "aws.cloudtrail.flattened.request_parameters",
       a.response_elements::text        AS "aws.cloudtrail.response_elements",
       a.response_elements              AS "aws.cloudtrail.flattened.response_elements",
       e.request_id                     AS "aws.cloudtrail.request_id",
       e.event_type                     AS "aws.cloudtrail.event_type",
       r.rule_id::text                  AS "rule.id",
       r.name                           AS "rule.name",
       a.rule_version::text             AS "rule.version",
       r.rule_id::text                  AS "kibana.alert.rule.rule_id",
       r.name                           AS "kibana.alert.rule.name",
       a.severity                       AS "kibana.alert.severity",
       a.risk_score                     AS "kibana.alert.risk_score",
       a.reason                         AS "kibana.alert.reason",
       a.status                         AS "kibana.alert.workflow_status",
       a.status_changed_at              AS "kibana.alert.workflow_status_updated_at",
       a.status_changed_by              AS "lambda_detect.status_changed_by",
       a.status_note                    AS "lambda_detect.status_note",
       a.resolution                     AS "lambda_detect.resolution",
       a.function_arn                   AS "lambda_detect.function_arn",
       a.statement_id                   AS "lambda_detect.statement_id",
       a.principal                      AS "lambda_detect.principal",
       a.scoped_by                      AS "lambda_detect.scoped_by"
  FROM lambda_detect.alerts a
  LEFT JOIN lambda_detect.events e ON e.event_id = a.event_id
  LEFT JOIN lambda_detect.rules r ON r.rule = a.rule;

COMMENT ON VIEW lambda_detect.alerts_ecs IS
    'Alerts under the field names of Elastic Security alerts and its CloudTrail integration (ECS), for people coming from Elastic; quote the names: "event.action"';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.alert_id" IS 'alerts.alert_id';
COMMENT ON COLUMN lambda_detect.alerts_ecs."@timestamp" IS 'alerts.detected_at: when the alert was created (as in Elastic alert documents)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.original_time" IS 'alerts.event_time: CloudTrail eventTime of the matched event';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.ingested" IS 'alerts.ingested_at: when the event was ingested';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.kind" IS 'Always signal, as in Elastic alert documents';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.dataset" IS 'Always aws.cloudtrail';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.provider" IS 'events.event_source: CloudTrail eventSource';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.action" IS 'alerts.event_name: CloudTrail eventName';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.id" IS 'alerts.event_id: CloudTrail eventID';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.outcome" IS 'events.outcome: success or failure';
COMMENT ON COLUMN lambda_detect.alerts_ecs."cloud.provider" IS 'Always aws';
COMMENT ON COLUMN lambda_detect.alerts_ecs."cloud.account.id" IS 'alerts.account_id: CloudTrail recipientAccountId';
COMMENT ON COLUMN lambda_detect.alerts_ecs."cloud.region" IS 'alerts.aws_region: CloudTrail awsRegion';
COMMENT ON COLUMN lambda_detect.alerts_ecs."source.ip" IS 'alerts.source_ip: sourceIPAddress when an address';
COMMENT ON COLUMN lambda_detect.alerts_ecs."source.address" IS 'alerts.source_address: sourceIPAddress verbatim';
COMMENT ON COLUMN lambda_detect.alerts_ecs."user_agent.original" IS 'alerts.user_agent: CloudTrail userAgent';
COMMENT ON COLUMN lambda_detect.alerts_ecs."user.name" IS 'alerts.user_name: userIdentity.userName, or the session issuer''s';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.user_identity.arn" IS 'alerts.actor_arn: userIdentity.arn';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.user_identity.type" IS 'alerts.actor_type: userIdentity.type';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.user_identity.access_key_id" IS 'alerts.access_key_id: userIdentity.accessKeyId';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.request_parameters" IS 'alerts.request_parameters as JSON text (Elastic keeps a flattened key=value string here)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.flattened.request_parameters" IS 'alerts.request_parameters as jsonb';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.response_elements" IS 'alerts.response_elements as JSON text';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.flattened.response_elements" IS 'alerts.response_elements as jsonb';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.request_id" IS 'events.request_id: CloudTrail requestID';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.event_type" IS 'events.event_type: CloudTrail eventType';
COMMENT ON COLUMN lambda_detect.alerts_ecs."rule.id" IS 'rules.rule_id of the rule that fired (for the seed rule, Elastic''s rule_id)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."rule.name" IS 'rules.name of the rule that fired';
COMMENT ON COLUMN lambda_detect.alerts_ecs."rule.version" IS 'alerts.rule_version: the rule''s version when it fired';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.rule.rule_id" IS 'rules.rule_id, as Elastic alert documents name it';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.rule.name" IS 'rules.name, as Elastic alert documents name it';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.severity" IS 'alerts.severity';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.risk_score" IS 'alerts.risk_score';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.reason" IS 'alerts.reason';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.workflow_status" IS 'alerts.status: open, acknowledged or closed (the same words as Elastic)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.workflow_status_updated_at" IS 'alerts.status_changed_at';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.status_changed_by" IS 'alerts.status_changed_by';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.status_note" IS 'alerts.status_note';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.resolution" IS 'alerts.resolution';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.function_arn" IS 'alerts.function_arn';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.statement_id" IS 'alerts.statement_id';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.principal" IS 'alerts.principal';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.scoped_by" IS 'alerts.scoped_by';
-- Exceptions (Elastic's exception lists) and the matches they suppressed.
--
-- An exception says: for this rule (or every rule), a match whose field
-- equals / starts with / globs / lies in this value is not alerted.  Runs
-- apply them in C (src/exceptions.c) to new matches only: adding an
-- exception never touches existing alerts.  A suppressed match is counted in
-- rule_runs.suppressed and kept in suppressed_matches, never silently lost.

CREATE TABLE lambda_detect.exceptions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule        text        REFERENCES lambda_detect.rules (rule)
                            ON UPDATE CASCADE ON DELETE CASCADE,
    field       text        NOT NULL,
    operator    text        NOT NULL,
    value       text        NOT NULL,
    reason      text        NOT NULL,
    created_by  text        NOT NULL DEFAULT current_user,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    CONSTRAINT exceptions_field_check CHECK (field IN ('actor_arn', 'function_name', 'function_arn',
                                                       'account_id', 'aws_region', 'source_ip',
                                                       'user_agent', 'statement_id')),
    CONSTRAINT exceptions_operator_check CHECK (operator IN ('equals', 'prefix', 'glob', 'in_cidr')),
    CONSTRAINT exceptions_in_cidr_field_check CHECK (operator <> 'in_cidr' OR field = 'source_ip'),
    -- an invalid network fails the cast: 22P02, naming the value
    CONSTRAINT exceptions_in_cidr_value_check CHECK (
        CASE WHEN operator = 'in_cidr' THEN value::cidr IS NOT NULL ELSE true END),
    -- an empty prefix or value would silently cover everything or nothing
    CONSTRAINT exceptions_value_check CHECK (value <> ''),
    CONSTRAINT exceptions_reason_check CHECK (btrim(reason) <> '')
);

COMMENT ON TABLE lambda_detect.exceptions IS
    'Allow-list entries applied in C during rule runs: a new match whose field satisfies operator and value is suppressed, not alerted';
COMMENT ON COLUMN lambda_detect.exceptions.id IS 'Exception id; when several apply, the lowest id is recorded';
COMMENT ON SEQUENCE lambda_detect.exceptions_id_seq IS 'Ids of exceptions';
COMMENT ON COLUMN lambda_detect.exceptions.rule IS 'The rule it applies to; NULL: every rule';
COMMENT ON COLUMN lambda_detect.exceptions.field IS 'What is tested, as the alert would carry it: actor_arn, function_name, function_arn, account_id (the function''s account), aws_region, source_ip (sourceIPAddress), user_agent or statement_id';
COMMENT ON COLUMN lambda_detect.exceptions.operator IS 'equals, prefix (case-sensitive), glob (* any run of characters, ? one character, \ escapes; the whole value) or in_cidr (source_ip only: the address lies in the network)';
COMMENT ON COLUMN lambda_detect.exceptions.value IS 'The value, prefix, glob pattern or network (CIDR, checked on insert)';
COMMENT ON COLUMN lambda_detect.exceptions.reason IS 'Why the matches are benign (required)';
COMMENT ON COLUMN lambda_detect.exceptions.created_by IS 'Who added it (the current role by default)';
COMMENT ON COLUMN lambda_detect.exceptions.created_at IS 'When it was added';
COMMENT ON COLUMN lambda_detect.exceptions.expires_at IS 'When it stops applying (runs after this time ignore it); NULL: never';

CREATE TABLE lambda_detect.suppressed_matches (
    run_id        bigint      NOT NULL,
    rule          text        NOT NULL,
    event_id      text        NOT NULL,
    exception_id  bigint      NOT NULL,
    suppressed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT suppressed_matches_pkey PRIMARY KEY (rule, event_id)
);

COMMENT ON TABLE lambda_detect.suppressed_matches IS
    'Matches an exception kept from becoming alerts, one row per (rule, event): the first run and exception that suppressed it';
COMMENT ON COLUMN lambda_detect.suppressed_matches.run_id IS 'The rule_runs row that first suppressed the match';
COMMENT ON COLUMN lambda_detect.suppressed_matches.rule IS 'The rule that matched';
COMMENT ON COLUMN lambda_detect.suppressed_matches.event_id IS 'The CloudTrail eventID that matched (see events)';
COMMENT ON COLUMN lambda_detect.suppressed_matches.exception_id IS 'The exception that applied (exceptions.id; kept if the exception is deleted later)';
COMMENT ON COLUMN lambda_detect.suppressed_matches.suppressed_at IS 'When the match was first suppressed';

CREATE INDEX suppressed_matches_exception_idx ON lambda_detect.suppressed_matches (exception_id);
COMMENT ON INDEX lambda_detect.suppressed_matches_exception_idx IS 'What an exception suppressed, before changing or deleting it';

CREATE INDEX suppressed_matches_run_idx ON lambda_detect.suppressed_matches (run_id);
COMMENT ON INDEX lambda_detect.suppressed_matches_run_idx IS 'What a rule run suppressed';

-- Users' data, dumped by pg_dump (see 99_privileges.sql for the other tables).
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.exceptions', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.suppressed_matches', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.exceptions', 'id')::pg_catalog.regclass, '');
-- Nothing that holds event data is readable by PUBLIC, and no function is
-- callable by PUBLIC: grant what each duty needs (README, "Privileges").

REVOKE ALL ON SCHEMA lambda_detect FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA lambda_detect FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA lambda_detect FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA lambda_detect FROM PUBLIC;

-- pg_dump skips the contents of an extension's tables unless they are marked
-- as configuration: mark every table that holds users' data, and the
-- identity sequences behind them so restored ids do not start over.  The
-- rules shipped with the extension are created by CREATE EXTENSION itself,
-- so only the rules users add are dumped (their edits to shipped rules are
-- not: see docs/rules.md).  (One call per statement: each call updates the extension's
-- catalog row.)
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.rules',
    $$WHERE rule NOT IN ('lambda-public-invocation', 'lambda-public-wildcard-action',
                         'lambda-function-url-public', 'lambda-cross-account-invocation')$$);
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.inbox', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.events', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.ingest_errors', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.ingested_files', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.ingest_runs', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.rule_runs', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.alerts', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.inbox', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.ingest_errors', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.ingest_runs', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.rule_runs', 'run_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.alerts', 'alert_id')::pg_catalog.regclass, '');
