-- The background worker ingests CloudTrail log files below
-- lambda_detect.inbox_dir: an "aws s3 sync"-like tree of .json.gz files, each
-- read once (a ledger, never moving the files), files added later picked up
-- by a later scan or at once after request_scan(), digest files skipped,
-- corrupt gzip dead-lettered.
--
-- Files are written by the server itself (COPY ... TO PROGRAM runs as the
-- server's OS user), into a directory named after the server's port so that
-- clusters running side by side on one machine do not share it.  Each file
-- is written under a hidden name and renamed into place, as s3 sync does, so
-- that the worker never sees it half-written.
\ir helpers/setup.sql

SELECT plan(24);

-- write_file(path, content, head_bytes): writes content gzip-compressed to
-- path (cut to its first head_bytes bytes when given), atomically.
CREATE OR REPLACE FUNCTION lambda_detect_test.write_file(
    path       text,
    content    text,
    head_bytes integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    dir text := regexp_replace(path, '/[^/]*$', '');
    tmp text := dir || '/.tap-writing-' || md5(path);
    cmd text;
BEGIN
    cmd := format('mkdir -p %s && gzip -c %s> %s && mv %s %s',
                  lambda_detect_test.shell_quote(dir),
                  CASE WHEN head_bytes IS NULL THEN ''
                       ELSE format('| head -c %s ', head_bytes) END,
                  lambda_detect_test.shell_quote(tmp),
                  lambda_detect_test.shell_quote(tmp),
                  lambda_detect_test.shell_quote(path));
    -- CSV with quote and delimiter characters that JSON never holds: the
    -- text is written as is (the text format would double backslashes)
    EXECUTE format('COPY (SELECT %L::text) TO PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
                   content, cmd, E'\x01', E'\x02');
END;
$$;

CREATE OR REPLACE FUNCTION lambda_detect_test.shell_quote(s text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT '''' || replace(s, '''', '''"''"''') || '''' $$;

-- the directory and the files' paths
SELECT '/tmp/lambda_detect_tap_files.' || current_setting('port') AS dir \gset
SELECT :'dir' || '/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/'
       || '111122223333_CloudTrail_us-east-1_20261128T1000Z_TapFilesOne.json.gz' AS file1,
       :'dir' || '/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/'
       || '111122223333_CloudTrail_us-east-1_20261129T0805Z_TapFilesTwo.json.gz' AS file2,
       :'dir' || '/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/'
       || '111122223333_CloudTrail_us-east-1_20261128T1005Z_TapFilesCut.json.gz' AS file_cut,
       :'dir' || '/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/28/'
       || '111122223333_CloudTrail-Digest_us-east-1_tap-trail_us-east-1_20261128T110000Z.json.gz' AS file_digest
\gset

-- leftovers of an earlier, interrupted run of this file
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-files-%';
DELETE FROM lambda_detect.ingested_files WHERE path LIKE :'dir' || '/%';
DELETE FROM lambda_detect.ingest_errors WHERE source LIKE :'dir' || '/%';
SELECT 'rm -rf ' || lambda_detect_test.shell_quote(:'dir') AS rm_dir \gset
-- no rows: rm does not read its input, and a row written after it exited
-- would fail the COPY with a broken pipe
COPY (SELECT 1 WHERE false) TO PROGRAM :'rm_dir';

-- the first files
SELECT lambda_detect_test.write_file(:'file1',
    jsonb_build_object('Records', jsonb_build_array(
        lambda_detect_test.ct_record('tap-worker-files-1', '{"eventName": "GetFunction20150331v2"}'),
        lambda_detect_test.ct_record('tap-worker-files-2', jsonb_build_object(
            'eventName', 'DeleteFunction20150331',
            'readOnly', false,
            'errorCode', 'ResourceNotFoundException',
            'sourceIPAddress', '192.0.2.44'))))::text);
SELECT lambda_detect_test.write_file(:'file_digest',
    jsonb_build_object(
        'awsAccountId', '111122223333',
        'digestStartTime', '2026-11-28T10:00:00Z',
        'digestEndTime', '2026-11-28T11:00:00Z',
        'digestS3Bucket', 'tap-bucket',
        'digestS3Object', 'AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/28/111122223333_CloudTrail-Digest_us-east-1_tap-trail_us-east-1_20261128T110000Z.json.gz',
        'digestPublicKeyFingerprint', '47aaa19f7eec22e9bd0b5e58cfade8cb',
        'digestSignatureAlgorithm', 'SHA256withRSA',
        'newestEventTime', '2026-11-28T10:05:00Z',
        'oldestEventTime', '2026-11-28T10:00:00Z',
        'previousDigestS3Bucket', 'tap-bucket',
        'previousDigestS3Object', 'AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/28/111122223333_CloudTrail-Digest_us-east-1_tap-trail_us-east-1_20261128T100000Z.json.gz',
        'previousDigestHashValue', '531914fcfa0dbacf0c9dd1475a1fdcb5dea6e85921409f3c3ec0ba39063c860',
        'previousDigestHashAlgorithm', 'SHA-256',
        'previousDigestSignature', '10e0872f32fa1d299d0cc98e94d4c88a6a2eada9d9fc3ae6d53dfe8d54c7caf8',
        'logFiles', jsonb_build_array(jsonb_build_object(
            's3Bucket', 'tap-bucket',
            's3Object', 'AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/111122223333_CloudTrail_us-east-1_20261128T1000Z_TapFilesOne.json.gz',
            'hashValue', '420784a5bbc12e9ac442451e8ec1356744fdeabf4fee0d2222508db6d448139c',
            'hashAlgorithm', 'SHA-256',
            'newestEventTime', '2026-11-28T10:00:00Z',
            'oldestEventTime', '2026-11-28T10:00:00Z')))::text);
SELECT lambda_detect_test.write_file(:'file_cut',
    jsonb_build_object('Records', jsonb_build_array(
        lambda_detect_test.ct_record('tap-worker-files-cut-1'),
        lambda_detect_test.ct_record('tap-worker-files-cut-2')))::text,
    40);

-- point the worker at the directory
SELECT coalesce(max(id), 0) AS runs_before FROM lambda_detect.ingest_runs \gset
ALTER SYSTEM SET lambda_detect.inbox_dir = :'dir';
ALTER SYSTEM SET lambda_detect.file_settle_time = 0;
SELECT pg_reload_conf() AS reloaded \gset

-- 1. the first scan
SELECT ok(lambda_detect_test.wait_for(format(
            $$EXISTS (SELECT 1 FROM lambda_detect.ingested_files WHERE path = %L AND status = 'ingested')
              AND (SELECT count(*) FROM lambda_detect.events WHERE event_id IN ('tap-worker-files-1', 'tap-worker-files-2')) = 2$$,
            :'file1')),
          'the worker ingests a .json.gz log file of the AWS tree');
SELECT results_eq(
    $$SELECT event_id, event_name, outcome, source_ip
        FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-files-%' ORDER BY event_id$$,
    $$VALUES ('tap-worker-files-1', 'GetFunction20150331v2', 'success', '198.51.100.7'::inet),
             ('tap-worker-files-2', 'DeleteFunction20150331', 'failure', '192.0.2.44'::inet)$$,
    'the file''s records are stored as events');
SELECT results_eq(
    format($$SELECT status, documents, events, duplicates, errors, size
               FROM lambda_detect.ingested_files WHERE path = %L$$, :'file1'),
    format($$VALUES ('ingested', 1, 2, 0, 0, %s::bigint)$$, (pg_stat_file(:'file1')).size),
    'the ledger holds the file with its size and what it gave');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.ingest_runs
                   WHERE id > :runs_before AND origin = 'worker' AND kind = 'files'
                     AND files > 0 AND events >= 2),
          'ingest_runs records the worker''s file batch');

SELECT ok(lambda_detect_test.wait_for(format(
            $$EXISTS (SELECT 1 FROM lambda_detect.ingested_files WHERE path = %L)$$, :'file_digest')),
          'the digest file is seen');
SELECT results_eq(
    format($$SELECT status, events, errors FROM lambda_detect.ingested_files WHERE path = %L$$, :'file_digest'),
    $$VALUES ('skipped', 0, 0)$$,
    'a CloudTrail digest file is skipped, not an error');
SELECT ok(EXISTS (SELECT 1 FROM lambda_detect.ingest_runs
                   WHERE id > :runs_before AND kind = 'files' AND skipped_reasons ? 'digest_file'),
          'the skip is counted with reason digest_file');
SELECT is((SELECT count(*) FROM lambda_detect.ingest_errors WHERE source = :'file_digest'), 0::bigint,
          'the digest file writes no dead letter');

SELECT ok(lambda_detect_test.wait_for(format(
            $$EXISTS (SELECT 1 FROM lambda_detect.ingested_files WHERE path = %L)$$, :'file_cut')),
          'the truncated gzip file is seen');
SELECT is((SELECT status FROM lambda_detect.ingested_files WHERE path = :'file_cut'), 'error',
          'a truncated gzip file has status error in the ledger');
SELECT results_eq(
    format($$SELECT reason, sqlstate FROM lambda_detect.ingest_errors WHERE source = %L$$, :'file_cut'),
    $$VALUES ('bad_gzip', '22P02')$$,
    'and one dead letter with reason bad_gzip, whose source is the file''s path');
SELECT is((SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-files-cut-%'), 0::bigint,
          'nothing is stored from the truncated file');

-- 2. a file added later is picked up by a later scan; the first is not read again
SELECT ingested_at AS file1_ingested_at FROM lambda_detect.ingested_files WHERE path = :'file1' \gset
SELECT coalesce(max(id), 0) AS runs_before_second FROM lambda_detect.ingest_runs \gset
SELECT lambda_detect_test.write_file(:'file2',
    jsonb_build_object('Records', jsonb_build_array(
        lambda_detect_test.ct_record('tap-worker-files-3', jsonb_build_object(
            'eventName', 'ListVersionsByFunction20150331',
            'eventTime', '2026-11-29T08:01:02Z'))))::text);
SELECT ok(lambda_detect_test.wait_for(format(
            $$EXISTS (SELECT 1 FROM lambda_detect.ingested_files WHERE path = %L AND status = 'ingested')
              AND EXISTS (SELECT 1 FROM lambda_detect.events WHERE event_id = 'tap-worker-files-3')$$,
            :'file2')),
          'a file added later, in a new day directory, is ingested by a later scan');
SELECT is((SELECT event_time FROM lambda_detect.events WHERE event_id = 'tap-worker-files-3'),
          '2026-11-29 08:01:02+00'::timestamptz,
          'its event is stored');
SELECT ingested_at AS file2_ingested_at FROM lambda_detect.ingested_files WHERE path = :'file2' \gset
-- let two more scans (scan_interval is 500ms) go by
SELECT ok(lambda_detect_test.wait_for(format(
            $$(SELECT last_scan_at > %L::timestamptz + interval '1.2 seconds' FROM lambda_detect.worker_status())$$,
            :'file2_ingested_at')),
          'the worker keeps scanning');
SELECT is((SELECT ingested_at FROM lambda_detect.ingested_files WHERE path = :'file1'),
          :'file1_ingested_at'::timestamptz,
          'the first file is not read again (its ledger row is unchanged)');
SELECT results_eq(
    format($$SELECT coalesce(sum(files), 0)::int, coalesce(sum(events), 0)::int, coalesce(sum(duplicates), 0)::int
               FROM lambda_detect.ingest_runs WHERE id > %s AND kind = 'files'$$, :runs_before_second),
    $$VALUES (1, 1, 0)$$,
    'later file batches read only the new file: no re-count, no duplicates');
SELECT is((SELECT count(*) FROM lambda_detect.ingest_errors WHERE source = :'file_cut'), 1::bigint,
          'the failed file is not retried while it is unchanged');
SELECT is((SELECT count(*) FROM lambda_detect.ingested_files WHERE path LIKE :'dir' || '/%'), 4::bigint,
          'the ledger has exactly the four files');

-- 3. request_scan(): with scans an hour apart, a file copied in is read as
-- soon as a client asks for a scan, not at the next scan
ALTER SYSTEM SET lambda_detect.scan_interval = '1h';
SELECT pg_reload_conf() AS reloaded \gset
-- scans were 500 ms apart: none for 1.5 s means the worker took the reload
-- and its last scan put the next one an hour away
SELECT ok(lambda_detect_test.wait_for(
            $$(SELECT last_scan_at < clock_timestamp() - interval '1.5 seconds' FROM lambda_detect.worker_status())$$),
          'the worker has stopped scanning every 500 ms: scan_interval is an hour');
SELECT :'dir' || '/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/'
       || '111122223333_CloudTrail_us-east-1_20261129T0810Z_TapFilesAsked.json.gz' AS file_asked \gset
SELECT lambda_detect_test.write_file(:'file_asked',
    jsonb_build_object('Records', jsonb_build_array(
        lambda_detect_test.ct_record('tap-worker-files-asked', jsonb_build_object(
            'eventTime', '2026-11-29T08:09:00Z'))))::text);
SELECT is(lambda_detect.request_scan(), true,
          'request_scan() says the worker is running here to serve it');
SELECT ok(lambda_detect_test.wait_for(format(
            $$EXISTS (SELECT 1 FROM lambda_detect.ingested_files WHERE path = %L AND status = 'ingested')
              AND EXISTS (SELECT 1 FROM lambda_detect.events WHERE event_id = 'tap-worker-files-asked')$$,
            :'file_asked')),
          'the file is read right after request_scan(), an hour before the next scan was due');
SELECT is((SELECT count(*) FROM lambda_detect.ingested_files WHERE path LIKE :'dir' || '/%'), 5::bigint,
          'and only that file is new in the ledger');
ALTER SYSTEM RESET lambda_detect.scan_interval;

-- 4. clean up: stop scanning (wait until the worker has taken the reload and
-- finished a loop after it), then remove the files and what they gave
ALTER SYSTEM RESET lambda_detect.inbox_dir;
ALTER SYSTEM RESET lambda_detect.file_settle_time;
SELECT clock_timestamp() AS reset_at, pg_reload_conf() AS reloaded \gset
SELECT ok(lambda_detect_test.wait_for(format(
            $$(SELECT state = 'idle' AND last_activity_at > %L::timestamptz + interval '0.3 seconds'
                 FROM lambda_detect.worker_status())$$,
            :'reset_at')),
          'the worker is idle after the settings were reset');
COPY (SELECT 1 WHERE false) TO PROGRAM :'rm_dir';
DELETE FROM lambda_detect.events WHERE event_id LIKE 'tap-worker-files-%';
DELETE FROM lambda_detect.ingested_files WHERE path LIKE :'dir' || '/%';
DELETE FROM lambda_detect.ingest_errors WHERE source LIKE :'dir' || '/%';
DROP FUNCTION lambda_detect_test.write_file(text, text, integer);
DROP FUNCTION lambda_detect_test.shell_quote(text);

SELECT * FROM finish();
