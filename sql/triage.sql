-- Triage: alerts move open -> acknowledged -> closed (with a resolution)
-- through acknowledge_alert() and close_alert(), which record who and when
-- and notify; the same rules hold for direct UPDATEs.  The queue view and
-- the ECS-named view.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';


-- five attacks in two accounts
CREATE FUNCTION pg_temp.attack(id text, at text, account text, fn text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('eventID', id, 'eventTime', at,
    'eventSource', 'lambda.amazonaws.com', 'eventName', 'AddPermission20150331v2',
    'awsRegion', 'us-east-1', 'recipientAccountId', account, 'requestID', 'req-' || id,
    'eventType', 'AwsApiCall', 'sourceIPAddress', '198.51.100.23', 'userAgent', 'aws-cli/2.17.60',
    'userIdentity', jsonb_build_object('type', 'IAMUser', 'arn', 'arn:aws:iam::' || account || ':user/mallory',
                                       'accessKeyId', 'AKIAMALLORY', 'userName', 'mallory'),
    'requestParameters', jsonb_build_object('action', 'lambda:InvokeFunction', 'functionName', fn,
                                            'principal', '*', 'statementId', 'open'),
    'responseElements', jsonb_build_object('statement', '{"Sid":"open"}'))
$$;
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('triage', pg_temp.attack('tr-1', '2026-11-02T10:00:00Z', '111122223333', 'payments')),
  ('triage', pg_temp.attack('tr-2', '2026-11-02T10:05:00Z', '111122223333', 'billing')),
  ('triage', pg_temp.attack('tr-3', '2026-11-02T10:10:00Z', '444455556666', 'reports')),
  ('triage', pg_temp.attack('tr-4', '2026-11-02T10:15:00Z', '444455556666', 'thumbs')),
  ('triage', pg_temp.attack('tr-5', '2026-11-02T10:20:00Z', '111122223333', 'exports'));
SELECT inbox_rows, events FROM lambda_detect.ingest_now();
SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation');
-- fixed times for exact output; two alerts raised to high by hand
UPDATE lambda_detect.alerts SET ingested_at = event_time + interval '1 minute',
                                detected_at = event_time + interval '1 minute 1 second';
UPDATE lambda_detect.alerts SET severity = 'high' WHERE event_id IN ('tr-3', 'tr-5');
SELECT alert_id, event_id, account_id, severity, status, resolution FROM lambda_detect.alerts ORDER BY alert_id;

-- the queue: most severe first, then the busiest account
SELECT * FROM lambda_detect.open_alerts;

-- ---------------------------------------------------------------------------
-- acknowledge: the status, the note, who and when, and one notification
-- (counted through the NOTIFY trigger function's calls)
SET track_functions = 'pl';
CREATE FUNCTION pg_temp.notify_calls() RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce(pg_stat_get_xact_function_calls('lambda_detect.notify_alert()'::regprocedure), 0)
$$;
BEGIN;
SELECT pg_temp.notify_calls() AS calls_before \gset
SELECT alert_id, status, status_note, resolution, status_changed_by = current_user AS by_me,
       status_changed_at = now() AS stamped_now
  FROM lambda_detect.acknowledge_alert(1, 'looking at it');
SELECT pg_temp.notify_calls() - :calls_before AS notifications;
COMMIT;
-- the note is optional
SELECT alert_id, status, status_note FROM lambda_detect.acknowledge_alert(4);

-- close: from acknowledged or straight from open, with a resolution and a note
BEGIN;
SELECT pg_temp.notify_calls() AS calls_before \gset
SELECT alert_id, status, resolution, status_note, status_changed_by = current_user AS by_me,
       status_changed_at = now() AS stamped_now
  FROM lambda_detect.close_alert(1, 'true_positive', 'grant removed, key rotated, INC-4521');
SELECT pg_temp.notify_calls() - :calls_before AS notifications;
COMMIT;
-- a refused change sends nothing, a note alone neither
BEGIN;
SELECT pg_temp.notify_calls() AS calls_before \gset
SAVEPOINT refused;
SELECT lambda_detect.acknowledge_alert(1);
ROLLBACK TO refused;
UPDATE lambda_detect.alerts SET status_note = 'grant removed, key rotated, INC-4521 (CISO informed)'
 WHERE alert_id = 1;
SELECT pg_temp.notify_calls() - :calls_before AS notifications;
COMMIT;
SELECT alert_id, status, resolution, status_note
  FROM lambda_detect.close_alert(2, 'benign', 'public webhook by design, approved in CHG-88');
RESET track_functions;

SELECT alert_id, status, resolution, status_note FROM lambda_detect.alerts ORDER BY alert_id;
SELECT * FROM lambda_detect.open_alerts;

-- ---------------------------------------------------------------------------
-- what the functions refuse, and why (who and when made fixed for output)
UPDATE lambda_detect.alerts SET status_changed_by = 'alice', status_changed_at = '2026-11-02 11:00:00+00'
 WHERE alert_id IN (1, 4);
SELECT pg_temp.error_of(q) FROM unnest(ARRAY[
  $q$SELECT lambda_detect.acknowledge_alert(4)$q$,
  $q$SELECT lambda_detect.acknowledge_alert(1)$q$,
  $q$SELECT lambda_detect.close_alert(1, 'false_positive', 'second thoughts')$q$,
  $q$SELECT lambda_detect.acknowledge_alert(999)$q$,
  $q$SELECT lambda_detect.close_alert(999, 'benign', 'x')$q$,
  $q$SELECT lambda_detect.acknowledge_alert(NULL)$q$,
  $q$SELECT lambda_detect.close_alert(NULL, 'benign', 'x')$q$,
  $q$SELECT lambda_detect.close_alert(3, NULL, 'no idea')$q$,
  $q$SELECT lambda_detect.close_alert(3, 'resolved', 'done')$q$,
  $q$SELECT lambda_detect.close_alert(3, 'True_Positive', 'done')$q$,
  $q$SELECT lambda_detect.close_alert(3, 'benign', NULL)$q$,
  $q$SELECT lambda_detect.close_alert(3, 'benign', '   ')$q$]) AS q;
-- nothing changed
SELECT alert_id, status, resolution FROM lambda_detect.alerts ORDER BY alert_id;

-- the same rules on direct UPDATEs: no way back, no closing without a
-- resolution, no resolution without closing, a resolution is final
SELECT pg_temp.error_of(q) FROM unnest(ARRAY[
  $q$UPDATE lambda_detect.alerts SET status = 'open' WHERE alert_id = 1$q$,
  $q$UPDATE lambda_detect.alerts SET status = 'acknowledged', resolution = NULL WHERE alert_id = 1$q$,
  $q$UPDATE lambda_detect.alerts SET resolution = 'false_positive' WHERE alert_id = 1$q$,
  $q$UPDATE lambda_detect.alerts SET status = 'open' WHERE alert_id = 4$q$,
  $q$UPDATE lambda_detect.alerts SET status = 'closed' WHERE alert_id = 3$q$,
  $q$UPDATE lambda_detect.alerts SET resolution = 'benign' WHERE alert_id = 3$q$,
  $q$UPDATE lambda_detect.alerts SET status = 'closed', resolution = 'maybe' WHERE alert_id = 3$q$,
  $q$UPDATE lambda_detect.alerts SET status = 'resolved' WHERE alert_id = 3$q$,
  $q$INSERT INTO lambda_detect.alerts (rule, rule_version, event_id, event_time, ingested_at, severity,
       risk_score, reason, event_name, status)
     VALUES ('lambda-public-invocation', 1, 'tr-x', now(), now(), 'medium', 47, 'x', 'AddPermission', 'closed')$q$]) AS q;
-- allowed directly: open -> acknowledged, setting the same status again
-- (nothing changes), closing with a resolution, a later note on a closed alert
UPDATE lambda_detect.alerts SET status = 'acknowledged' WHERE alert_id = 3;
UPDATE lambda_detect.alerts SET status = 'acknowledged', status_note = 'still on it' WHERE alert_id = 3;
UPDATE lambda_detect.alerts SET status = 'closed', resolution = 'false_positive', status_note = 'test account'
 WHERE alert_id = 5;
UPDATE lambda_detect.alerts SET status_note = 'test account, see CHG-90' WHERE alert_id = 5;
SELECT alert_id, status, resolution, status_note, status_changed_by IS NOT NULL AS stamped
  FROM lambda_detect.alerts ORDER BY alert_id;

-- ---------------------------------------------------------------------------
-- For people coming from Elastic: the same alert under ECS names
SELECT attnum, attname AS alerts_ecs_column, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute WHERE attrelid = 'lambda_detect.alerts_ecs'::regclass AND attnum > 0
 ORDER BY attnum;
SELECT jsonb_pretty(to_jsonb(e) - 'kibana.alert.workflow_status_updated_at')
  FROM lambda_detect.alerts_ecs e WHERE "lambda_detect.alert_id" = 1;
SELECT "event.action", "cloud.account.id", "source.ip", "user_agent.original",
       "aws.cloudtrail.user_identity.arn", "kibana.alert.workflow_status", "lambda_detect.resolution"
  FROM lambda_detect.alerts_ecs ORDER BY "@timestamp";
SELECT count(*) AS closed_true_positives FROM lambda_detect.alerts_ecs
 WHERE "kibana.alert.workflow_status" = 'closed' AND "lambda_detect.resolution" = 'true_positive';

-- ---------------------------------------------------------------------------
-- An analyst with the README's grants investigates and triages; current_user
-- is recorded.  Without UPDATE on resolution, closing is refused; the views
-- read with the caller's privileges.
TRUNCATE lambda_detect.alerts, lambda_detect.events RESTART IDENTITY;
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('triage', pg_temp.attack('tr-6', '2026-11-02T11:00:00Z', '111122223333', 'payments')),
  ('triage', pg_temp.attack('tr-7', '2026-11-02T11:05:00Z', '111122223333', 'billing'));
SELECT inbox_rows FROM lambda_detect.ingest_now();
SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation');
CREATE ROLE regress_analyst_triage;
CREATE ROLE regress_analyst_old;
CREATE ROLE regress_alerts_only;
GRANT USAGE ON SCHEMA lambda_detect TO regress_analyst_triage, regress_analyst_old, regress_alerts_only;
GRANT SELECT ON ALL TABLES IN SCHEMA lambda_detect TO regress_analyst_triage, regress_analyst_old;
GRANT UPDATE (status, status_note, resolution) ON lambda_detect.alerts TO regress_analyst_triage;
GRANT UPDATE (status, status_note) ON lambda_detect.alerts TO regress_analyst_old;
GRANT EXECUTE ON FUNCTION
    lambda_detect.investigate(bigint), lambda_detect.alert_actor(bigint, interval),
    lambda_detect.alert_request(bigint), lambda_detect.alert_source(bigint, interval),
    lambda_detect.alert_timing(bigint, text), lambda_detect.alert_related_events(bigint, interval),
    lambda_detect.alert_remediation(bigint), lambda_detect.find_alert(bigint),
    lambda_detect.effective_investigation_settings(),
    lambda_detect.off_hours(timestamptz, text, time, time, integer[]),
    lambda_detect.classify_user_agent(text), lambda_detect.parse_policy_statement(text),
    lambda_detect.shell_quote(text), lambda_detect.cli_option(text, text),
    lambda_detect.acknowledge_alert(bigint, text), lambda_detect.close_alert(bigint, text, text)
  TO regress_analyst_triage, regress_analyst_old;
GRANT SELECT ON lambda_detect.alerts, lambda_detect.alerts_ecs, lambda_detect.open_alerts TO regress_alerts_only;

SET ROLE regress_analyst_triage;
SELECT lambda_detect.investigate(1) #>> '{remediation,remove_permission_command}' AS revert;
SELECT lambda_detect.investigate(1) #>> '{actor,new_actor}' AS new_actor;
SELECT alert_id, status, status_changed_by FROM lambda_detect.acknowledge_alert(1, 'mine');
SELECT * FROM lambda_detect.run_rule('lambda-public-invocation');
RESET ROLE;
SET ROLE regress_analyst_old;
SELECT alert_id, status FROM lambda_detect.close_alert(1, 'true_positive', 'reverted');
RESET ROLE;
SET ROLE regress_analyst_triage;
SELECT alert_id, status, resolution, status_changed_by FROM lambda_detect.close_alert(1, 'true_positive', 'reverted');
RESET ROLE;
SET ROLE regress_alerts_only;
SELECT count(*) FROM lambda_detect.alerts;
SELECT severity, open, acknowledged FROM lambda_detect.open_alerts;
SELECT count(*) FROM lambda_detect.alerts_ecs;
RESET ROLE;

-- hostile objects in public, first on the caller's search_path, are never called
CREATE FUNCTION public.btrim(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.btrim() called'; END $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.now() called'; END $$;
CREATE FUNCTION public.hostile_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.= called'; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hostile_eq);
SET search_path = public, pg_catalog;
SELECT alert_id, status FROM lambda_detect.acknowledge_alert(2, 'hostile path');
SELECT alert_id, status, resolution FROM lambda_detect.close_alert(2, 'benign', 'hostile path');
SELECT severity, open, acknowledged FROM lambda_detect.open_alerts;
RESET search_path;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.hostile_eq(text, text), public.btrim(text), public.now();

DROP OWNED BY regress_analyst_triage, regress_analyst_old, regress_alerts_only;
DROP ROLE regress_analyst_triage, regress_analyst_old, regress_alerts_only;
