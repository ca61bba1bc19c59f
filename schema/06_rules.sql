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
