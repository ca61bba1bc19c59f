-- Real CloudTrail records written by other projects (../shared/samples, see
-- its README.md for where each comes from and the seed rule's verdict):
-- normalize() reads each shape, and the worker, given all six, alerts on
-- exactly one of them (the Stratus Red Team Lambda backdoor).
--
-- The folder is named by the environment variable PG_SAMPLES_DIR
-- (tools/lib/run-tests.sh sets it); without it every test is skipped.
\ir helpers/setup.sql

SELECT plan(16);

\getenv samples_dir PG_SAMPLES_DIR
\if :{?samples_dir}
\else
\set samples_dir ''
\endif
SELECT :'samples_dir' <> '' AND coalesce((pg_stat_file(:'samples_dir', true)).isdir, false) AS have_samples \gset

\if :have_samples

-- the six files, read by the server
CREATE TEMP TABLE samples AS
SELECT name, pg_read_file(:'samples_dir' || '/' || name || '.json')::jsonb AS payload
  FROM unnest(ARRAY['stratus_1_raw_array', 'stratus_2_raw_array', 'stratus_3_raw_array',
                    'elastic_integrations_1', 'elastic_integrations_2_digest',
                    'aws_docs_1_records']) AS name;
CREATE TEMP TABLE sample_rows AS
SELECT s.name, n.* FROM samples s CROSS JOIN LATERAL lambda_detect.normalize(s.payload) n;

-- 1. normalize() on each shape
SELECT results_eq(
    $$SELECT status, event_id, event_name, event_source, outcome, aws_region, recipient_account_id
        FROM sample_rows WHERE name = 'stratus_1_raw_array'$$,
    $$VALUES ('event', 'b67a9bba-d9da-4980-bf74-baed881b117d', 'AddPermission20150331v2',
              'lambda.amazonaws.com', 'success', 'ca-centralnorth-1r', '880896431042')$$,
    'stratus_1 (a bare array) gives its one AddPermission event');
SELECT results_eq(
    $$SELECT request_parameters ->> 'principal', request_parameters ->> 'action',
             request_parameters ->> 'functionName'
        FROM sample_rows WHERE name = 'stratus_1_raw_array'$$,
    $$VALUES ('*', 'lambda:InvokeFunction', 'stratus-red-team-backdoor-f-func')$$,
    'with its request parameters');
SELECT results_eq(
    $$SELECT status, reason FROM sample_rows WHERE name = 'elastic_integrations_2_digest'$$,
    $$VALUES ('skipped', 'digest_file')$$,
    'elastic_integrations_2_digest is a digest file: one row, skipped with reason digest_file');
SELECT results_eq(
    $$SELECT event_id, event_name, outcome, error_code, request_parameters
        FROM sample_rows WHERE name = 'aws_docs_1_records' ORDER BY event_time$$,
    $$VALUES ('e92a3e85-8ecd-4d23-8074-843aabfe89bf', 'GetFunction', 'failure', 'AccessDenied', NULL::jsonb),
             ('20b84ce5-730f-482e-b2b2-e8fcc87ceb22', 'DeleteFunction', 'success', NULL, '{"functionName": "basic-node-task"}'::jsonb)$$,
    'aws_docs_1 ({"Records": [...]}) gives 2 events, the denied GetFunction a failure');
SELECT results_eq(
    $$SELECT status, event_id, event_name, outcome, request_parameters ->> 'principal'
        FROM sample_rows WHERE name = 'elastic_integrations_1'$$,
    $$VALUES ('event', '98675cf5-df23-4169-8411-58429782c464', 'AddPermission20150331v2', 'success',
              'sns.amazonaws.com')$$,
    'elastic_integrations_1 (a single record) gives its AddPermission to sns.amazonaws.com');
SELECT results_eq(
    $$SELECT name, count(*)::int FROM sample_rows
       WHERE name LIKE 'stratus_%' AND status = 'event' GROUP BY name ORDER BY name$$,
    $$VALUES ('stratus_1_raw_array', 1), ('stratus_2_raw_array', 1), ('stratus_3_raw_array', 1)$$,
    'each Stratus array gives its event');
SELECT is((SELECT count(*) FROM sample_rows WHERE status NOT IN ('event', 'skipped')), 0::bigint,
          'nothing in the real samples is rejected');

-- 2. the worker, given all six, alerts on exactly one
CREATE TEMP TABLE sample_ids AS
SELECT DISTINCT event_id FROM sample_rows WHERE status = 'event';
SELECT is((SELECT count(*) FROM sample_ids), 6::bigint, 'the samples hold 6 distinct events');

-- leftovers of an earlier run of this file (or of anything else that
-- ingested the samples into this database)
BEGIN;
DELETE FROM lambda_detect.inbox WHERE source LIKE 'tap-samples%';
DELETE FROM lambda_detect.events WHERE event_id IN (SELECT event_id FROM sample_ids);
DELETE FROM lambda_detect.alerts WHERE event_id IN (SELECT event_id FROM sample_ids);
COMMIT;
SELECT coalesce(max(run_id), 0) AS runs_before FROM lambda_detect.rule_runs \gset
SELECT coalesce(max(id), 0) AS ingest_runs_before FROM lambda_detect.ingest_runs \gset
SELECT coalesce(max(id), 0) AS errors_before FROM lambda_detect.ingest_errors \gset

INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-samples/' || name, payload FROM samples ORDER BY name;

SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.inbox WHERE source LIKE 'tap-samples%')
              AND (SELECT count(*) FROM lambda_detect.events
                    WHERE event_id IN (SELECT event_id FROM sample_ids)) = 6$$),
          'the worker ingests the six sample payloads');
