-- The background worker keeps the partitions of events: it makes today's
-- and the next ones, drains a late event out of events_default into a
-- partition of its own day (the rule alerts on it all the same), leaves an
-- event dated beyond the partitions made ahead waiting there, and logs
-- each step.  lambda_detect.maintenance_interval is shortened for the test,
-- which waits for each effect with a deadline.
\ir helpers/setup.sql

SELECT plan(8);

-- leftovers of an earlier, interrupted run of this file
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-maint-%';
DELETE FROM lambda_detect.alerts WHERE event_id LIKE 'tap-maint-%';

ALTER SYSTEM SET lambda_detect.maintenance_interval = '300ms';
SELECT clock_timestamp() AS reloaded_at, pg_reload_conf() AS reloaded \gset
SELECT ok(lambda_detect_test.wait_for(
            format('(SELECT last_activity_at > %L FROM lambda_detect.worker_status())', :'reloaded_at')),
          'the worker went through its loop after the reload');

-- 1. today's partition and the next ones exist without anyone asking
SELECT ok(lambda_detect_test.wait_for(
            $$(SELECT count(*) >= 4 FROM lambda_detect.event_partitions
                WHERE NOT is_default AND range_end > now())$$),
          'the worker made the current partition and those ahead');

-- 2. a late attack (12 days old) and an early event (40 days ahead)
SELECT to_char((now() - interval '12 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS late_time,
       to_char((now() + interval '40 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS early_time \gset
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('tap-maint', lambda_detect_test.ct_attack('tap-maint-late') || jsonb_build_object('eventTime', :'late_time')),
  ('tap-maint', lambda_detect_test.ct_record('tap-maint-early') || jsonb_build_object('eventTime', :'early_time'));

-- (the wait reads maintenance_log only: a statement reading events for
-- the whole wait would hold the lock that attaching a partition needs, and
-- maintain() would rightly give way to it)
SELECT ok(lambda_detect_test.wait_for(
            format($$EXISTS (SELECT 1 FROM lambda_detect.maintenance_log l
                              WHERE l.action = 'create_partition' AND l.rows >= 1
                                AND l.range_start <= %L::timestamptz
                                AND %L::timestamptz < l.range_end)$$, :'late_time', :'late_time')),
          'maintenance_log records the partition made for the late event and the rows moved in');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.events e
                   WHERE e.event_id = 'tap-maint-late'
                     AND e.tableoid <> 'lambda_detect.events_default'::regclass),
          'the late event was moved out of events_default into a partition');
SELECT is((SELECT p.range_start <= e.event_time AND e.event_time < p.range_end
             FROM lambda_detect.events e
             JOIN lambda_detect.event_partitions p ON p.partition = e.tableoid::regclass
            WHERE e.event_id = 'tap-maint-late'),
          true, 'its partition is the one of its day');

SELECT ok(lambda_detect_test.wait_for(
            $$EXISTS (SELECT 1 FROM lambda_detect.alerts WHERE event_id = 'tap-maint-late')$$),
          'the late attack is alerted (rule windows are on ingest time)');
SELECT is((SELECT tableoid::regclass::text FROM lambda_detect.events WHERE event_id = 'tap-maint-early'),
          'lambda_detect.events_default',
          'an event dated beyond the partitions made ahead waits in events_default');
SELECT is((SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'tap-maint-%'), 2::bigint,
          'each event is stored once');

ALTER SYSTEM RESET lambda_detect.maintenance_interval;
SELECT pg_reload_conf();
DELETE FROM lambda_detect.alerts WHERE event_id LIKE 'tap-maint-%';
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-maint-%';

SELECT * FROM finish();
