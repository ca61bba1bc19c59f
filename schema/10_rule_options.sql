-- Per-rule options beyond Elastic's parity (version 1.1): grouping matches
-- into one alert (Elastic's alert suppression), and not alerting on grants
-- that are scoped to an organisation or to one fixed source.
--
-- Written as changes to the 1.0 tables, so that a fresh install and an
-- update from 1.0 (the upgrade script runs this same file) build the same
-- columns in the same order; this file also does for its new table what
-- 99_privileges.sql does for the others, since the upgrade does not run it.  Both options are off on
-- every shipped rule: the seed rule keeps exact parity unless a user turns
-- them on.  docs/rules.md explains them.

ALTER TABLE lambda_detect.rules
    ADD COLUMN group_by       text[]   NOT NULL DEFAULT '{}',
    ADD COLUMN group_window   interval,
    ADD COLUMN skip_scoped_by text[]   NOT NULL DEFAULT '{}',
    ADD COLUMN own_org_ids    text[]   NOT NULL DEFAULT '{}',
    ADD CONSTRAINT rules_group_by_check CHECK (
        group_by <@ ARRAY['function_arn', 'function_name', 'actor_arn', 'account_id',
                          'aws_region', 'source_ip', 'principal', 'action',
                          'statement_id', 'user_agent']::text[]),
    ADD CONSTRAINT rules_group_window_check CHECK (
        (cardinality(group_by) = 0) = (group_window IS NULL)
        AND (group_window IS NULL
             OR (group_window >= interval '1 second' AND group_window <= interval '7 days'))),
    ADD CONSTRAINT rules_skip_scoped_by_check CHECK (
        skip_scoped_by <@ ARRAY['principalOrgID', 'sourceArn+sourceAccount']::text[]),
    -- Every element an AWS organisation id, at most 16 of them.  The text
    -- form of the array is tested: an id needs no quoting there, while a NULL,
    -- an empty or a quoted element, or bounds other than [1:n], do not match.
    ADD CONSTRAINT rules_own_org_ids_check CHECK (
        cardinality(own_org_ids) <= 16
        AND own_org_ids::text ~ '^\{(o-[a-z0-9]{10,32}(,o-[a-z0-9]{10,32})*)?\}$'),
    -- A principalOrgID names any organisation, the attacker's own too: the
    -- entry skips only the user's organisations, so it needs them listed.
    ADD CONSTRAINT rules_skip_scoped_by_org_check CHECK (
        NOT ('principalOrgID' = ANY (skip_scoped_by)) OR cardinality(own_org_ids) > 0);

COMMENT ON COLUMN lambda_detect.rules.group_by IS
    'Grouping (Elastic''s alert suppression): matches with equal values of these alert fields (function_arn, function_name, actor_arn, account_id, aws_region, source_ip, principal, action, statement_id, user_agent) within group_window of an open alert are folded into it; {} (the default): one alert per event';
COMMENT ON COLUMN lambda_detect.rules.group_window IS
    'With group_by: how far apart in event time (before or after) a match may be from a group''s alert and still join it (1 second to 7 days); NULL without group_by';
COMMENT ON COLUMN lambda_detect.rules.skip_scoped_by IS
    'Scoped grants not to alert on: principalOrgID (the grant is limited to one of own_org_ids), sourceArn+sourceAccount (limited to one source ARN without wildcards in the function''s own account, sourceAccount = recipientAccountId); such matches are counted in rule_runs.scoped_out and kept in suppressed_matches.  {} (the default): alert on every match';
COMMENT ON COLUMN lambda_detect.rules.own_org_ids IS
    'The user''s own AWS organisation ids (o-...): skip_scoped_by principalOrgID skips only a grant to one of these, never one to another organisation, which anyone can create; required (not empty) when skip_scoped_by lists principalOrgID';

ALTER TABLE lambda_detect.rule_runs
    ADD COLUMN scoped_out integer NOT NULL DEFAULT 0,
    ADD COLUMN grouped    integer NOT NULL DEFAULT 0;

COMMENT ON COLUMN lambda_detect.rule_runs.matched IS
    'Candidates the rule matched (new alerts + duplicates + suppressed + scoped_out + grouped)';
COMMENT ON COLUMN lambda_detect.rule_runs.scoped_out IS
    'New matches not alerted because the grant was scoped as the rule''s skip_scoped_by says; recorded in suppressed_matches';
COMMENT ON COLUMN lambda_detect.rule_runs.grouped IS
    'New matches folded into an open alert of their group (rules.group_by), recorded in alert_occurrences';

-- Every alert says how many events it stands for.  Alerts of 1.0 stand for
-- their own event: first and last are filled from it before NOT NULL.
ALTER TABLE lambda_detect.alerts
    ADD COLUMN occurrences      integer NOT NULL DEFAULT 1,
    ADD COLUMN first_event_id   text,
    ADD COLUMN first_event_time timestamptz,
    ADD COLUMN last_event_id    text,
    ADD COLUMN last_event_time  timestamptz,
    ADD COLUMN group_key        jsonb,
    ADD COLUMN group_window     interval;

UPDATE lambda_detect.alerts
   SET first_event_id = event_id, first_event_time = event_time,
       last_event_id = event_id, last_event_time = event_time
 WHERE first_event_id IS NULL;

ALTER TABLE lambda_detect.alerts
    ALTER COLUMN first_event_id SET NOT NULL,
    ALTER COLUMN first_event_time SET NOT NULL,
    ALTER COLUMN last_event_id SET NOT NULL,
    ALTER COLUMN last_event_time SET NOT NULL,
    ADD CONSTRAINT alerts_occurrences_check CHECK (occurrences >= 1),
    ADD CONSTRAINT alerts_group_check CHECK ((group_key IS NULL) = (group_window IS NULL));

COMMENT ON COLUMN lambda_detect.alerts.occurrences IS
    'Events this alert stands for: 1, or more when its rule groups matches (the others are in alert_occurrences)';
COMMENT ON COLUMN lambda_detect.alerts.first_event_id IS 'The earliest (by event time) of the alert''s events';
COMMENT ON COLUMN lambda_detect.alerts.first_event_time IS 'Event time of first_event_id';
COMMENT ON COLUMN lambda_detect.alerts.last_event_id IS 'The latest (by event time) of the alert''s events';
COMMENT ON COLUMN lambda_detect.alerts.last_event_time IS 'Event time of last_event_id';
COMMENT ON COLUMN lambda_detect.alerts.group_key IS
    'For a rule with group_by: the grouped fields and their values, e.g. {"actor_arn": ..., "function_arn": ...}; NULL otherwise';
COMMENT ON COLUMN lambda_detect.alerts.group_window IS
    'For a grouped alert: the rule''s group_window when the alert was created; matches within it of event_time join while the alert is not closed';

-- Alerts inserted by other means than a rule run (a test, an import) stand
-- for their own event unless they say otherwise.
CREATE FUNCTION lambda_detect.fill_alert_span()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.first_event_id := COALESCE(NEW.first_event_id, NEW.event_id);
    NEW.first_event_time := COALESCE(NEW.first_event_time, NEW.event_time);
    NEW.last_event_id := COALESCE(NEW.last_event_id, NEW.event_id);
    NEW.last_event_time := COALESCE(NEW.last_event_time, NEW.event_time);
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION lambda_detect.fill_alert_span() IS
    'Trigger function: a new alert''s first and last events default to its own event';

CREATE TRIGGER alerts_fill_span
    BEFORE INSERT ON lambda_detect.alerts
    FOR EACH ROW EXECUTE FUNCTION lambda_detect.fill_alert_span();

COMMENT ON TRIGGER alerts_fill_span ON lambda_detect.alerts IS
    'Fills first_event_id/time and last_event_id/time from the alert''s event when not given';

CREATE INDEX alerts_group_idx ON lambda_detect.alerts (rule, group_key, event_time)
    WHERE group_key IS NOT NULL;
COMMENT ON INDEX lambda_detect.alerts_group_idx IS
    'The open group a new match joins, found without reading the rule''s other alerts';

-- The account of the event is in the key (and NOT NULL, '' when unknown):
-- under the Citus plan (docs/scaling.md) this table is distributed by
-- account, colocated with events.
CREATE TABLE lambda_detect.alert_occurrences (
    rule       text        NOT NULL,
    event_id   text        NOT NULL,
    account_id text        NOT NULL DEFAULT '',
    alert_id   bigint      NOT NULL,
    event_time timestamptz NOT NULL,
    run_id     bigint      NOT NULL,
    grouped_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_occurrences_pkey PRIMARY KEY (rule, event_id, account_id)
);

COMMENT ON TABLE lambda_detect.alert_occurrences IS
    'Matches folded into an existing alert by grouping (rules.group_by), one row per (rule, event and its account): never alerted twice, never lost';
COMMENT ON COLUMN lambda_detect.alert_occurrences.rule IS 'The rule that matched';
COMMENT ON COLUMN lambda_detect.alert_occurrences.event_id IS 'The CloudTrail eventID that matched (see events)';
COMMENT ON COLUMN lambda_detect.alert_occurrences.account_id IS 'The event''s account (events.recipient_account_id; '''' when the event names none)';
COMMENT ON COLUMN lambda_detect.alert_occurrences.alert_id IS 'The alert it was folded into (alerts.alert_id; no foreign key, so that alerts can be truncated or moved to other nodes)';
COMMENT ON COLUMN lambda_detect.alert_occurrences.event_time IS 'When that API call happened';
COMMENT ON COLUMN lambda_detect.alert_occurrences.run_id IS 'The rule_runs row that folded it';
COMMENT ON COLUMN lambda_detect.alert_occurrences.grouped_at IS 'When it was folded';

CREATE INDEX alert_occurrences_alert_idx ON lambda_detect.alert_occurrences (alert_id);
COMMENT ON INDEX lambda_detect.alert_occurrences_alert_idx IS 'The events of one alert';

-- A suppressed match was kept out either by an exception or by the rule's
-- skip_scoped_by; exactly one of the two says which.
ALTER TABLE lambda_detect.suppressed_matches
    ALTER COLUMN exception_id DROP NOT NULL,
    ADD COLUMN scoped_by text,
    ADD CONSTRAINT suppressed_matches_cause_check CHECK ((exception_id IS NULL) <> (scoped_by IS NULL)),
    ADD CONSTRAINT suppressed_matches_scoped_by_check CHECK (
        scoped_by IN ('principalOrgID', 'sourceArn+sourceAccount'));

COMMENT ON TABLE lambda_detect.suppressed_matches IS
    'Matches kept from becoming alerts by an exception or by the rule''s skip_scoped_by, one row per (rule, event): the first run and cause';
COMMENT ON COLUMN lambda_detect.suppressed_matches.exception_id IS
    'The exception that applied (exceptions.id; kept if the exception is deleted later); NULL when scoped_by applied';
COMMENT ON COLUMN lambda_detect.suppressed_matches.scoped_by IS
    'The rule''s skip_scoped_by entry that applied (principalOrgID or sourceArn+sourceAccount); NULL when an exception applied';

-- As 99_privileges.sql: nothing for PUBLIC, and users' data dumped.
REVOKE ALL ON lambda_detect.alert_occurrences FROM PUBLIC;
REVOKE ALL ON FUNCTION lambda_detect.fill_alert_span() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.alert_occurrences', '');