-- the seed rule must have examined every one of them
SELECT ok(lambda_detect_test.wait_for(format(
            $$EXISTS (SELECT 1 FROM lambda_detect.rule_runs r
                       WHERE r.rule = 'lambda-public-invocation' AND r.run_id > %s
                         AND r.status = 'succeeded' AND NOT r.truncated
                         AND r.window_start <= (SELECT min(ingested_at) FROM lambda_detect.events
                                                 WHERE event_id IN (SELECT event_id FROM sample_ids))
                         AND r.window_end >= (SELECT max(ingested_at) FROM lambda_detect.events
                                               WHERE event_id IN (SELECT event_id FROM sample_ids)))$$,
            :runs_before)),
          'the worker runs the seed rule over them');
SELECT is((SELECT count(*) FROM lambda_detect.ingest_errors
            WHERE id > :errors_before AND source LIKE 'tap-samples%'), 0::bigint,
          'no dead letters for the samples');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.ingest_runs
                   WHERE id > :ingest_runs_before AND skipped_reasons ? 'digest_file'),
          'the digest file is counted as skipped by the worker');
SELECT is((SELECT count(*) FROM lambda_detect.alerts
            WHERE rule = 'lambda-public-invocation' AND event_id IN (SELECT event_id FROM sample_ids)),
          1::bigint,
          'exactly one of the real samples alerts');
SELECT results_eq(
    $$SELECT event_id, principal, function_name, action, statement_id, event_name
        FROM lambda_detect.alerts
       WHERE rule = 'lambda-public-invocation' AND event_id IN (SELECT event_id FROM sample_ids)$$,
    $$VALUES ('b67a9bba-d9da-4980-bf74-baed881b117d', '*', 'stratus-red-team-backdoor-f-func',
              'lambda:InvokeFunction', 'backdoor', 'AddPermission20150331v2')$$,
    'it is the Stratus Red Team backdoor: principal * on stratus-red-team-backdoor-f-func');
SELECT is((SELECT count(*) FROM lambda_detect.alerts
            WHERE event_id = '98675cf5-df23-4169-8411-58429782c464'), 0::bigint,
          'the AddPermission to sns.amazonaws.com does not alert');
SELECT results_eq(
    $$SELECT severity, risk_score, account_id, aws_region
        FROM lambda_detect.alerts WHERE event_id = 'b67a9bba-d9da-4980-bf74-baed881b117d'$$,
    $$VALUES ('medium', 47, '880896431042', 'ca-centralnorth-1r')$$,
    'with the seed rule''s severity and risk score, and the event''s account and region');

-- clean up (events first, in the same transaction, so that no later run
-- can alert on them again)
BEGIN;
DELETE FROM lambda_detect.events WHERE event_id IN (SELECT event_id FROM sample_ids);
DELETE FROM lambda_detect.alerts WHERE event_id IN (SELECT event_id FROM sample_ids);
COMMIT;

\else
SELECT skip('the samples folder is not available (set PG_SAMPLES_DIR to ../shared/samples)', 16);
\endif

SELECT * FROM finish();
