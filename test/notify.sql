-- LISTEN lambda_detect_alerts: every new alert and every status change is
-- sent on the channel with a compact JSON payload that always fits NOTIFY's
-- 8000-byte limit, including the alerts the background worker creates.  By
-- default (lambda_detect.notify_payload = full) the payload carries the
-- alert row's routing fields; this session sets it explicitly for the
-- alerts it changes itself, the worker's use the default.
--
-- A second session (dblink) LISTENs; this session inserts and polls that
-- session's notifications with a deadline.
\ir helpers/setup.sql
CREATE EXTENSION IF NOT EXISTS dblink;

SELECT plan(29);

-- wait_notify(connection, event_id, kind, timeout): polls the listening
-- connection every 0.1 s for a lambda_detect_alerts notification about
-- event_id of that kind, and returns its payload text (NULL on timeout).  A
-- minimal payload has no event_id: its alert_id is looked up, as a listener
-- allowed to read alerts does.  Other notifications read meanwhile are
-- dropped.
CREATE OR REPLACE FUNCTION lambda_detect_test.wait_notify(
    conn     text,
    event_id text,
    kind     text,
    timeout  interval DEFAULT '20 seconds')
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    n        record;
    payload  jsonb;
BEGIN
    LOOP
        FOR n IN SELECT * FROM dblink_get_notify(conn) LOOP
            CONTINUE WHEN n.notify_name IS DISTINCT FROM 'lambda_detect_alerts';
            BEGIN
                payload := n.extra::jsonb;
            EXCEPTION WHEN invalid_text_representation THEN
                RAISE WARNING 'lambda_detect_alerts payload is not JSON: %', n.extra;
                CONTINUE;
            END;
            IF (payload ->> 'event_id' = event_id
                OR EXISTS (SELECT FROM lambda_detect.alerts a
                            WHERE a.alert_id = (payload ->> 'alert_id')::bigint
                              AND a.event_id = wait_notify.event_id))
               AND payload ->> 'kind' = kind THEN
                RETURN n.extra;
            END IF;
        END LOOP;
        IF clock_timestamp() >= deadline THEN
            RETURN NULL;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END;
$$;

-- the payloads received, by name (a psql variable would vanish on NULL);
-- payload(name) reads one back as jsonb
CREATE TEMP TABLE tap_payloads (name text PRIMARY KEY, payload text);
CREATE FUNCTION pg_temp.payload(name text) RETURNS jsonb
LANGUAGE sql STABLE
AS $$ SELECT payload::jsonb FROM tap_payloads WHERE tap_payloads.name = payload.name $$;

-- leftovers of an earlier, interrupted run of this file
DELETE FROM lambda_detect.inbox WHERE source LIKE 'tap-notify%';
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-notify-%';
DELETE FROM lambda_detect.alerts WHERE event_id LIKE 'tap-notify-%';

-- the listening session: the same server and user, through its socket
SELECT format('dbname=%s port=%s host=%s user=%s',
              quote_literal(current_database()),
              current_setting('port'),
              quote_literal(coalesce(nullif(trim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''),
                                     'localhost')),
              quote_literal(current_user)) AS listener_conninfo \gset
SELECT is(dblink_connect('tap_notify_listener', :'listener_conninfo'), 'OK',
          'a second session connects');
SELECT is(dblink_exec('tap_notify_listener', 'LISTEN lambda_detect_alerts'), 'LISTEN',
          'it listens on lambda_detect_alerts');

-- (a) an alert inserted here reaches the listener; the payload has the
-- event's fields, as this session chooses
SET lambda_detect.notify_payload = full;
INSERT INTO lambda_detect.alerts
    (rule, rule_version, event_id, event_time, ingested_at, severity, risk_score, reason,
     account_id, aws_region, event_name, function_name, statement_id, action, principal,
     actor_arn, source_ip, source_address)
