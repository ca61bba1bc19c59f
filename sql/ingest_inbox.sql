-- ingest_now() drains the inbox exactly as the worker does: events stored
-- once per eventID, rejects dead-lettered with the original, skips counted,
-- one ingest_runs row per batch, and a payload that breaks the batch
-- statement moved aside whole without holding up the rest.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
SET timezone = 'UTC';

CREATE FUNCTION pg_temp.rec(id text, name text DEFAULT 'GetFunction20150331v2') RETURNS jsonb
LANGUAGE sql AS $$
  SELECT jsonb_build_object('eventID', id, 'eventTime', '2026-11-01T10:00:00Z',
    'eventSource', 'lambda.amazonaws.com', 'eventName', name, 'awsRegion', 'eu-west-1',
    'sourceIPAddress', '192.0.2.10', 'recipientAccountId', '111122223333',
    'userIdentity', jsonb_build_object('type', 'IAMUser', 'arn', 'arn:aws:iam::111122223333:user/bob'),
    'requestParameters', jsonb_build_object('functionName', 'f'))
$$;

-- an empty inbox: nothing to do, no ingest_runs row
SELECT * FROM lambda_detect.ingest_now();
SELECT count(*) AS runs FROM lambda_detect.ingest_runs;

-- every accepted shape, a duplicate within the batch, a skip and rejects
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('single',      pg_temp.rec('i-1')),
  ('log file',    jsonb_build_object('Records', jsonb_build_array(pg_temp.rec('i-2'), pg_temp.rec('i-3')))),
  ('array',       jsonb_build_array(pg_temp.rec('i-4'))),
  ('eventbridge', jsonb_build_object('detail-type', 'AWS API Call via CloudTrail', 'detail', pg_temp.rec('i-5'))),
  ('again',       pg_temp.rec('i-1')),
  ('digest',      '{"digestStartTime": "2026-11-01T10:00:00Z", "logFiles": []}'),
  ('partly bad',  jsonb_build_object('Records', jsonb_build_array(pg_temp.rec('i-6'), pg_temp.rec('i-7') - 'eventTime'))),
  ('scalar',      '"hello"');

SELECT * FROM lambda_detect.ingest_now();
SELECT count(*) AS left_in_inbox FROM lambda_detect.inbox;
SELECT event_id, event_name, outcome, source_ip, actor_arn FROM lambda_detect.events ORDER BY event_id;
SELECT origin, kind, inbox_rows, files, records, events, duplicates, candidates, skipped, errors, skipped_reasons
  FROM lambda_detect.ingest_runs ORDER BY id;
SELECT sqlstate, reason, message, source, location, inbox_id IS NOT NULL AS has_inbox_id,
       payload ->> 'eventID' AS payload_event_id, payload
  FROM lambda_detect.ingest_errors ORDER BY id;

-- the same payload again later: counted as duplicates, stored once
INSERT INTO lambda_detect.inbox (payload) VALUES (pg_temp.rec('i-2')), (pg_temp.rec('i-2'));
SELECT * FROM lambda_detect.ingest_now();
SELECT count(*) FROM lambda_detect.events WHERE event_id = 'i-2';

-- a new candidate event is counted as such (it makes the worker run the rules)
INSERT INTO lambda_detect.inbox (payload) VALUES (pg_temp.rec('i-8', 'AddPermission20150331v2'));
SELECT * FROM lambda_detect.ingest_now();
SELECT candidates FROM lambda_detect.ingest_runs ORDER BY id DESC LIMIT 1;

-- batches: with batch_size 2, five rows take three ingest_runs rows
SET lambda_detect.batch_size = 2;
INSERT INTO lambda_detect.inbox (payload) SELECT pg_temp.rec('b-' || g) FROM generate_series(1, 5) g;
SELECT * FROM lambda_detect.ingest_now();
SELECT inbox_rows, events FROM lambda_detect.ingest_runs ORDER BY id DESC LIMIT 3;
RESET lambda_detect.batch_size;

-- a payload that passes normalize() but cannot be stored (here a user's
-- trigger refuses it) fails the batch statement; the batch is redone row by
-- row, the poisonous row goes to ingest_errors whole, the others are stored
CREATE FUNCTION pg_temp.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.event_id = 'poison' THEN
    RAISE EXCEPTION 'refusing %', NEW.event_id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON lambda_detect.events
  FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_poison();
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('before', pg_temp.rec('p-1')), ('poison', pg_temp.rec('poison')), ('after', pg_temp.rec('p-2'));
SELECT * FROM lambda_detect.ingest_now();
SELECT event_id FROM lambda_detect.events WHERE event_id IN ('p-1', 'p-2', 'poison') ORDER BY 1;
SELECT sqlstate, reason, message, source, payload ->> 'eventID' AS event_id
  FROM lambda_detect.ingest_errors WHERE reason = 'store_failed';
SELECT count(*) AS left_in_inbox FROM lambda_detect.inbox;
DROP TRIGGER refuse_poison ON lambda_detect.events;

-- ingested_at is when it was stored, event_time when AWS saw the call
SELECT event_time, ingested_at > event_time AS stored_later
  FROM lambda_detect.events WHERE event_id = 'i-1';

-- a record whose accessKeyId is too long to index is rejected by normalize(),
-- so the good records of its log file are stored (it used to fail the
-- batch, and the whole payload was set aside as store_failed)
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('long key', jsonb_build_object('Records', jsonb_build_array(pg_temp.rec('k-1'),
     pg_temp.rec('k-2') || jsonb_build_object('userIdentity',
       jsonb_build_object('accessKeyId', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 100) g))),
     pg_temp.rec('k-3'))));
SELECT * FROM lambda_detect.ingest_now();
SELECT event_id FROM lambda_detect.events WHERE event_id LIKE 'k-%' ORDER BY 1;
SELECT sqlstate, reason, message, location FROM lambda_detect.ingest_errors WHERE source = 'long key';
