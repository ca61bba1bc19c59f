-- Hygiene of the extension's objects: nothing is readable or callable by
-- PUBLIC, every object is documented, every function pins search_path, and
-- hostile objects planted in public are never called.
\set VERBOSITY terse
\i sql/include/fresh_state.sql

CREATE ROLE regress_nobody LOGIN;

-- PUBLIC (and so any role not granted more) has no way in
SELECT has_schema_privilege('regress_nobody', 'lambda_detect', 'USAGE') AS schema_usage;
SELECT c.relname, has_table_privilege('regress_nobody', c.oid, 'SELECT,INSERT,UPDATE,DELETE') AS any_privilege
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'lambda_detect' AND c.relkind IN ('r', 'v', 'p')
 ORDER BY c.relname;
SELECT p.proname, has_function_privilege('regress_nobody', p.oid, 'EXECUTE') AS can_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'lambda_detect'
 ORDER BY p.proname;
SET ROLE regress_nobody;
SELECT count(*) FROM lambda_detect.events;
INSERT INTO lambda_detect.inbox (payload) VALUES ('{}');
SELECT * FROM lambda_detect.ingest_now();
RESET ROLE;

-- every function pins search_path
SELECT p.proname, p.proconfig
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'lambda_detect'
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);

-- every object of the extension has a comment: none listed here (the
-- columns and indexes of partitions are those of events, documented there)
SELECT pg_describe_object(d.classid, d.objid, 0) AS undocumented
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'lambda_detect')
   AND d.deptype = 'e'
   AND obj_description(d.objid, d.classid::regclass::name) IS NULL
   AND d.classid <> 'pg_type'::regclass
 ORDER BY 1;
SELECT c.relname, a.attname AS undocumented_column
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'lambda_detect' AND c.relkind = 'r' AND NOT c.relispartition AND a.attnum > 0
   AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;
SELECT t.tgname AS undocumented_trigger
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'lambda_detect' AND NOT t.tgisinternal AND t.tgparentid = 0
   AND obj_description(t.oid, 'pg_trigger') IS NULL;
SELECT i.relname AS undocumented_index
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_namespace n ON n.oid = i.relnamespace
 WHERE n.nspname = 'lambda_detect' AND obj_description(i.oid, 'pg_class') IS NULL
   AND NOT i.relispartition AND NOT x.indisprimary AND NOT x.indisunique;

-- hostile objects in public would be found first by a careless search_path
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.now() called'; END $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.lower() called'; END $$;
CREATE FUNCTION public.jsonb_object_agg(text, integer) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.jsonb_object_agg() called'; END $$;
CREATE FUNCTION public.hostile_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.= called'; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hostile_eq);
SET search_path = public, pg_catalog;
INSERT INTO lambda_detect.inbox (payload) VALUES ('{"eventID": "h-1", "eventTime": "2026-11-01T10:00:00Z",
  "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2",
  "requestParameters": {"action": "lambda:InvokeFunction", "principal": "*", "functionName": "f"}}'),
  ('{"digestStartTime": "x"}');
SELECT inbox_rows, events, skipped FROM lambda_detect.ingest_now();
SELECT alerts_created, status FROM lambda_detect.run_rule('lambda-public-invocation');
UPDATE lambda_detect.alerts SET status = 'acknowledged' WHERE event_id OPERATOR(pg_catalog.=) 'h-1';
SELECT status, status_changed_by IS NOT NULL AS stamped FROM lambda_detect.alerts WHERE event_id OPERATOR(pg_catalog.=) 'h-1';
RESET search_path;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.hostile_eq(text, text), public.now(), public.lower(text),
              public.jsonb_object_agg(text, integer);
DROP ROLE regress_nobody;
