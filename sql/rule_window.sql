-- run_rule's window is on ingest time (late deliveries alert), overlapping
-- runs never duplicate, the max_signals cap truncates a run without losing
-- matches, and a failing run is recorded with its error.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
SET timezone = 'UTC';

CREATE FUNCTION pg_temp.attack(id text, event_time timestamptz DEFAULT now()) RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_build_object('eventID', id,
    'eventTime', to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'eventSource', 'lambda.amazonaws.com', 'eventName', 'AddPermission20150331v2',
    'awsRegion', 'us-east-1', 'recipientAccountId', '111122223333',
    'requestParameters', jsonb_build_object('action', 'lambda:InvokeFunction',
                                            'functionName', 'f-' || id, 'principal', '*'))
$$;

-- an event delivered three days late is ingested now, so it alerts now
INSERT INTO lambda_detect.inbox (payload) VALUES (pg_temp.attack('late', now() - interval '3 days'));
SELECT events FROM lambda_detect.ingest_now();
SELECT candidates, alerts_created FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT event_id, detected_at - event_time > interval '2 days' AS alerted_late FROM lambda_detect.alerts;

-- the window is [as_of - lookback, as_of] on ingested_at
INSERT INTO lambda_detect.inbox (payload) VALUES (pg_temp.attack('w-1'));
SELECT events FROM lambda_detect.ingest_now();
SELECT candidates, alerts_created FROM lambda_detect.run_rule('lambda-public-invocation', now() + interval '2 hours');
SELECT candidates, alerts_created FROM lambda_detect.run_rule('lambda-public-invocation', now() - interval '1 hour');
SELECT count(*) FROM lambda_detect.alerts WHERE event_id = 'w-1';
-- overlapping windows: the event is in both, alerted once
SELECT candidates, alerts_created, duplicates FROM lambda_detect.run_rule('lambda-public-invocation', now() + interval '30 minutes');
SELECT candidates, alerts_created, duplicates FROM lambda_detect.run_rule('lambda-public-invocation', now() + interval '40 minutes');
SELECT count(*) FROM lambda_detect.alerts WHERE event_id = 'w-1';
SELECT trigger, window_end - window_start AS window, status FROM lambda_detect.rule_runs ORDER BY run_id DESC LIMIT 1;

-- the cap: at most max_signals new alerts per run; a truncated run says so,
-- and the next run continues where it stopped
UPDATE lambda_detect.rules SET max_signals = 3 WHERE rule = 'lambda-public-invocation';
INSERT INTO lambda_detect.inbox (payload)
  SELECT jsonb_build_object('Records', jsonb_agg(pg_temp.attack('cap-' || g) ORDER BY g))
    FROM generate_series(1, 7) g;
SELECT events FROM lambda_detect.ingest_now();
SELECT alerts_created, duplicates, truncated FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT alerts_created, duplicates, truncated FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT alerts_created, duplicates, truncated FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT count(*) AS cap_alerts FROM lambda_detect.alerts WHERE event_id LIKE 'cap-%';
UPDATE lambda_detect.rules SET max_signals = 100 WHERE rule = 'lambda-public-invocation';

-- a failing run is recorded as failed, its alerts rolled back, and reported
CREATE FUNCTION pg_temp.break_alerts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'alerts are read-only today' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER break_alerts BEFORE INSERT ON lambda_detect.alerts
  FOR EACH ROW EXECUTE FUNCTION pg_temp.break_alerts();
INSERT INTO lambda_detect.inbox (payload) VALUES (pg_temp.attack('fail-1'));
SELECT events FROM lambda_detect.ingest_now();
SELECT candidates, alerts_created, status, error_sqlstate, error, finished_at IS NOT NULL AS finished
  FROM lambda_detect.run_rule('lambda-public-invocation');
DROP TRIGGER break_alerts ON lambda_detect.alerts;
SELECT count(*) FROM lambda_detect.alerts WHERE event_id = 'fail-1';
-- the next run creates the alert the failed one could not
SELECT alerts_created, status FROM lambda_detect.run_rule('lambda-public-invocation');

-- a disabled rule is not scheduled by the worker, but can still be run by hand
UPDATE lambda_detect.rules SET enabled = false WHERE rule = 'lambda-public-invocation';
SELECT status FROM lambda_detect.run_rule('lambda-public-invocation');
UPDATE lambda_detect.rules SET enabled = true WHERE rule = 'lambda-public-invocation';

-- every run left a finished row
SELECT status, count(*) FROM lambda_detect.rule_runs GROUP BY status ORDER BY status;
