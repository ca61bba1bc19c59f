-- What NOTIFY lambda_detect_alerts carries (version 1.1).
--
-- NOTIFY has no privileges: any role that can connect to the database may
-- LISTEN on the channel, including one with no grant on alerts at all.  By
-- default (lambda_detect.notify_payload = 'full') the payload carries what
-- 1.0 sent, the fields of the alert row integrations route on, and nothing
-- the row does not have.  A superuser sets 'minimal' where roles that may
-- not read alerts can connect: the payload then names the alert and its
-- rule, nothing of its event, and a listener allowed to read alerts reads
-- the row by alert_id (lambda-detect-listen does).
--
-- 07_alerts.sql, which created the function, was released in 1.0 and is
-- not edited: this part replaces the function, on a fresh install and on an
-- update from 1.0 alike.

-- Builds the NOTIFY payload of one alert.  Values are cut so that the JSON
-- text stays under NOTIFY's 8000-byte limit whatever the alert held: first
-- at 256 characters, then 64, then 16.  At 64 the payload always fits (ten
-- text values of at most 64 characters, each at most 6 bytes once escaped),
-- so the last pass is a margin, not a hope.  An alert whose event named no
-- account has account_id '' in its row and null here, as in 1.0.
CREATE OR REPLACE FUNCTION lambda_detect.alert_notify_payload(a lambda_detect.alerts, kind text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    full_payload boolean :=
        COALESCE(pg_catalog.current_setting('lambda_detect.notify_payload', true), 'full')
        <> 'minimal';
    cut     integer;
    doc     jsonb;
    payload text;
BEGIN
    FOREACH cut IN ARRAY ARRAY[256, 64, 16] LOOP
        doc := pg_catalog.jsonb_build_object(
            'kind', kind,
            'alert_id', a.alert_id,
            'rule', pg_catalog.left(a.rule, cut),
            'rule_version', a.rule_version,
            'severity', pg_catalog.left(a.severity, cut),
            'risk_score', a.risk_score,
            'status', a.status);
        IF full_payload THEN
            doc := doc || pg_catalog.jsonb_build_object(
                'event_id', pg_catalog.left(a.event_id, cut),
                'event_time', a.event_time,
                'account_id', pg_catalog.left(NULLIF(a.account_id, ''), cut),
                'aws_region', pg_catalog.left(a.aws_region, cut),
                'function_name', pg_catalog.left(a.function_name, cut),
                'statement_id', pg_catalog.left(a.statement_id, cut),
                'principal', pg_catalog.left(a.principal, cut),
                'actor_arn', pg_catalog.left(a.actor_arn, cut),
                'source_ip', pg_catalog.left(a.source_address, cut));
        END IF;
        payload := doc::text;
        EXIT WHEN pg_catalog.octet_length(payload) < 7900;
    END LOOP;
    RETURN payload;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_notify_payload(lambda_detect.alerts, text) IS
    'Compact JSON of an alert for NOTIFY: kind, alert_id, rule, rule_version, severity, risk_score and status; unless lambda_detect.notify_payload = minimal (default full) also the event''s id, time, account, region, function, statement, principal, actor and source.  Always under the 8000-byte limit (long values are cut to 256, 64 or 16 characters; the alerts table has them whole)';

-- Who sends the notification (lambda_detect.notify_from).  By default
-- ('trigger') the triggers on alerts do, as in 1.0.  Under Citus a row
-- trigger on the distributed alerts fires on the node holding the shard,
-- where a listener connected to the coordinator never hears it (and a
-- transaction spanning two nodes cannot even prepare after a NOTIFY): with
-- 'session', the triggers do nothing and the session that changes an alert
-- sends the notification itself, through notify_alert_changed() (the rule
-- engine for new alerts, acknowledge_alert() and close_alert() for status
-- changes).  docs/scaling.md, item 4.
CREATE OR REPLACE FUNCTION lambda_detect.notify_alert()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('lambda_detect.notify_from', true) = 'session' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_catalog.pg_notify('lambda_detect_alerts',
        lambda_detect.alert_notify_payload(NEW,
            CASE TG_OP WHEN 'INSERT' THEN 'new' ELSE 'status' END));
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION lambda_detect.notify_alert() IS
    'Trigger function: NOTIFY lambda_detect_alerts with the alert''s compact payload (kind new or status); does nothing when lambda_detect.notify_from = session';

-- Reads the alert into a variable first: under Citus a function applied to
-- a whole row of a distributed table would be pushed to the shard, where
-- the row has the shard's type.  SECURITY DEFINER, as notify_alert(): the
-- worker and analysts need EXECUTE on this function only.
CREATE FUNCTION lambda_detect.notify_alert_changed(alert_id bigint, kind text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a lambda_detect.alerts;
BEGIN
    IF pg_catalog.current_setting('lambda_detect.notify_from', true) IS DISTINCT FROM 'session' THEN
        RETURN;
    END IF;
    IF kind IS NULL OR kind NOT IN ('new', 'status') THEN
        RAISE EXCEPTION 'invalid notification kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The kind is new or status.';
    END IF;
    SELECT x.* INTO a FROM lambda_detect.alerts x WHERE x.alert_id = notify_alert_changed.alert_id;
    IF FOUND THEN
        PERFORM pg_catalog.pg_notify('lambda_detect_alerts', lambda_detect.alert_notify_payload(a, kind));
    END IF;
END;
$$;

COMMENT ON FUNCTION lambda_detect.notify_alert_changed(bigint, text) IS
    'With lambda_detect.notify_from = session: NOTIFY lambda_detect_alerts about the alert (kind new or status), from the calling session; otherwise nothing (the triggers on alerts notify)';

REVOKE ALL ON FUNCTION lambda_detect.notify_alert_changed(bigint, text) FROM PUBLIC;
