-- The background worker runs the seed rule by itself: an attack that reaches
-- the inbox is alerted within seconds (the run right after the ingest
-- batch), a burst of matches larger than max_signals is alerted in full by
-- catch-up runs with no manual step, and a near miss never alerts.
\ir helpers/setup.sql

SELECT plan(21);

-- leftovers of an earlier, interrupted run of this file
DELETE FROM lambda_detect.inbox WHERE source LIKE 'tap-worker-rules%';
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-rules-%';
DELETE FROM lambda_detect.alerts WHERE event_id LIKE 'tap-worker-rules-%';

SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.rules
                   WHERE rule = 'lambda-public-invocation' AND enabled AND max_signals = 100),
          'the seed rule is enabled with max_signals 100');

-- 1. an attack alerts within seconds; a near miss beside it does not
SELECT coalesce(max(run_id), 0) AS runs_before FROM lambda_detect.rule_runs \gset
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-rules', jsonb_build_object('Records', jsonb_build_array(
    lambda_detect_test.ct_attack('tap-worker-rules-attack-1', jsonb_build_object(
        'sourceIPAddress', '203.0.113.66',
        'eventTime', '2026-11-28T09:59:00Z')),
    lambda_detect_test.ct_attack('tap-worker-rules-benign-1', jsonb_build_object(
        'requestParameters', jsonb_build_object(
            'action', 'lambda:InvokeFunction',
            'functionName', 'f',
            'principal', 's3.amazonaws.com',
            'sourceArn', 'arn:aws:s3:::tap-bucket',
            'statementId', 's3')))));
SELECT clock_timestamp() AS inserted_at \gset

SELECT ok(lambda_detect_test.wait_for(
            $$EXISTS (SELECT 1 FROM lambda_detect.alerts WHERE event_id = 'tap-worker-rules-attack-1')$$),
          'the worker alerts on the attack it ingested');
SELECT results_eq(
    $$SELECT rule, rule_version, severity, risk_score, event_name, account_id, aws_region,
             function_name, statement_id, action, principal, actor_arn, source_ip, event_time, status
        FROM lambda_detect.alerts WHERE event_id = 'tap-worker-rules-attack-1'$$,
    $$VALUES ('lambda-public-invocation', 1, 'medium', 47, 'AddPermission20150331v2', '111122223333',
              'us-east-1', 'f', 's', 'lambda:InvokeFunction', '*',
              'arn:aws:iam::111122223333:user/tap-tester', '203.0.113.66'::inet,
              '2026-11-28 09:59:00+00'::timestamptz, 'open')$$,
    'the alert carries the rule''s metadata and the triage fields');
SELECT results_eq(
    $$SELECT r.trigger IN ('ingest', 'schedule'), r.status, r.alerts_created >= 1,
             r.finished_at IS NOT NULL, r.rule
        FROM lambda_detect.alerts a JOIN lambda_detect.rule_runs r ON r.run_id = a.run_id
       WHERE a.event_id = 'tap-worker-rules-attack-1'$$,
    $$VALUES (true, 'succeeded', true, true, 'lambda-public-invocation')$$,
    'the run that created it was started by the worker (ingest or schedule) and succeeded');
SELECT is((SELECT count(*) FROM lambda_detect.rule_runs
            WHERE run_id > :runs_before AND trigger = 'manual'), 0::bigint,
          'no manual run was involved');

-- the near miss was examined by a run that succeeded, and did not alert
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.rule_runs r, lambda_detect.events e
                   WHERE e.event_id = 'tap-worker-rules-benign-1'
                     AND r.run_id > :runs_before AND r.status = 'succeeded'
                     AND r.window_start <= e.ingested_at AND r.window_end >= e.ingested_at),
          'the non-matching AddPermission was in the window of a finished run');
SELECT is((SELECT count(*) FROM lambda_detect.alerts WHERE event_id = 'tap-worker-rules-benign-1'), 0::bigint,
          'an AddPermission to principal s3.amazonaws.com does not alert');

-- 2. a burst of 250 matches: 250 alerts, by runs capped at 100 and catch-ups
SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.rule_runs WHERE status = 'running')$$),
          'no rule run is in progress before the burst');
SELECT coalesce(max(run_id), 0) AS runs_before_burst FROM lambda_detect.rule_runs \gset
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-rules-burst', jsonb_build_object('Records', jsonb_agg(
           lambda_detect_test.ct_attack(format('tap-worker-rules-burst-%s', lpad(i::text, 3, '0')),
               jsonb_build_object(
                   'requestParameters', jsonb_build_object(
                       'action', 'lambda:InvokeFunction',
                       'functionName', format('burst-function-%s', i),
                       'principal', '*',
                       'statementId', format('burst-%s', i))))
           ORDER BY i))
  FROM generate_series(1, 250) AS i;

SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.inbox WHERE source = 'tap-worker-rules-burst')$$),
          'the burst is ingested');
SELECT is((SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-rules-burst-%'), 250::bigint,
          'all 250 events of the burst are stored');
SELECT ok(lambda_detect_test.wait_for(
            $$(SELECT count(*) FROM lambda_detect.alerts WHERE event_id LIKE 'tap-worker-rules-burst-%') >= 250$$,
            '30 seconds'),
          'the worker alerts on the whole burst by itself');
SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.rule_runs WHERE status = 'running')$$),
          'its runs have finished');
SELECT is((SELECT count(*) FROM lambda_detect.alerts WHERE event_id LIKE 'tap-worker-rules-burst-%'), 250::bigint,
          'exactly 250 alerts, one per event');
SELECT is((SELECT count(DISTINCT event_id) FROM lambda_detect.alerts
            WHERE event_id LIKE 'tap-worker-rules-burst-%' AND rule = 'lambda-public-invocation'), 250::bigint,
          'one alert for each of the 250 events');
SELECT cmp_ok((SELECT count(*) FROM lambda_detect.rule_runs
                WHERE run_id > :runs_before_burst AND truncated), '>=', 2::bigint,
              'at least two runs hit max_signals and say so (truncated)');
SELECT is((SELECT max(alerts_created) FROM lambda_detect.rule_runs WHERE run_id > :runs_before_burst), 100,
          'no run created more than max_signals (100) alerts');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.rule_runs
                   WHERE run_id > :runs_before_burst AND trigger = 'catchup'),
          'a truncated run is followed by a catch-up run');
SELECT is((SELECT count(*) FROM lambda_detect.rule_runs
            WHERE run_id > :runs_before_burst AND (status <> 'succeeded' OR trigger = 'manual')), 0::bigint,
          'all those runs were the worker''s and succeeded');
SELECT cmp_ok((SELECT sum(alerts_created) FROM lambda_detect.rule_runs WHERE run_id > :runs_before_burst),
              '>=', 250::bigint,
              'the runs account for the 250 alerts');
SELECT ok((SELECT bool_and(a.run_id > :runs_before_burst)
             FROM lambda_detect.alerts a WHERE a.event_id LIKE 'tap-worker-rules-burst-%'),
          'each burst alert names the run that created it');

-- the near miss still has no alert after all those runs
SELECT is((SELECT count(*) FROM lambda_detect.alerts WHERE event_id = 'tap-worker-rules-benign-1'), 0::bigint,
          'the non-matching AddPermission never alerts');

-- clean up (events first, in the same transaction, so that no later run
-- can alert on them again)
BEGIN;
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-rules-%';
DELETE FROM lambda_detect.alerts WHERE event_id LIKE 'tap-worker-rules-%';
COMMIT;

SELECT * FROM finish();
