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
GRANT EXECUTE ON FUNCTION lambda_detect.request_scan() TO regress_ingest;
GRANT USAGE ON SCHEMA lambda_detect TO regress_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA lambda_detect TO regress_analyst;
GRANT UPDATE (status, status_note, resolution) ON lambda_detect.alerts TO regress_analyst;
GRANT EXECUTE ON FUNCTION
    lambda_detect.worker_status(),
    lambda_detect.investigate(bigint), lambda_detect.alert_actor(bigint, interval),
    lambda_detect.alert_request(bigint), lambda_detect.alert_source(bigint, interval),
    lambda_detect.alert_timing(bigint, text), lambda_detect.alert_related_events(bigint, interval),
    lambda_detect.alert_remediation(bigint), lambda_detect.find_alert(bigint),
    lambda_detect.effective_investigation_settings(),
    lambda_detect.off_hours(timestamptz, text, time, time, integer[]),
    lambda_detect.classify_user_agent(text), lambda_detect.parse_policy_statement(text),
    lambda_detect.shell_quote(text), lambda_detect.cli_option(text, text),
    lambda_detect.acknowledge_alert(bigint, text), lambda_detect.close_alert(bigint, text, text),
    lambda_detect.notify_alert_changed(bigint, text), lambda_detect.partition_range(oid)
  TO regress_analyst;
GRANT USAGE ON SCHEMA lambda_detect TO regress_admin;
GRANT SELECT, UPDATE ON lambda_detect.rules TO regress_admin;
GRANT EXECUTE ON FUNCTION lambda_detect.run_rule(text, timestamptz), lambda_detect.ingest_now() TO regress_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON lambda_detect.investigation_settings, lambda_detect.known_networks,
    lambda_detect.exceptions TO regress_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON lambda_detect.storage_settings TO regress_admin;
GRANT SELECT ON lambda_detect.maintenance_log, lambda_detect.event_partitions TO regress_admin;
GRANT EXECUTE ON FUNCTION lambda_detect.maintain(integer), lambda_detect.create_event_partition(timestamptz),
    lambda_detect.effective_storage_settings(), lambda_detect.partition_range(oid) TO regress_admin;

-- ingest: can submit, cannot read back or drain
SET ROLE regress_ingest;
INSERT INTO lambda_detect.inbox (source, payload) VALUES ('ingest role', '{"eventID": "pr-1",
  "eventTime": "2026-11-01T10:00:00Z", "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission",
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*", "functionName": "f"}}');
SELECT count(*) FROM lambda_detect.inbox;
SELECT count(*) FROM lambda_detect.events;
SELECT * FROM lambda_detect.ingest_now();
-- asking the worker for a scan is all it may do about files
SELECT lambda_detect.request_scan() IS NOT NULL AS scan_requested;
RESET ROLE;

-- admin: drains and runs rules through the functions alone, tunes rules, reads no events
SET ROLE regress_admin;
SELECT inbox_rows, events FROM lambda_detect.ingest_now();
SELECT alerts_created, status FROM lambda_detect.run_rule('lambda-public-invocation');
UPDATE lambda_detect.rules SET max_signals = 50 WHERE rule = 'lambda-public-invocation';
SELECT count(*) FROM lambda_detect.events;
SELECT count(*) FROM lambda_detect.alerts;
INSERT INTO lambda_detect.known_networks (network, name) VALUES ('10.0.0.0/8', 'corporate');
-- partitions and retention: settings, maintain(), the log; still no event data
INSERT INTO lambda_detect.storage_settings (events_retention) VALUES ('30 days');
SELECT events_retention FROM lambda_detect.effective_storage_settings();
SELECT count(*) > 0 AS made_partitions FROM lambda_detect.maintain();
SELECT count(*) > 0 AS can_read_log FROM lambda_detect.maintenance_log;
SELECT count(*) > 1 AS can_list_partitions FROM lambda_detect.event_partitions;
SELECT count(*) FROM lambda_detect.events_default;
SELECT lambda_detect.delete_expired('lambda_detect.events', 'true', 100, '1 day');
DELETE FROM lambda_detect.storage_settings;
RESET ROLE;
UPDATE lambda_detect.rules SET max_signals = 100 WHERE rule = 'lambda-public-invocation';

-- analyst: reads everything, moves an alert's status, changes nothing else
SET ROLE regress_analyst;
SELECT event_id, principal, status FROM lambda_detect.alerts;
SELECT count(*) FROM lambda_detect.events;
SELECT state <> '' AS has_state FROM lambda_detect.worker_health;
SELECT status FROM lambda_detect.acknowledge_alert((SELECT alert_id FROM lambda_detect.alerts WHERE event_id = 'pr-1'), 'looking');
SELECT status, status_changed_by FROM lambda_detect.alerts WHERE event_id = 'pr-1';
SELECT (lambda_detect.investigate((SELECT alert_id FROM lambda_detect.alerts WHERE event_id = 'pr-1'))) IS NOT NULL AS can_investigate;
SELECT status, resolution FROM lambda_detect.close_alert((SELECT alert_id FROM lambda_detect.alerts WHERE event_id = 'pr-1'), 'true_positive', 'removed');
UPDATE lambda_detect.alerts SET principal = 'nobody' WHERE event_id = 'pr-1';
DELETE FROM lambda_detect.alerts;
UPDATE lambda_detect.rules SET enabled = false;
INSERT INTO lambda_detect.inbox (payload) VALUES ('{}');
SELECT * FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT count(*) FROM lambda_detect.maintain();
INSERT INTO lambda_detect.storage_settings (events_retention) VALUES ('1 day');
RESET ROLE;

-- the partitions maintain() made go, so that later tests see an unpartitioned start
\i sql/include/drop_partitions.sql
TRUNCATE lambda_detect.maintenance_log;

DROP OWNED BY regress_ingest, regress_analyst, regress_admin;
DROP ROLE regress_ingest, regress_analyst, regress_admin;
