-- The background worker drains lambda_detect.inbox: every accepted shape,
-- deduplication by eventID, dead letters for bad input next to good records,
-- and the heartbeat.  Rows are inserted in autocommit statements (the worker
-- only sees committed rows), then the test waits for the effect.
\ir helpers/setup.sql

SELECT plan(23);

-- leftovers of an earlier, interrupted run of this file
DELETE FROM lambda_detect.inbox WHERE source LIKE 'tap-worker-inbox%';
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-inbox-%';
DELETE FROM lambda_detect.ingest_errors WHERE source LIKE 'tap-worker-inbox%';

-- where the logs stood before this file
SELECT coalesce(max(id), 0) AS runs_before FROM lambda_detect.ingest_runs \gset
SELECT events AS hb_events_before, batches AS hb_batches_before
  FROM lambda_detect.worker_status() \gset

-- 1. the worker is there
SELECT ok(lambda_detect_test.wait_for(
            $$(SELECT pid IS NOT NULL FROM lambda_detect.worker_status())$$),
          'the background worker is running (worker_status().pid is set)');
SELECT ok((SELECT state NOT IN ('not preloaded', 'not started', 'stopped', 'exited')
             FROM lambda_detect.worker_status()),
          'worker_status().state says the worker is alive');
SELECT is((SELECT database FROM lambda_detect.worker_status()), current_database()::text,
          'the worker is connected to this database');
SELECT ok(lambda_detect_test.wait_for(
            $$(SELECT state NOT IN ('starting', 'waiting for extension')
                 FROM lambda_detect.worker_status())$$),
          'the worker has found the extension');

-- Make the worker's idle sleep long, so that only the inbox trigger's
-- wake-up (not the next poll) can make it ingest quickly.  The reload is
-- taken once the worker has been through its loop again.
ALTER SYSTEM SET lambda_detect.naptime = '10min';
SELECT clock_timestamp() AS reloaded_at, pg_reload_conf() AS reloaded \gset
SELECT ok(lambda_detect_test.wait_for(
            format('(SELECT last_activity_at > %L FROM lambda_detect.worker_status())',
                   :'reloaded_at')),
          'the worker went through its loop after the reload');

-- 2. each accepted shape is drained and stored
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-inbox', jsonb_build_object('Records', jsonb_build_array(
    lambda_detect_test.ct_record('tap-worker-inbox-1', jsonb_build_object(
        'eventName', 'GetFunction20150331v2',
        'errorCode', 'AccessDenied',
        'errorMessage', 'User is not authorized to perform: lambda:GetFunction')),
    lambda_detect_test.ct_record('tap-worker-inbox-2', jsonb_build_object(
        'eventName', 'ListFunctions20150331',
        'sourceIPAddress', '203.0.113.20'))));
SELECT clock_timestamp() AS inserted_at \gset
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-inbox', lambda_detect_test.ct_record('tap-worker-inbox-3', jsonb_build_object(
    'eventName', 'DeleteFunction20150331',
    'readOnly', false,
    'errorMessage', 'only a message',
    'sourceIPAddress', '2001:db8::7'));
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-inbox', jsonb_build_object(
    'version', '0',
    'id', 'b1e2c3d4-0000-0000-0000-000000000001',
    'detail-type', 'AWS API Call via CloudTrail',
    'source', 'aws.lambda',
    'account', '111122223333',
    'time', '2026-11-28T10:00:00Z',
    'region', 'us-east-1',
    'resources', '[]'::jsonb,
    'detail', lambda_detect_test.ct_record('tap-worker-inbox-4', jsonb_build_object(
        'eventName', 'UpdateFunctionCode20150331v2',
        'readOnly', false,
        'sourceIPAddress', 'cloudformation.amazonaws.com',
        'errorCode', '')));

SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.inbox WHERE source = 'tap-worker-inbox')
              AND (SELECT count(*) FROM lambda_detect.events
                    WHERE event_id LIKE 'tap-worker-inbox-_') = 4$$),
          'the worker drains the inbox rows and stores their 4 events');
SELECT is((SELECT count(*) FROM lambda_detect.inbox WHERE source = 'tap-worker-inbox'), 0::bigint,
          'the drained inbox rows are gone');
SELECT results_eq(
    $$SELECT event_id, event_name, outcome, source_ip, source_address
        FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-inbox-_' ORDER BY event_id$$,
    $$VALUES ('tap-worker-inbox-1', 'GetFunction20150331v2', 'failure', '198.51.100.7'::inet, '198.51.100.7'),
             ('tap-worker-inbox-2', 'ListFunctions20150331', 'success', '203.0.113.20'::inet, '203.0.113.20'),
             ('tap-worker-inbox-3', 'DeleteFunction20150331', 'failure', '2001:db8::7'::inet, '2001:db8::7'),
             ('tap-worker-inbox-4', 'UpdateFunctionCode20150331v2', 'success', NULL::inet, 'cloudformation.amazonaws.com')$$,
    'events of a Records array, a single record and an EventBridge envelope: name, outcome and source ip');
