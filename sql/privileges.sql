-- The three duties with exactly the grants the README gives them: each can
-- do its job, and nothing more.
\set VERBOSITY terse
\i sql/include/fresh_state.sql

CREATE ROLE regress_ingest LOGIN;
CREATE ROLE regress_analyst LOGIN;
CREATE ROLE regress_admin LOGIN;
-- the README's grants, word for word
GRANT USAGE ON SCHEMA lambda_detect TO regress_ingest;
GRANT INSERT ON lambda_detect.inbox TO regress_ingest;
GRANT USAGE ON SCHEMA lambda_detect TO regress_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA lambda_detect TO regress_analyst;
GRANT UPDATE (status, status_note) ON lambda_detect.alerts TO regress_analyst;
GRANT EXECUTE ON FUNCTION lambda_detect.worker_status() TO regress_analyst;
GRANT USAGE ON SCHEMA lambda_detect TO regress_admin;
GRANT SELECT, UPDATE ON lambda_detect.rules TO regress_admin;
GRANT EXECUTE ON FUNCTION lambda_detect.run_rule(text, timestamptz), lambda_detect.ingest_now() TO regress_admin;

-- ingest: can submit, cannot read back or drain
SET ROLE regress_ingest;
INSERT INTO lambda_detect.inbox (source, payload) VALUES ('ingest role', '{"eventID": "pr-1",
  "eventTime": "2026-11-01T10:00:00Z", "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission",
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*", "functionName": "f"}}');
SELECT count(*) FROM lambda_detect.inbox;
SELECT count(*) FROM lambda_detect.events;
SELECT * FROM lambda_detect.ingest_now();
RESET ROLE;

-- admin: drains and runs rules through the functions alone, tunes rules, reads no events
SET ROLE regress_admin;
SELECT inbox_rows, events FROM lambda_detect.ingest_now();
SELECT alerts_created, status FROM lambda_detect.run_rule('lambda-public-invocation');
UPDATE lambda_detect.rules SET max_signals = 50 WHERE rule = 'lambda-public-invocation';
SELECT count(*) FROM lambda_detect.events;
SELECT count(*) FROM lambda_detect.alerts;
RESET ROLE;
UPDATE lambda_detect.rules SET max_signals = 100 WHERE rule = 'lambda-public-invocation';

-- analyst: reads everything, moves an alert's status, changes nothing else
SET ROLE regress_analyst;
SELECT event_id, principal, status FROM lambda_detect.alerts;
SELECT count(*) FROM lambda_detect.events;
SELECT state <> '' AS has_state FROM lambda_detect.worker_health;
UPDATE lambda_detect.alerts SET status = 'acknowledged', status_note = 'looking' WHERE event_id = 'pr-1';
SELECT status, status_changed_by FROM lambda_detect.alerts WHERE event_id = 'pr-1';
UPDATE lambda_detect.alerts SET principal = 'nobody' WHERE event_id = 'pr-1';
DELETE FROM lambda_detect.alerts;
UPDATE lambda_detect.rules SET enabled = false;
INSERT INTO lambda_detect.inbox (payload) VALUES ('{}');
SELECT * FROM lambda_detect.run_rule('lambda-public-invocation');
RESET ROLE;

DROP OWNED BY regress_ingest, regress_analyst, regress_admin;
DROP ROLE regress_ingest, regress_analyst, regress_admin;
