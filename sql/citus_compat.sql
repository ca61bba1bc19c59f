-- The schema stays distributable by account, as docs/scaling.md plans it for
-- Citus: events, rule_candidates, alerts, alert_occurrences and
-- suppressed_matches distributed by account; rules, exceptions and the
-- settings tables reference tables; the worker's tables local to the
-- coordinator.  Citus itself is not installed here: this test reads the
-- catalog for what Citus requires of such tables (every primary key, unique
-- key and exclusion constraint of a distributed table holds its
-- distribution column, which is NOT NULL; a foreign key between distributed
-- tables joins their distribution columns; no foreign key goes from a
-- reference table to a distributed one), so that a change which breaks the
-- plan shows here.  Then it shows an event without recipientAccountId
-- stored under '' and treated as an unknown account, and one over 128
-- bytes dead-lettered.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';

CREATE TEMP TABLE plan (tbl regclass PRIMARY KEY, role text NOT NULL, dist_col name);
INSERT INTO plan VALUES
  ('lambda_detect.events',             'distributed', 'recipient_account_id'),
  ('lambda_detect.rule_candidates',    'distributed', 'recipient_account_id'),
  ('lambda_detect.alerts',             'distributed', 'account_id'),
  ('lambda_detect.alert_occurrences',  'distributed', 'account_id'),
  ('lambda_detect.suppressed_matches', 'distributed', 'account_id'),
  ('lambda_detect.rules',                  'reference', NULL),
  ('lambda_detect.exceptions',             'reference', NULL),
  ('lambda_detect.storage_settings',       'reference', NULL),
  ('lambda_detect.investigation_settings', 'reference', NULL),
  ('lambda_detect.known_networks',         'reference', NULL);

-- every table of the extension has a role in the plan (a new table shows
-- up here as local until the plan says otherwise); partitions follow events
SELECT c.oid::regclass AS tbl, coalesce(p.role, 'local') AS role, p.dist_col
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'lambda_detect'
  LEFT JOIN plan p ON p.tbl = c.oid
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY coalesce(p.role, 'local'), c.oid::regclass::text;

-- the distribution columns: present, NOT NULL, and of one type (colocation)
SELECT p.tbl, p.dist_col, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       pg_get_expr(ad.adbin, ad.adrelid) AS "default"
  FROM plan p
  LEFT JOIN pg_attribute a ON a.attrelid = p.tbl AND a.attname = p.dist_col AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE p.role = 'distributed'
 ORDER BY p.tbl::text;

-- every unique or exclusion index (primary keys and unique constraints
-- included) of a distributed table, its columns, and whether it holds the
-- distribution column
SELECT p.tbl, ic.relname AS index, i.indisprimary AS primary_key,
       (SELECT string_agg(coalesce(a.attname::text, '(expression)'), ', ' ORDER BY k.ord)
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS columns,
       EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = i.indrelid AND a.attname = p.dist_col
                  AND a.attnum = ANY (i.indkey::int2[])) AS has_dist_col
  FROM plan p
  JOIN pg_index i ON i.indrelid = p.tbl AND (i.indisunique OR i.indisexclusion)
  JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE p.role = 'distributed'
 ORDER BY p.tbl::text, ic.relname;

-- the same for every partition of events (made by maintain() or by hand):
-- none lacks the column
SELECT lambda_detect.create_event_partition('2026-11-01') IS NOT NULL AS made_a_partition;
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM pg_index i
            WHERE i.indrelid = t.relid AND (i.indisunique OR i.indisexclusion)
              AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                               WHERE a.attrelid = i.indrelid AND a.attname = 'recipient_account_id'
                                 AND a.attnum = ANY (i.indkey::int2[])))) AS lacking_dist_col,
       bool_and(a.attnotnull) AS dist_col_not_null
  FROM pg_partition_tree('lambda_detect.events') t
  JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = 'recipient_account_id'
 WHERE t.relid <> 'lambda_detect.events'::regclass;