SELECT results_eq(
    $$SELECT event_time, event_source, aws_region, recipient_account_id, actor_arn, actor_type,
             access_key_id, user_name, user_agent, request_parameters
        FROM lambda_detect.events WHERE event_id = 'tap-worker-inbox-4'$$,
    $$VALUES ('2026-11-28 10:00:00+00'::timestamptz, 'lambda.amazonaws.com', 'us-east-1', '111122223333',
              'arn:aws:iam::111122223333:user/tap-tester', 'IAMUser', 'AKIAEXAMPLETAP', 'tap-tester',
              'aws-cli/2.15.0', '{"functionName": "tap-function"}'::jsonb)$$,
    'the record inside the EventBridge envelope is stored with its typed fields');
SELECT is((SELECT record FROM lambda_detect.events WHERE event_id = 'tap-worker-inbox-2'),
          lambda_detect_test.ct_record('tap-worker-inbox-2', jsonb_build_object(
              'eventName', 'ListFunctions20150331',
              'sourceIPAddress', '203.0.113.20')),
          'the original record is kept whole');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.ingest_runs
                   WHERE id > :runs_before AND origin = 'worker' AND kind = 'inbox'
                     AND inbox_rows > 0 AND events > 0),
          'ingest_runs records the worker''s batches');

-- 3. the same payload sent twice is stored once
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-inbox-dup', jsonb_build_object('Records', jsonb_build_array(
    lambda_detect_test.ct_record('tap-worker-inbox-dup-1')));
SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.inbox WHERE source = 'tap-worker-inbox-dup')
              AND EXISTS (SELECT 1 FROM lambda_detect.events WHERE event_id = 'tap-worker-inbox-dup-1')$$),
          'the first copy of a payload is ingested');
SELECT coalesce(max(id), 0) AS runs_before_dup FROM lambda_detect.ingest_runs \gset
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-inbox-dup', jsonb_build_object('Records', jsonb_build_array(
    lambda_detect_test.ct_record('tap-worker-inbox-dup-1')));
SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.inbox WHERE source = 'tap-worker-inbox-dup')$$),
          'the second copy is drained too');
SELECT is((SELECT count(*) FROM lambda_detect.events WHERE event_id = 'tap-worker-inbox-dup-1'), 1::bigint,
          'the event sent twice is stored once');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.ingest_runs
                   WHERE id > :runs_before_dup AND origin = 'worker' AND kind = 'inbox'
                     AND duplicates > 0),
          'the batch of the second copy counts it as a duplicate in ingest_runs');

-- 4. bad input is dead-lettered while the good records next to it are stored
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-worker-inbox-bad', jsonb_build_object('Records', jsonb_build_array(
    lambda_detect_test.ct_record('tap-worker-inbox-bad-good-1'),
    lambda_detect_test.ct_record('tap-worker-inbox-bad-no-id', '{"eventID": null}'),
    lambda_detect_test.ct_record('tap-worker-inbox-bad-good-2')));
INSERT INTO lambda_detect.inbox (source, payload)
VALUES ('tap-worker-inbox-scalar', '"just a string"');
SELECT ok(lambda_detect_test.wait_for(
            $$NOT EXISTS (SELECT 1 FROM lambda_detect.inbox
                           WHERE source IN ('tap-worker-inbox-bad', 'tap-worker-inbox-scalar'))
              AND (SELECT count(*) FROM lambda_detect.ingest_errors
                    WHERE source IN ('tap-worker-inbox-bad', 'tap-worker-inbox-scalar')) >= 2$$),
          'the inbox rows holding bad input are drained');
SELECT set_eq(
    $$SELECT event_id FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-inbox-bad-%'$$,
    ARRAY['tap-worker-inbox-bad-good-1', 'tap-worker-inbox-bad-good-2'],
    'the good records beside a bad one in the same Records array are stored');
SELECT results_eq(
    $$SELECT reason, sqlstate, payload ->> 'requestID', inbox_id IS NOT NULL
        FROM lambda_detect.ingest_errors WHERE source = 'tap-worker-inbox-bad'$$,
    $$VALUES ('missing_field', '23502', 'req-tap-worker-inbox-bad-no-id', true)$$,
    'the record without eventID is dead-lettered (missing_field) with the record kept');
SELECT results_eq(
    $$SELECT reason, payload FROM lambda_detect.ingest_errors WHERE source = 'tap-worker-inbox-scalar'$$,
    $$VALUES ('not_cloudtrail', '"just a string"'::jsonb)$$,
    'a JSON scalar is dead-lettered as not_cloudtrail with the payload kept');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.ingest_runs
                   WHERE id > :runs_before AND origin = 'worker' AND kind = 'inbox' AND errors > 0),
          'ingest_runs counts the dead letters');

-- 5. the heartbeat counted the work
SELECT cmp_ok((SELECT events FROM lambda_detect.worker_status()), '>=', (:hb_events_before + 7)::bigint,
              'worker_status().events grew by at least the 7 events stored');
SELECT cmp_ok((SELECT batches FROM lambda_detect.worker_status()), '>', :hb_batches_before::bigint,
              'worker_status().batches grew');
SELECT cmp_ok((SELECT last_ingest_at FROM lambda_detect.worker_status()), '>=', :'inserted_at'::timestamptz,
              'worker_status().last_ingest_at is recent');

-- clean up
ALTER SYSTEM RESET lambda_detect.naptime;
SELECT pg_reload_conf() AS reloaded \gset
DELETE FROM lambda_detect.inbox WHERE source LIKE 'tap-worker-inbox%';
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-inbox-%';
DELETE FROM lambda_detect.ingest_errors WHERE source LIKE 'tap-worker-inbox%';

SELECT * FROM finish();
