-- Files below lambda_detect.inbox_dir: every file shape, the ledger (each
-- file read once, again only when it changes), and every way a file can be
-- bad, each ending with a reason while the good files and lines are stored.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
SET timezone = 'UTC';

-- Files are written by the server's own OS user with COPY ... TO PROGRAM.
CREATE FUNCTION pg_temp.sh(cmd text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('COPY (SELECT 1 WHERE false) TO PROGRAM %L', cmd);
END $$;
CREATE FUNCTION pg_temp.write(path text, lines text[], compress boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_temp.sh('mkdir -p "$(dirname /tmp/lambda_detect_regress/' || path || ')"');
  EXECUTE format('COPY (SELECT unnest(%L::text[])) TO PROGRAM %L', lines,
                 CASE WHEN compress THEN 'gzip -c > /tmp/lambda_detect_regress/' || path
                      ELSE 'cat > /tmp/lambda_detect_regress/' || path END);
END $$;
CREATE FUNCTION pg_temp.rec(id text) RETURNS text LANGUAGE sql AS $$
  SELECT jsonb_build_object('eventID', id, 'eventTime', '2026-11-01T10:00:00Z',
    'eventSource', 's3.amazonaws.com', 'eventName', 'GetObject', 'awsRegion', 'us-east-1')::text
$$;
CREATE FUNCTION pg_temp.rel(path text) RETURNS text LANGUAGE sql AS $$
  SELECT replace(path, '/tmp/lambda_detect_regress/', '')
$$;

SELECT pg_temp.sh('rm -rf /tmp/lambda_detect_regress && mkdir -p /tmp/lambda_detect_regress');
SET lambda_detect.inbox_dir = '/tmp/lambda_detect_regress';
SET lambda_detect.file_settle_time = 0;

\set day 'AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/'
-- good files: a gzipped log file, plain JSON, JSON lines with a bad and a blank line
SELECT pg_temp.write(:'day' || 'a.json.gz',
  ARRAY['{"Records": [' || pg_temp.rec('f-1') || ',' || pg_temp.rec('f-2') || ']}'], true);
SELECT pg_temp.write(:'day' || 'b.json', ARRAY[pg_temp.rec('f-3')]);
SELECT pg_temp.write('exports/c.jsonl', ARRAY[pg_temp.rec('f-4'), '{oops', '', pg_temp.rec('f-5')]);
-- a digest file is skipped, counted
SELECT pg_temp.write('AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/01/d.json.gz',
  ARRAY['{"digestStartTime": "2026-11-01T10:00:00Z", "digestEndTime": "2026-11-01T11:00:00Z", "logFiles": []}'], true);
-- bad files
SELECT pg_temp.sh('cd /tmp/lambda_detect_regress && printf ''%s'' ''{"Records": []}'' | gzip -c | head -c 12 > truncated.json.gz');
SELECT pg_temp.sh('cd /tmp/lambda_detect_regress && head -c 2000000 /dev/zero | gzip -c > bomb.json.gz');
SELECT pg_temp.sh('cd /tmp/lambda_detect_regress && : > empty.json');
SELECT pg_temp.write('invalid.json', ARRAY['this is not json']);
SELECT pg_temp.write('deep.json', ARRAY[repeat('[', 200) || repeat(']', 200)]);
SELECT pg_temp.sh('cd /tmp/lambda_detect_regress && printf ''{"eventID": "\377"}'' > latin1.json');
SELECT pg_temp.write('locked.json', ARRAY[pg_temp.rec('f-6')]);
SELECT pg_temp.sh('chmod 000 /tmp/lambda_detect_regress/locked.json');
-- not regular files: a symlink (even to a good file), a directory named like a log file
SELECT pg_temp.sh('cd /tmp/lambda_detect_regress && ln -s /etc/hostname link.json');
SELECT pg_temp.write('dir.json.gz/inner.json', ARRAY[pg_temp.rec('f-7')]);
-- ignored: hidden files (s3 sync's partial downloads) and other names
SELECT pg_temp.write('.partial.json', ARRAY[pg_temp.rec('f-8')]);
SELECT pg_temp.write('README.txt', ARRAY['hello']);

SET lambda_detect.max_payload_size = '64kB';
SELECT * FROM lambda_detect.ingest_now();

SELECT pg_temp.rel(path) AS path, status, documents, events, duplicates, skipped, errors, note
  FROM lambda_detect.ingested_files ORDER BY path;
SELECT event_id FROM lambda_detect.events ORDER BY event_id;
SELECT sqlstate, reason, message, pg_temp.rel(source) AS source, location, raw_text
  FROM lambda_detect.ingest_errors ORDER BY id;
SELECT kind, files, records, events, skipped, errors, skipped_reasons
  FROM lambda_detect.ingest_runs WHERE kind = 'files';

-- a second scan reads nothing again
SELECT * FROM lambda_detect.ingest_now();

-- a file that changes is read again; its events are already stored
SELECT pg_temp.write(:'day' || 'b.json', ARRAY[pg_temp.rec('f-3'), pg_temp.rec('f-9')]);
SELECT * FROM lambda_detect.ingest_now();
SELECT status, documents, events, duplicates FROM lambda_detect.ingested_files
 WHERE path LIKE '%/b.json';

-- a file modified within file_settle_time waits for a later scan
SET lambda_detect.file_settle_time = '1h';
SELECT pg_temp.write('late.json', ARRAY[pg_temp.rec('f-10')]);
SELECT files FROM lambda_detect.ingest_now();
SET lambda_detect.file_settle_time = 0;
SELECT files, events FROM lambda_detect.ingest_now();

-- a file that failed is retried when it is fixed (here: made readable)
SELECT pg_temp.sh('chmod 644 /tmp/lambda_detect_regress/locked.json');
SELECT files, events FROM lambda_detect.ingest_now();
SELECT status FROM lambda_detect.ingested_files WHERE path LIKE '%/locked.json';

-- a JSON lines file with one line in another encoding (Latin-1 here) keeps
-- its good lines: the bad line alone is dead-lettered, located by its line
SELECT pg_temp.write('exports/mixed.jsonl', ARRAY[pg_temp.rec('f-11'), 'LATIN1', pg_temp.rec('f-12')]);
SELECT pg_temp.sh('sed -i ''s/^LATIN1$/{"eventID": "J\xfcrgen"}/'' /tmp/lambda_detect_regress/exports/mixed.jsonl');
SELECT files, events, errors FROM lambda_detect.ingest_now();
SELECT status, documents, events, errors FROM lambda_detect.ingested_files WHERE path LIKE '%/mixed.jsonl';
SELECT sqlstate, reason, message, location, raw_text IS NULL AS no_text
  FROM lambda_detect.ingest_errors WHERE source LIKE '%/mixed.jsonl';

-- a directory that does not exist is an empty scan with a warning, not an error
SET lambda_detect.inbox_dir = '/tmp/lambda_detect_regress/missing';
SELECT * FROM lambda_detect.ingest_now();
RESET lambda_detect.inbox_dir;
SELECT pg_temp.sh('rm -rf /tmp/lambda_detect_regress');
