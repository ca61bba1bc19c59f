-- Partitions of events and retention: maintain() makes partitions ahead,
-- drains events_default (late events get their partition, early ones wait,
-- expired ones go), drops expired partitions and deletes expired rows of
-- the other tables in bounded steps, logging each step; duplicates are
-- caught across partitions and ingestion days.  Times are shown relative
-- to the start of today (UTC), so the output does not depend on the date.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';
TRUNCATE lambda_detect.maintenance_log, lambda_detect.storage_settings RESTART IDENTITY;

CREATE FUNCTION pg_temp.day(t timestamptz) RETURNS text LANGUAGE sql AS $$
  SELECT CASE WHEN t IS NULL THEN NULL
              ELSE 'D' || to_char(floor(extract(epoch FROM t - date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                                        / 86400)::int, 'SG00') END
$$;
-- pg_temp.at(id, days): the attack, dated that many days from the start of
-- the test (the same record each time it is delivered)
CREATE TEMP TABLE test_start AS SELECT date_trunc('second', now()) AS t;
CREATE FUNCTION pg_temp.at(id text, days int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT pg_temp.attack(id, jsonb_build_object('eventTime',
           to_char((t + days * interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
    FROM test_start
$$;
-- pg_temp.rules_examined(): what the worker's rule runs record when they
-- have examined everything ingested so far (manual runs record nothing)
CREATE FUNCTION pg_temp.rules_examined() RETURNS void LANGUAGE sql AS $$
  INSERT INTO lambda_detect.rule_runs (rule, rule_version, trigger, window_start, window_end,
                                       started_at, finished_at, status, complete_until)
  SELECT rule, version, 'schedule', now(), clock_timestamp(), now(), clock_timestamp(), 'succeeded',
         clock_timestamp()
    FROM lambda_detect.rules WHERE enabled
$$;
CREATE FUNCTION pg_temp.partitions() RETURNS TABLE (range_start text, range_end text, is_default boolean, rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT * FROM lambda_detect.event_partitions ORDER BY is_default, range_start LOOP
    range_start := pg_temp.day(p.range_start);
    range_end := pg_temp.day(p.range_end);
    is_default := p.is_default;
    EXECUTE format('SELECT count(*) FROM %s', p.partition) INTO rows;
    RETURN NEXT;
  END LOOP;
END $$;
CREATE FUNCTION pg_temp.log() RETURNS TABLE (id bigint, action text, is_partition boolean, target text, rows bigint,
                                             range_start text, range_end text, detail text)
LANGUAGE sql AS $$
  SELECT id, action, target LIKE 'events_p%', CASE WHEN target LIKE 'events_p%' THEN 'events_p…' ELSE target END,
         rows, pg_temp.day(range_start), pg_temp.day(range_end), detail
    FROM lambda_detect.maintenance_log ORDER BY id
$$;

-- the defaults
SELECT partition_interval, partitions_ahead, events_retention, alerts_retention, rule_runs_retention,
       ingest_runs_retention, ingest_errors_retention, ingested_files_retention, step_rows
  FROM lambda_detect.effective_storage_settings();

-- 1. a fresh install has only events_default; maintain() makes today's
-- partition and three more, and a second call has nothing to do
SELECT * FROM pg_temp.partitions();
SELECT action, rows FROM lambda_detect.maintain();
SELECT * FROM pg_temp.partitions();
SELECT count(*) AS steps FROM lambda_detect.maintain();
-- partitions are named by their first day and readable by no one else
SELECT count(*) FILTER (WHERE partition::text ~ '^lambda_detect\.events_p\d{8}$') AS well_named,
       bool_or(has_table_privilege('public', partition, 'SELECT')) AS public_can_read
  FROM lambda_detect.event_partitions WHERE NOT is_default;
-- and every partition keeps rows of up to a page whole, out of TOAST
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE c.reloptions @> '{toast_tuple_target=8160}') AS rows_kept_whole
  FROM lambda_detect.event_partitions p JOIN pg_class c ON c.oid = p.partition;
-- a row of 2 to 8 kB (its record does not compress) is stored whole: its
-- partition's TOAST table gains nothing (by default it would hold the record)
BEGIN;
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'whole row', jsonb_build_object('eventID', 'st-whole', 'eventTime', now(),
         'eventSource', 's3.amazonaws.com', 'eventName', 'PutObject',
         'requestParameters', jsonb_build_object('blob',
             (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 60) i)));
SELECT c.reltoastrelid::regclass AS toast
  FROM lambda_detect.event_partitions p JOIN pg_class c ON c.oid = p.partition
 WHERE NOT p.is_default AND now() >= p.range_start AND now() < p.range_end \gset
SELECT count(*) AS toast_rows_before FROM :toast \gset
SELECT events FROM lambda_detect.ingest_now();
SELECT pg_column_size(e.*) > 2500 AS wide_row, (SELECT count(*) FROM :toast) - :toast_rows_before AS toast_rows_added
  FROM lambda_detect.events e WHERE event_id = 'st-whole';
ROLLBACK;

-- 2. routing: today's event goes to its partition, a late one (10 days
-- ago) and an early one (30 days ahead) wait in events_default, and two
-- older than the 90-day retention too (an attack and an ordinary call)
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('route', pg_temp.at('today', 0)),
  ('route', pg_temp.at('late', -10)),
  ('route', pg_temp.at('early', 30)),
  ('route', pg_temp.at('expired', -200)),
  ('route', pg_temp.at('expired-other', -200) || '{"eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity"}');
SELECT events FROM lambda_detect.ingest_now();
SELECT tableoid::regclass = 'lambda_detect.events_default'::regclass AS in_default, event_id
  FROM lambda_detect.events ORDER BY event_time;
-- every one of them is examined by the rule (its window is on ingest time)
SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation');
-- maintain: the late event gets a partition of its own day, the expired
-- ordinary call is deleted, the early one waits for its day (it is beyond
-- the partitions made ahead), and the expired attack stays: no worker run
-- has examined it yet (run_rule() from SQL records no watermark), and an
-- old event delivered late must be seen by the rules before it goes
SELECT action, rows FROM lambda_detect.maintain();
SELECT * FROM pg_temp.partitions();
SELECT event_id, pg_temp.day(event_time) AS day FROM lambda_detect.events_default ORDER BY event_id;
-- once the rules have examined it, it goes, with its entry in the log
SELECT pg_temp.rules_examined();
SELECT action, target, rows FROM lambda_detect.maintain();
SELECT event_id, pg_temp.day(event_time) AS day FROM lambda_detect.events_default ORDER BY event_id;
SELECT count(*) AS logged FROM lambda_detect.rule_candidates WHERE event_id = 'expired';
SELECT event_id FROM lambda_detect.alerts ORDER BY event_id;
SELECT * FROM pg_temp.log() WHERE id > 4 ORDER BY id;

-- 3. duplicates across ingestion days: the late event is delivered again,
-- as if the next day; and an event stored while in events_default is
-- caught again after it moved to its partition
UPDATE lambda_detect.events SET ingested_at = ingested_at - interval '1 day';
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('again', pg_temp.at('late', -10)),
  ('again', pg_temp.at('early', 30)),
  ('again', pg_temp.at('today', 0));
SELECT events, duplicates FROM lambda_detect.ingest_now();
SELECT event_id, count(*) FROM lambda_detect.events GROUP BY event_id ORDER BY event_id;
-- an event whose partition is made while its copy waits in the inbox
INSERT INTO lambda_detect.inbox (source, payload) VALUES ('x', pg_temp.at('drained', -20));
SELECT events FROM lambda_detect.ingest_now();
SELECT action FROM lambda_detect.maintain();
INSERT INTO lambda_detect.inbox (source, payload) VALUES ('x', pg_temp.at('drained', -20));
SELECT events, duplicates FROM lambda_detect.ingest_now();
SELECT count(*) AS copies, bool_and(tableoid::regclass::text LIKE 'lambda_detect.events_p%') AS in_partition
  FROM lambda_detect.events WHERE event_id = 'drained';

-- 4. retention of events: 15 days.  Whole partitions past it are dropped
-- (the log keeps their range and row count); the others stay.  A partition
-- holding a candidate the rules have not examined yet is kept for now.
INSERT INTO lambda_detect.storage_settings (events_retention) VALUES ('15 days');
ANALYZE lambda_detect.events;
SELECT count(*) AS steps FROM lambda_detect.maintain();
SELECT pg_temp.rules_examined();
SELECT action, target LIKE 'lambda_detect.events_p%' AS partition_named, rows FROM lambda_detect.maintain();
SELECT * FROM pg_temp.partitions();
SELECT event_id FROM lambda_detect.events ORDER BY event_id;
-- the alerts of dropped events stay: they hold what the guide needs
SELECT event_id, status FROM lambda_detect.alerts ORDER BY event_id;

-- 5. max_steps bounds a call: 20 days of late events, 5 partitions a call
DELETE FROM lambda_detect.storage_settings;
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'backlog', pg_temp.at('backlog-' || d, -d) FROM generate_series(30, 49) d;
SELECT events FROM lambda_detect.ingest_now();
SELECT count(*) AS steps FROM lambda_detect.maintain(5);
SELECT count(*) AS waiting FROM lambda_detect.events_default WHERE event_id LIKE 'backlog-%';
SELECT count(*) AS steps FROM lambda_detect.maintain(100);
SELECT count(*) AS waiting FROM lambda_detect.events_default WHERE event_id LIKE 'backlog-%';

-- 6. a change of partition_interval applies to new partitions, fitted into
-- the gaps between the existing ones
INSERT INTO lambda_detect.storage_settings (partition_interval) VALUES ('month');
SELECT lambda_detect.create_event_partition(now() - interval '60 days') AS monthly \gset
SELECT range_start = date_trunc('month', (now() - interval '60 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
         AS starts_on_the_first,
       range_end <= (SELECT min(range_start) FROM lambda_detect.event_partitions
                      WHERE range_start > now() - interval '60 days') AS ends_before_the_next
  FROM lambda_detect.event_partitions WHERE partition = :'monthly'::regclass;
SELECT bool_and(range_end <= lead_start) AS no_overlap
  FROM (SELECT range_end, lead(range_start) OVER (ORDER BY range_start) AS lead_start
          FROM lambda_detect.event_partitions WHERE NOT is_default) p;
DELETE FROM lambda_detect.storage_settings;

-- 7. retention of the other tables, in steps of step_rows
TRUNCATE lambda_detect.maintenance_log;
INSERT INTO lambda_detect.storage_settings (step_rows, rule_runs_retention, ingest_errors_retention,
                                            ingest_runs_retention, ingested_files_retention, alerts_retention)
VALUES (100, '30 days', '30 days', '30 days', '90 days', '30 days');
-- rule runs: old ones go, except the newest watermark of each rule
INSERT INTO lambda_detect.rule_runs (rule, rule_version, trigger, window_start, window_end, started_at,
                                     finished_at, status, complete_until)
SELECT 'lambda-public-invocation', 1, 'schedule', now() - d * interval '1 day', now() - d * interval '1 day',
       now() - d * interval '1 day', now() - d * interval '1 day', 'succeeded',
       CASE WHEN d % 2 = 0 THEN now() - d * interval '1 day' END
  FROM generate_series(31, 280) d;
-- dead letters, ingest runs, ledger rows, alerts: old and new
INSERT INTO lambda_detect.ingest_errors (occurred_at, sqlstate, reason, message, source)
SELECT now() - d * interval '1 day', '22P02', 'invalid_json', 'bad', 'retention' FROM generate_series(1, 60) d;
INSERT INTO lambda_detect.ingest_runs (started_at, finished_at, origin, kind)
SELECT now() - d * interval '1 day', now() - d * interval '1 day', 'worker', 'inbox' FROM generate_series(1, 60) d;
INSERT INTO lambda_detect.ingested_files (path, size, mtime, ctime, ingested_at, status)
SELECT 'old/' || d || '.json.gz', 1, now(), now(), now() - d * interval '1 day', 'ingested' FROM generate_series(1, 120) d;
UPDATE lambda_detect.alerts SET status = 'closed', resolution = 'benign', status_note = 'old'
 WHERE event_id IN ('late', 'expired');
UPDATE lambda_detect.alerts SET status_changed_at = now() - interval '45 days' WHERE status = 'closed';
INSERT INTO lambda_detect.alert_occurrences (rule, event_id, alert_id, event_time, run_id)
SELECT rule, 'folded-' || event_id, alert_id, event_time, 0 FROM lambda_detect.alerts;
SELECT count(*) AS steps FROM lambda_detect.maintain();
SELECT action, target, rows FROM pg_temp.log() ORDER BY id;
SELECT count(*) AS rule_runs, count(*) FILTER (WHERE complete_until IS NOT NULL) AS with_watermark,
       pg_temp.day(max(complete_until)) AS newest_watermark
  FROM lambda_detect.rule_runs WHERE rule = 'lambda-public-invocation' AND started_at < now() - interval '30 days';
-- a second call takes the next step of 100 rule runs
SELECT action, target, rows FROM lambda_detect.maintain() WHERE target <> 'lambda_detect.maintenance_log';
SELECT count(*) AS old_rule_runs_left FROM lambda_detect.rule_runs WHERE started_at < now() - interval '30 days';
-- and the last: one old run is left, the one with the newest watermark
SELECT action, target, rows FROM lambda_detect.maintain() WHERE target <> 'lambda_detect.maintenance_log';
SELECT count(*) AS old_rule_runs_left, pg_temp.day(max(complete_until)) AS its_watermark
  FROM lambda_detect.rule_runs WHERE started_at < now() - interval '30 days';
SELECT event_id, status FROM lambda_detect.alerts ORDER BY event_id;
SELECT count(*) AS occurrences_left FROM lambda_detect.alert_occurrences;

-- 8. settings that would lose data or make no sense are refused
SELECT pg_temp.error_of(format('INSERT INTO lambda_detect.storage_settings (%s) VALUES (%s)', c, v)) AS refused
  FROM (VALUES ('partition_interval', '''hour'''),
               ('partitions_ahead', '0'),
               ('events_retention', '''1 hour'''),
               ('ingested_files_retention', '''30 days'''),
               ('step_rows', '10'),
               ('singleton', 'false')) AS t(c, v);
SELECT pg_temp.error_of('SELECT * FROM lambda_detect.maintain(0)') AS refused;
SELECT pg_temp.error_of($$SELECT lambda_detect.create_event_partition('infinity')$$) AS refused;

-- 9. bounds do not depend on the session's DateStyle and TimeZone (in SQL
-- style, Asia/Kolkata prints IST, which PostgreSQL reads back as Israel's)
SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '5 days' AS day_start \gset
SET DateStyle = 'SQL, MDY';
SET TimeZone = 'Asia/Kolkata';
SELECT lambda_detect.create_event_partition(:'day_start'::timestamptz + interval '12 hours') AS made \gset
SELECT range_start = :'day_start'::timestamptz AS starts_at_midnight_utc,
       range_end = :'day_start'::timestamptz + interval '1 day' AS ends_a_day_later
  FROM lambda_detect.event_partitions WHERE partition = :'made'::regclass;
SELECT count(*) AS steps_without_error FROM lambda_detect.maintain();
RESET DateStyle;
SET TimeZone = 'UTC';

-- 10. a step that cannot get its lock within maintain()'s lock_timeout is
-- skipped and logged, not waited for and not an error: another session
-- reads events in an open transaction
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('reader', format('dbname=%s port=%s host=%s', current_database(), current_setting('port'),
                                      split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('reader', 'BEGIN');
SELECT * FROM dblink('reader', 'SELECT count(*) FROM lambda_detect.events') AS t(n bigint);
INSERT INTO lambda_detect.inbox (source, payload) VALUES ('lock', pg_temp.at('blocked', -20));
SELECT events FROM lambda_detect.ingest_now();
SELECT action, target FROM lambda_detect.maintain();
SELECT dblink_exec('reader', 'COMMIT');
SELECT action FROM lambda_detect.maintain();
SELECT tableoid::regclass::text LIKE 'lambda_detect.events_p%' AS moved FROM lambda_detect.events WHERE event_id = 'blocked';
SELECT dblink_disconnect('reader');
DROP EXTENSION dblink;

-- back to a fresh start for the tests after this one
DELETE FROM lambda_detect.storage_settings;
\i sql/include/drop_partitions.sql