-- every foreign key that touches a table of the plan, and whether Citus
-- accepts it: distributed -> distributed only on the distribution columns,
-- distributed -> reference and reference -> reference always, never from a
-- reference or local table to a distributed one.  None since 1.1: the one
-- of 1.0, exceptions.rule -> rules.rule, kept Citus 13.2.2 from making the
-- two reference tables (it would convert objects of the extension), and
-- triggers check the rule instead (schema/18_exception_rule_check.sql)
SELECT f.conrelid::regclass AS from_table, coalesce(fp.role, 'local') AS from_role,
       f.confrelid::regclass AS to_table, coalesce(tp.role, 'local') AS to_role, f.conname,
       CASE
         WHEN fp.role = 'distributed' AND tp.role = 'distributed' THEN
           EXISTS (SELECT 1 FROM unnest(f.conkey, f.confkey) k(fk, pk)
                     JOIN pg_attribute fa ON fa.attrelid = f.conrelid AND fa.attnum = k.fk
                     JOIN pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = k.pk
                    WHERE fa.attname = fp.dist_col AND pa.attname = tp.dist_col)
         WHEN tp.role = 'distributed' THEN false
         WHEN fp.role IS NULL AND tp.role = 'reference' THEN true
         ELSE fp.role IS NOT DISTINCT FROM tp.role OR tp.role = 'reference'
       END AS citus_accepts
  FROM pg_constraint f
  LEFT JOIN plan fp ON fp.tbl = f.conrelid
  LEFT JOIN plan tp ON tp.tbl = f.confrelid
 WHERE f.contype = 'f' AND (fp.tbl IS NOT NULL OR tp.tbl IS NOT NULL)
   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = f.conrelid AND c.relispartition)
 ORDER BY f.conrelid::regclass::text, f.conname;
-- the triggers that do what the foreign key did, on rules and exceptions
SELECT t.tgrelid::regclass AS on_table, t.tgname, t.tgfoid::regproc AS function
  FROM pg_trigger t
 WHERE t.tgrelid IN ('lambda_detect.rules'::regclass, 'lambda_detect.exceptions'::regclass)
   AND t.tgfoid IN ('lambda_detect.check_exception_rule'::regproc, 'lambda_detect.cascade_rule_to_exceptions'::regproc)
 ORDER BY 1, 2;

-- An event without recipientAccountId is stored (under ''), deduplicated
-- like any other, and its account is unknown to the rules: the seed rule
-- alerts with account_id '' and no function ARN for a bare name, the
-- cross-account rule (which needs the function's account) does not match,
-- and the documents for integrations say null.
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('no-account', pg_temp.attack('no-account', '{"recipientAccountId": null}',
                                '{"principal": "444455556666"}')),
  ('no-account', pg_temp.attack('no-account-2', '{"recipientAccountId": null}')),
  ('no-account', pg_temp.attack('no-account-2', '{"recipientAccountId": null}')),
  ('account',    pg_temp.attack('with-account', '{}', '{"principal": "444455556666"}')),
  -- an account id has 12 digits; the key cannot hold any length
  ('long',       pg_temp.attack('long-account', jsonb_build_object('recipientAccountId', repeat('1', 129))));
SELECT inbox_rows, events, duplicates, errors FROM lambda_detect.ingest_now();
SELECT sqlstate, reason, message FROM lambda_detect.ingest_errors;
SELECT event_id, recipient_account_id, recipient_account_id IS NULL AS is_null
  FROM lambda_detect.events ORDER BY event_id;
SELECT event_id, recipient_account_id FROM lambda_detect.rule_candidates ORDER BY event_id;
SELECT rule, candidates, matched, alerts_created
  FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT rule, candidates, matched, alerts_created
  FROM lambda_detect.run_rule('lambda-cross-account-invocation');
SELECT rule, event_id, account_id, account_id = '' AS unknown_account, function_name, function_arn
  FROM lambda_detect.alerts ORDER BY alert_id;
SELECT a.event_id, lambda_detect.alert_notify_payload(a, 'new')::jsonb -> 'account_id' AS payload_account,
       e."cloud.account.id", e."cloud.account.id" IS NULL AS ecs_account_null,
       lambda_detect.investigate(a.alert_id) -> 'alert' -> 'account_id' AS investigate_account,
       s.ip_new_for_account
  FROM lambda_detect.alerts a
  JOIN lambda_detect.alerts_ecs e ON e."lambda_detect.alert_id" = a.alert_id
  CROSS JOIN LATERAL lambda_detect.alert_source(a.alert_id) s
 ORDER BY a.alert_id;
SELECT remove_permission_command FROM lambda_detect.alert_remediation(1);
-- a second run finds the alerted events alerted
SELECT rule, matched, alerts_created, duplicates
  FROM lambda_detect.run_rule('lambda-public-invocation');

\i sql/include/drop_partitions.sql