VALUES ('lambda-public-invocation', 1, 'tap-notify-direct-1', '2026-11-28 10:00:00+00', now(),
        'medium', 47, 'tap: inserted by hand', '111122223333', 'us-east-1',
        'AddPermission20150331v2', 'tap-notify-function', 'tap-sid', 'lambda:InvokeFunction', '*',
        'arn:aws:iam::111122223333:user/tap-tester', '203.0.113.9', '203.0.113.9')
RETURNING alert_id AS direct_alert_id \gset

INSERT INTO tap_payloads
VALUES ('direct', lambda_detect_test.wait_notify('tap_notify_listener', 'tap-notify-direct-1', 'new'));
SELECT isnt(pg_temp.payload('direct'), NULL, 'the listener receives a notification for the new alert');
SELECT is(jsonb_typeof(pg_temp.payload('direct')), 'object', 'its payload is a JSON object');
SELECT ok(pg_temp.payload('direct') ?& ARRAY['alert_id', 'rule', 'event_id', 'severity', 'risk_score',
                                             'event_time', 'account_id', 'aws_region', 'function_name',
                                             'principal', 'actor_arn', 'source_ip', 'kind'],
          'it has the keys of the contract');
SELECT is((SELECT jsonb_object_agg(key, value) FROM jsonb_each(pg_temp.payload('direct'))
            WHERE key IN ('kind', 'alert_id', 'rule', 'event_id', 'severity', 'risk_score', 'account_id',
                          'aws_region', 'function_name', 'principal', 'actor_arn', 'source_ip')),
          jsonb_build_object(
              'kind', 'new',
              'alert_id', :direct_alert_id,
              'rule', 'lambda-public-invocation',
              'event_id', 'tap-notify-direct-1',
              'severity', 'medium',
              'risk_score', 47,
              'account_id', '111122223333',
              'aws_region', 'us-east-1',
              'function_name', 'tap-notify-function',
              'principal', '*',
              'actor_arn', 'arn:aws:iam::111122223333:user/tap-tester',
              'source_ip', '203.0.113.9'),
          'its values are the alert''s, with kind new');
SELECT is((pg_temp.payload('direct') ->> 'event_time')::timestamptz, '2026-11-28 10:00:00+00'::timestamptz,
          'its event_time is the event''s time');

-- (b) an alert whose text fields are each 100000 characters long (4-byte
-- characters first, so that even 256 characters of each are too many),
-- but for the account, which is in the alert's keys (an AWS account id has
-- 12 digits; normalize() refuses one over 128 bytes)
SELECT repeat(U&'\+01F600', 50000) || repeat('x', 50000) AS long_text \gset
INSERT INTO lambda_detect.alerts
    (rule, rule_version, event_id, event_time, ingested_at, severity, risk_score, reason,
     account_id, aws_region, event_name, function_name, function_arn, statement_id, action,
     principal, actor_arn, actor_type, access_key_id, user_name, source_address, user_agent,
     status_note)
VALUES ('lambda-public-invocation', 1, 'tap-notify-long-1', '2026-11-28 10:00:00+00', now(),
        'medium', 47, :'long_text', repeat(U&'\+01F600', 32), :'long_text', :'long_text', :'long_text',
        :'long_text', :'long_text', :'long_text', :'long_text', :'long_text', :'long_text',
        :'long_text', :'long_text', :'long_text', :'long_text', :'long_text')
RETURNING alert_id AS long_alert_id \gset
SELECT results_eq(
    format($$SELECT length(function_name), length(principal), length(actor_arn), length(user_agent)
               FROM lambda_detect.alerts WHERE alert_id = %s$$, :long_alert_id),
    $$VALUES (100000, 100000, 100000, 100000)$$,
    'an alert with 100000-character text fields inserts, whole');
