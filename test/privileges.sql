-- PUBLIC can read no event or alert data and call no function, in the
-- database where the worker runs; hygiene of every function.
\ir helpers/setup.sql

SELECT plan(20);

SELECT schema_privs_are('lambda_detect', 'public', ARRAY[]::text[],
                        'PUBLIC has no privilege on schema lambda_detect');
SELECT table_privs_are('lambda_detect', t, 'public', ARRAY[]::text[],
                       format('PUBLIC has no privilege on lambda_detect.%s', t))
  FROM unnest(ARRAY['inbox', 'events', 'ingest_errors', 'ingested_files', 'ingest_runs',
                    'rules', 'rule_runs', 'alerts', 'worker_health', 'known_networks',
                    'investigation_settings', 'open_alerts', 'alerts_ecs', 'exceptions',
                    'suppressed_matches']) AS t;
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'lambda_detect'
              AND has_function_privilege('public', p.oid, 'EXECUTE')),
          0::bigint, 'PUBLIC can execute no function of lambda_detect');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'lambda_detect'
              AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
          0::bigint, 'every function pins search_path');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'lambda_detect' AND p.prosecdef),
          ARRAY['cascade_rule_to_exceptions', 'check_exception_rule', 'create_event_partition', 'ingest_now', 'log_rule_candidate', 'maintain', 'notify_alert', 'notify_alert_changed', 'run_rule'],
          'only the functions a duty needs EXECUTE on alone are SECURITY DEFINER');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'lambda_detect' AND c.relkind = 'r'
                         AND obj_description(c.oid, 'pg_class') IS NULL),
          'every table has a comment');

SELECT * FROM finish();
