-- The NOTIFY payload of an alert: compact JSON, always under NOTIFY's
-- 8000-byte limit however long the alert's values were.  By default
-- (lambda_detect.notify_payload = full) it has the alert row's fields an
-- integration routes on; any role that can connect may LISTEN, so a
-- superuser may choose minimal: the alert and its rule, nothing of the
-- event.  (Delivery
-- to a listener is tested in test/notify.sql, to a role with no grant in
-- t/009_no_secrets.pl.)
\set VERBOSITY terse
\i sql/include/fresh_state.sql
SET timezone = 'UTC';

INSERT INTO lambda_detect.alerts (rule, rule_version, event_id, event_time, ingested_at,
    severity, risk_score, reason, account_id, aws_region, event_name, function_name,
    statement_id, principal, actor_arn, source_address, source_ip)
VALUES ('lambda-public-invocation', 1, 'np-1', '2026-11-01 10:00:00+00', now(), 'medium', 47,
        'test', '111122223333', 'us-east-1', 'AddPermission20150331v2', 'payments', 'open', '*',
        'arn:aws:iam::111122223333:user/mallory', '198.51.100.23', '198.51.100.23');

SHOW lambda_detect.notify_payload;
SELECT jsonb_pretty(lambda_detect.alert_notify_payload(a, 'new')::jsonb - 'alert_id')
  FROM lambda_detect.alerts a WHERE event_id = 'np-1';

-- only a superuser chooses what every listener receives
CREATE ROLE regress_notify_user;
SET ROLE regress_notify_user;
SET lambda_detect.notify_payload = minimal;
RESET ROLE;
DROP ROLE regress_notify_user;

SET lambda_detect.notify_payload = minimal;
SELECT jsonb_pretty(lambda_detect.alert_notify_payload(a, 'new')::jsonb - 'alert_id')
  FROM lambda_detect.alerts a WHERE event_id = 'np-1';
RESET lambda_detect.notify_payload;

-- values of 100,000 characters are cut; the insert does not fail
INSERT INTO lambda_detect.alerts (rule, rule_version, event_id, event_time, ingested_at,
    severity, risk_score, reason, event_name, function_name, principal, actor_arn, account_id,
    aws_region, statement_id, source_address)
SELECT 'lambda-public-invocation', 1, 'np-long-' || repeat('e', 100000), now(), now(), 'medium', 47,
       'test', 'AddPermission', repeat('f', 100000), '*' || repeat('p', 100000), repeat('a', 100000),
       repeat('1', 100000), repeat('r', 100000), repeat('s', 100000), repeat('i', 100000);
SELECT octet_length(lambda_detect.alert_notify_payload(a, 'new')) < 8000 AS fits,
       length(lambda_detect.alert_notify_payload(a, 'new')::jsonb ->> 'function_name') AS function_name_chars
  FROM lambda_detect.alerts a WHERE event_id LIKE 'np-long-%';

-- multibyte and escaped characters count in bytes: still under the limit
UPDATE lambda_detect.alerts SET function_name = repeat(E'\u00e9"\\', 50000),
       actor_arn = repeat(E'\u2603', 50000), principal = repeat(E'\x01', 50000)
 WHERE event_id LIKE 'np-long-%';
SELECT octet_length(lambda_detect.alert_notify_payload(a, 'new')) < 8000 AS fits,
       length(lambda_detect.alert_notify_payload(a, 'new')::jsonb ->> 'actor_arn') AS actor_arn_chars,
       (SELECT count(*) FROM jsonb_object_keys(lambda_detect.alert_notify_payload(a, 'new')::jsonb)) AS keys
  FROM lambda_detect.alerts a WHERE event_id LIKE 'np-long-%';
-- the minimal payload is cut the same way
RESET lambda_detect.notify_payload;
SELECT octet_length(lambda_detect.alert_notify_payload(a, 'new')) < 8000 AS fits,
       length(lambda_detect.alert_notify_payload(a, 'new')::jsonb ->> 'rule') AS rule_chars,
       (SELECT count(*) FROM jsonb_object_keys(lambda_detect.alert_notify_payload(a, 'new')::jsonb)) AS keys
  FROM lambda_detect.alerts a WHERE event_id LIKE 'np-long-%';
-- severity is one of four words, so it cannot grow either
UPDATE lambda_detect.alerts SET severity = repeat('x', 100000) WHERE event_id = 'np-1';

-- a status change stamps who and when
UPDATE lambda_detect.alerts SET status = 'acknowledged', status_note = 'looking'
 WHERE event_id = 'np-1';
SELECT status, status_changed_by = current_user AS by_me, status_changed_at IS NOT NULL AS stamped,
       lambda_detect.alert_notify_payload(a, 'status')::jsonb ->> 'kind' AS kind
  FROM lambda_detect.alerts a WHERE event_id = 'np-1';
UPDATE lambda_detect.alerts SET status = 'resolved' WHERE event_id = 'np-1';
DELETE FROM lambda_detect.alerts WHERE event_id LIKE 'np-%';
