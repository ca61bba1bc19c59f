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
-- transitions on direct UPDATEs.  View: open_alerts (the queue by severity
-- and account); alerts_ecs (alerts under Elastic's field names) is in
-- 13_alerts_ecs.sql.
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