INSERT INTO tap_payloads
VALUES ('long', lambda_detect_test.wait_notify('tap_notify_listener', 'tap-notify-long-1', 'new'));
SELECT isnt(pg_temp.payload('long'), NULL, 'its notification is sent');
SELECT cmp_ok((SELECT octet_length(payload) FROM tap_payloads WHERE name = 'long'), '<', 8000,
              'its payload is under 8000 bytes');
SELECT is(pg_temp.payload('long') ->> 'alert_id', :'long_alert_id',
          'and it still names the alert');
-- severity cannot grow: it is one of four words on alerts as on rules
SELECT throws_ok(
    $$INSERT INTO lambda_detect.alerts
          (rule, rule_version, event_id, event_time, ingested_at, severity, risk_score,
           reason, event_name)
      VALUES ('lambda-public-invocation', 1, 'tap-notify-long-2', now(), now(), repeat('x', 100000), 47,
              'tap: long severity', 'AddPermission20150331v2')$$,
    '23514', NULL,
    'an alert severity outside low/medium/high/critical is refused by a CHECK, not by NOTIFY');

-- (c) a status change is notified
UPDATE lambda_detect.alerts SET status = 'acknowledged' WHERE alert_id = :direct_alert_id;
INSERT INTO tap_payloads
VALUES ('status', lambda_detect_test.wait_notify('tap_notify_listener', 'tap-notify-direct-1', 'status'));
SELECT isnt(pg_temp.payload('status'), NULL, 'acknowledging the alert sends a notification of kind status');
SELECT is(pg_temp.payload('status') ->> 'alert_id', :'direct_alert_id', 'about that alert');
SELECT is(pg_temp.payload('status') ->> 'status', 'acknowledged', 'with its new status');

-- (d) an alert raised by the worker's own insert is notified, with the
-- default payload (full)
INSERT INTO lambda_detect.inbox (source, payload)
VALUES ('tap-notify', lambda_detect_test.ct_attack('tap-notify-worker-1'));
INSERT INTO tap_payloads
VALUES ('worker', lambda_detect_test.wait_notify('tap_notify_listener', 'tap-notify-worker-1', 'new'));
SELECT isnt(pg_temp.payload('worker'), NULL,
            'an attack sent to the inbox is notified when the worker creates its alert');
SELECT is(pg_temp.payload('worker') ->> 'alert_id',
          (SELECT alert_id::text FROM lambda_detect.alerts WHERE event_id = 'tap-notify-worker-1'),
          'the notification names the worker''s alert');
SELECT is(pg_temp.payload('worker') ->> 'event_id', 'tap-notify-worker-1',
          'with the event''s fields, as the alert row has them');

