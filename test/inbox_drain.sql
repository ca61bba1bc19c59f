-- A drain of the inbox reads each row's index entry a bounded number of
-- times.  The rows a drain's earlier batches deleted stay in the inbox's
-- index while any transaction older than their deletion is open (here: the
-- drain's own, as in ingest_now()); a batch that searched from the first id
-- would read them all again, and a drain's cost would grow with the square
-- of the backlog.  The counter is the index's entries returned to scans in
-- this transaction (pg_stat_get_xact_tuples_returned); with batches of 20,
-- 2,000 rows cost about 100,000 of them when every batch starts from the
-- first id, and a few per row when each starts after the last one claimed.
\ir helpers/setup.sql

BEGIN;
SELECT plan(4);

SET LOCAL lambda_detect.batch_size = 20;
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'tap-inbox-drain',
       lambda_detect_test.ct_record('tap-inbox-drain-' || i,
                                    '{"eventName": "ListFunctions20150331"}')
  FROM generate_series(1, 2000) i;

SELECT pg_stat_get_xact_tuples_returned('lambda_detect.inbox_pkey'::regclass) AS read_before \gset
SELECT is((SELECT inbox_rows FROM lambda_detect.ingest_now()), 2000,
          'ingest_now() drains the 2,000 rows in batches of 20');
SELECT cmp_ok(pg_stat_get_xact_tuples_returned('lambda_detect.inbox_pkey'::regclass) - :read_before,
              '<=', 3 * 2000::bigint,
              'each batch starts after the rows earlier batches deleted: at most 3 index entries read per row');
SELECT is((SELECT count(*) FROM lambda_detect.events WHERE event_id LIKE 'tap-inbox-drain-%'),
          2000::bigint, 'every row is stored once');
SELECT is((SELECT count(*) FROM lambda_detect.inbox WHERE source = 'tap-inbox-drain'),
          0::bigint, 'and the inbox is empty');

SELECT * FROM finish();
ROLLBACK;
