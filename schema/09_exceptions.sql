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