-- (e) lambda_detect.notify_from = session (for Citus, where the triggers
-- would fire on the nodes holding alerts' shards): the triggers stay silent
-- and the session that creates or triages an alert notifies it, once.
-- notifications_until(conn, marker) returns the alert notifications the
-- listener receives before a marker sent afterwards on another channel:
-- commits are delivered in order, so what did not come before it will not
-- come.
CREATE FUNCTION pg_temp.notifications_until(conn text, marker text, timeout interval DEFAULT '20 seconds')
RETURNS SETOF jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    n        record;
BEGIN
    LOOP
        FOR n IN SELECT * FROM dblink_get_notify(conn) LOOP
            IF n.notify_name = 'tap_marker' AND n.extra = marker THEN
                RETURN;
            ELSIF n.notify_name = 'lambda_detect_alerts' THEN
                RETURN NEXT n.extra::jsonb;
            END IF;
        END LOOP;
        IF clock_timestamp() >= deadline THEN
            RAISE EXCEPTION 'marker % not received', marker;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END;
$$;
SELECT is(dblink_exec('tap_notify_listener', 'LISTEN tap_marker'), 'LISTEN',
          'the listener also listens for markers');

BEGIN;
SET LOCAL lambda_detect.notify_from = session;
INSERT INTO lambda_detect.inbox (source, payload)
VALUES ('tap-notify', lambda_detect_test.ct_attack('tap-notify-session-1'));
SELECT is((SELECT events FROM lambda_detect.ingest_now()), 1, 'session mode: the attack is ingested');
SELECT cmp_ok((SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation')), '>=', 1,
              'and alerted by run_rule');
COMMIT;
SELECT pg_notify('tap_marker', 'session-new') AS marker_sent \gset
SELECT results_eq(
    $$SELECT p ->> 'kind', p ->> 'event_id' FROM pg_temp.notifications_until('tap_notify_listener', 'session-new') p
       WHERE p ->> 'event_id' = 'tap-notify-session-1'$$,
    $$VALUES ('new', 'tap-notify-session-1')$$,
    'notify_from = session: run_rule notifies its new alert itself, once (the trigger is silent)');

SELECT alert_id AS session_alert_id FROM lambda_detect.alerts WHERE event_id = 'tap-notify-session-1' \gset
BEGIN;
SET LOCAL lambda_detect.notify_from = session;
SELECT is((SELECT status FROM lambda_detect.acknowledge_alert(:session_alert_id, 'tap: session mode')),
          'acknowledged', 'acknowledge_alert() works in session mode');
COMMIT;
SELECT pg_notify('tap_marker', 'session-ack') AS marker_sent \gset
SELECT results_eq(
    $$SELECT p ->> 'kind', p ->> 'status' FROM pg_temp.notifications_until('tap_notify_listener', 'session-ack') p
       WHERE (p ->> 'alert_id')::bigint = $$ || :session_alert_id,
    $$VALUES ('status', 'acknowledged')$$,
    'acknowledge_alert() notifies the change itself, once');

BEGIN;
SET LOCAL lambda_detect.notify_from = session;
UPDATE lambda_detect.alerts SET status = 'closed', resolution = 'benign', status_note = 'tap'
 WHERE alert_id = :session_alert_id;
INSERT INTO lambda_detect.alerts
    (rule, rule_version, event_id, event_time, ingested_at, severity, risk_score, reason, event_name)
VALUES ('lambda-public-invocation', 1, 'tap-notify-session-2', now(), now(), 'medium', 47,
        'tap: inserted by hand', 'AddPermission20150331v2');
COMMIT;
SELECT pg_notify('tap_marker', 'session-direct') AS marker_sent \gset
SELECT is((SELECT count(*) FROM pg_temp.notifications_until('tap_notify_listener', 'session-direct')),
          0::bigint,
          'a direct UPDATE of status or INSERT of an alert notifies nothing in session mode');

SELECT throws_ok($$SET lambda_detect.notify_from = everywhere$$, '22023', NULL,
                 'notify_from is trigger or session');
SELECT is(current_setting('lambda_detect.notify_from'), 'trigger', 'trigger by default');
-- and by default the same direct insert is notified by the trigger, as in (a)
INSERT INTO lambda_detect.alerts
    (rule, rule_version, event_id, event_time, ingested_at, severity, risk_score, reason, event_name)
VALUES ('lambda-public-invocation', 1, 'tap-notify-session-3', now(), now(), 'medium', 47,
        'tap: inserted by hand', 'AddPermission20150331v2');
SELECT pg_notify('tap_marker', 'trigger-direct') AS marker_sent \gset
SELECT results_eq(
    $$SELECT p ->> 'event_id' FROM pg_temp.notifications_until('tap_notify_listener', 'trigger-direct') p$$,
    $$VALUES ('tap-notify-session-3')$$,
    'with the default, the trigger notifies the same insert');

SELECT is(dblink_disconnect('tap_notify_listener'), 'OK', 'the listener disconnects');

-- clean up (events first, in the same transaction, so that no later run
-- can alert on them again)
BEGIN;
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-notify-%';
DELETE FROM lambda_detect.alerts WHERE event_id LIKE 'tap-notify-%';
COMMIT;
DROP FUNCTION lambda_detect_test.wait_notify(text, text, text, interval);

SELECT * FROM finish();
