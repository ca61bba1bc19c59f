-- The rule's cost follows the number of candidates, not the size of
-- events: its query is answered from the partial index
-- events_rule_candidates_idx, which holds only Lambda permission and
-- function URL events.  events is partitioned by event time: with more
-- than 90 daily partitions, the query reads each partition's small
-- candidate index and nothing else.
\set VERBOSITY terse
\i sql/include/fresh_state.sql

-- 95 daily partitions, as 90 days of retention and a few ahead make
SELECT count(lambda_detect.create_event_partition(now() - d * interval '1 day')) AS partitions
  FROM generate_series(-3, 91) d;
SELECT count(*) AS partitions, count(*) FILTER (WHERE is_default) AS default_partitions
  FROM lambda_detect.event_partitions;

-- 20,000 ordinary events over those days and a handful of candidates
INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
SELECT 'bulk-' || g, now() - (g % 90) * interval '1 day', 'sts.amazonaws.com', 'AssumeRole', 'success',
       jsonb_build_object('eventID', 'bulk-' || g, 'requestParameters', jsonb_build_object('roleSessionName', md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || md5((g + 3)::text)))
  FROM generate_series(1, 20000) g;
INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
SELECT 'cand-' || g, now(), 'lambda.amazonaws.com', 'AddPermission20150331v2', 'success', '{}'
  FROM generate_series(1, 5) g;
VACUUM ANALYZE lambda_detect.events;
SELECT count(*) AS in_default FROM lambda_detect.events_default;

-- the index holds the candidates only (entries over all partitions)
SELECT sum(c.reltuples) FILTER (WHERE t.index = 'candidates') AS candidate_index_entries,
       sum(c.reltuples) FILTER (WHERE t.index = 'pkey') AS primary_key_entries
  FROM (SELECT relid, 'candidates' AS index FROM pg_partition_tree('lambda_detect.events_rule_candidates_idx')
        UNION ALL
        SELECT relid, 'pkey' FROM pg_partition_tree('lambda_detect.events_pkey')) t
  JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'i';

-- the rule engine's candidate query (src/rule_engine.c), word for word
PREPARE candidates(timestamptz, timestamptz, text) AS
SELECT e.event_id, e.event_source, e.event_name, e.error_code,
       e.error_message, e.request_parameters,
       EXISTS (SELECT 1 FROM lambda_detect.alerts a
                WHERE a.rule = $3 AND a.event_id = e.event_id)
       OR EXISTS (SELECT 1 FROM lambda_detect.alert_occurrences o
                  WHERE o.rule = $3 AND o.event_id = e.event_id),
       e.recipient_account_id, e.aws_region, e.actor_arn, e.source_ip,
       e.source_address, e.user_agent, e.event_time
  FROM lambda_detect.events e
 WHERE e.event_source = 'lambda.amazonaws.com' AND (e.event_name LIKE 'AddPermission%' OR e.event_name LIKE 'CreateFunctionUrlConfig%' OR e.event_name LIKE 'UpdateFunctionUrlConfig%')
   AND e.ingested_at >= $1 AND e.ingested_at <= $2
 ORDER BY e.ingested_at, e.event_time, e.event_id;

-- pg_temp.plan_nodes(plan): every node of a JSON plan, flattened
CREATE FUNCTION pg_temp.plan_nodes(plan jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$
  WITH RECURSIVE n(node) AS (
    SELECT plan
    UNION ALL
    SELECT c FROM n, jsonb_array_elements(n.node -> 'Plans') c)
  SELECT node FROM n
$$;
CREATE FUNCTION pg_temp.explain(actual boolean) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE format('EXPLAIN (FORMAT JSON, COSTS OFF, ANALYZE %s, BUFFERS %s, TIMING OFF, SUMMARY OFF) '
                 'EXECUTE candidates(now() - interval ''1 hour'', now(), ''lambda-public-invocation'')',
                 actual::text, actual::text) INTO plan;
  RETURN plan -> 0 -> 'Plan';
END $$;

-- as the rule engine plans it, and as a plan kept for any window would be
-- (the window's bounds are parameters, so no partition can be pruned): one
-- scan of the candidate index per partition holding rows, and nothing else
-- reads events (an empty partition costs the planner no more as a seq scan)
SET plan_cache_mode = force_custom_plan;
SELECT n ->> 'Node Type' AS node, n ->> 'Index Name' LIKE '%ingested_at_idx' AS candidate_index,
       bool_and(pg_relation_size(('lambda_detect.' || (n ->> 'Relation Name'))::regclass) = 0) AS on_empty_partitions,
       count(*) AS nodes
  FROM pg_temp.plan_nodes(pg_temp.explain(false)) n
 WHERE n ->> 'Relation Name' LIKE 'events%'
 GROUP BY 1, 2 ORDER BY 1, 2;
SET plan_cache_mode = force_generic_plan;
SELECT n ->> 'Node Type' AS node, n ->> 'Index Name' LIKE '%ingested_at_idx' AS candidate_index,
       bool_and(pg_relation_size(('lambda_detect.' || (n ->> 'Relation Name'))::regclass) = 0) AS on_empty_partitions,
       count(*) AS nodes
  FROM pg_temp.plan_nodes(pg_temp.explain(false)) n
 WHERE n ->> 'Relation Name' LIKE 'events%'
 GROUP BY 1, 2 ORDER BY 1, 2;

-- what it costs: the candidates, plus a page or two of each partition's
-- (nearly empty) candidate index; the 20,000 other events are never read
SET plan_cache_mode = force_custom_plan;
SELECT (p ->> 'Actual Rows')::int AS candidates,
       (p ->> 'Shared Hit Blocks')::int + (p ->> 'Shared Read Blocks')::int
         < 3 * (SELECT count(*) FROM lambda_detect.event_partitions) AS few_pages,
       (SELECT sum(pg_relation_size(relid)) / 8192 FROM pg_partition_tree('lambda_detect.events')) > 500
         AS table_is_larger
  FROM pg_temp.explain(true) p;
RESET plan_cache_mode;

-- and run_rule really goes through that index: its scan count rises
SELECT pg_stat_force_next_flush();
SELECT sum(idx_scan) AS before FROM pg_stat_user_indexes
 WHERE indexrelid IN (SELECT relid FROM pg_partition_tree('lambda_detect.events_rule_candidates_idx')) \gset
SELECT candidates FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT sum(idx_scan) > :before AS used_candidate_index FROM pg_stat_user_indexes
 WHERE indexrelid IN (SELECT relid FROM pg_partition_tree('lambda_detect.events_rule_candidates_idx'));

-- the partitions made here go, so that later tests see an unpartitioned start
DO $$
DECLARE
  p regclass;
BEGIN
  FOR p IN SELECT partition FROM lambda_detect.event_partitions WHERE NOT is_default LOOP
    EXECUTE format('DROP TABLE %s', p);
  END LOOP;
END $$;
