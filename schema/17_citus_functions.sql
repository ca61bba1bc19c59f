-- Functions of 1.0 that Citus cannot run as they were (version 1.1).
--
-- docs/scaling.md plans lambda_detect on Citus; tools/citus-check.sh tried
-- the plan on Citus 13.2.2.  Of the 1.0 functions (08_investigation.sql,
-- not edited), these failed there for how their SQL is written, not for
-- what they do; this part replaces them with the same behaviour on one
-- server (the triage and investigation regression tests are unchanged):
--
-- * effective_investigation_settings() read investigation_settings as a
--   whole-row value, which on a reference table takes the shard's row type
--   ("COALESCE could not convert type ..."): it builds the row from named
--   columns, as effective_storage_settings() does.
-- * acknowledge_alert() and close_alert() locked the alert with SELECT ...
--   FOR UPDATE by alert_id alone, which Citus refuses on a distributed
--   table unless the distribution column is fixed: they find the alert's
--   account first, then lock and update the alert by its whole key
--   (alert_id, account_id), which goes to one shard.  When
--   lambda_detect.notify_from = session they call notify_alert_changed()
--   (15_notify_payload.sql), which notifies the change from the session.

CREATE OR REPLACE FUNCTION lambda_detect.effective_investigation_settings()
RETURNS lambda_detect.investigation_settings
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(
        (SELECT ROW(s.singleton, s.time_zone, s.business_hours_start, s.business_hours_end,
                    s.business_days, s.history, s.correlation_window)::lambda_detect.investigation_settings
           FROM lambda_detect.investigation_settings s),
        ROW(true, 'UTC', time '09:00', time '18:00', '{1,2,3,4,5}'::integer[],
            interval '90 days', interval '1 hour')::lambda_detect.investigation_settings)
$$;

COMMENT ON FUNCTION lambda_detect.effective_investigation_settings() IS
    'The investigation settings in effect: the row of investigation_settings, or the defaults when it has none';

CREATE OR REPLACE FUNCTION lambda_detect.acknowledge_alert(alert_id bigint, note text DEFAULT NULL)
RETURNS lambda_detect.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a     lambda_detect.alerts;
    acct  text;
BEGIN
    IF alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the account first, then the alert locked by its whole key (one shard
    -- under Citus); an alert gone in between does not exist
    SELECT x.account_id INTO acct FROM lambda_detect.alerts x
     WHERE x.alert_id = acknowledge_alert.alert_id;
    IF FOUND THEN
        SELECT x.* INTO a FROM lambda_detect.alerts x
         WHERE x.alert_id = acknowledge_alert.alert_id AND x.account_id = acct FOR UPDATE;
    END IF;
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
     WHERE x.alert_id = acknowledge_alert.alert_id AND x.account_id = acct
    RETURNING x.* INTO a;
    -- with notify_from = session the change is notified from here (the
    -- call only then, so that analysts need its grant only then)
    IF pg_catalog.current_setting('lambda_detect.notify_from', true) = 'session' THEN
        PERFORM lambda_detect.notify_alert_changed(a.alert_id, 'status');
    END IF;
    RETURN a;
END;
$$;

COMMENT ON FUNCTION lambda_detect.acknowledge_alert(bigint, text) IS
    'Triage: an open alert becomes acknowledged, with an optional note; records who (current_user) and when, and notifies lambda_detect_alerts; returns the alert';

CREATE OR REPLACE FUNCTION lambda_detect.close_alert(alert_id bigint, resolution text, note text)
RETURNS lambda_detect.alerts
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a     lambda_detect.alerts;
    acct  text;
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
    -- the account first, then the alert locked by its whole key (one shard
    -- under Citus); an alert gone in between does not exist
    SELECT x.account_id INTO acct FROM lambda_detect.alerts x
     WHERE x.alert_id = close_alert.alert_id;
    IF FOUND THEN
        SELECT x.* INTO a FROM lambda_detect.alerts x
         WHERE x.alert_id = close_alert.alert_id AND x.account_id = acct FOR UPDATE;
    END IF;
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
     WHERE x.alert_id = close_alert.alert_id AND x.account_id = acct
    RETURNING x.* INTO a;
    -- with notify_from = session the change is notified from here (the
    -- call only then, so that analysts need its grant only then)
    IF pg_catalog.current_setting('lambda_detect.notify_from', true) = 'session' THEN
        PERFORM lambda_detect.notify_alert_changed(a.alert_id, 'status');
    END IF;
    RETURN a;
END;
$$;

COMMENT ON FUNCTION lambda_detect.close_alert(bigint, text, text) IS
    'Triage: an open or acknowledged alert becomes closed with a resolution (true_positive, false_positive, benign) and a note; records who (current_user) and when, and notifies lambda_detect_alerts; returns the alert';
