-- schema_fingerprint.sql: everything the lambda_detect extension owns in the
-- current database, as canonical sorted text, so that two databases can be
-- compared with diff.  t/008_upgrade.pl compares a fresh install of the
-- current version with 1.0 updated by ALTER EXTENSION lambda_detect UPDATE;
-- by hand:
--
--   psql -X -d fresh   -f t/sql/schema_fingerprint.sql > fresh.txt
--   psql -X -d updated -f t/sql/schema_fingerprint.sql > updated.txt
--   diff -u fresh.txt updated.txt
--
-- One line per fact, "<object>: <what> <value>" (values of several lines,
-- such as function bodies, continue on indented lines).  It covers:
--
--   the extension (version, owner, schema, relocatable) and every member
--     object (pg_depend deptype 'e'); pg_extension_config_dump registrations
--     (extconfig/extcondition, by table name)
--   the schema: owner, privileges, comment
--   relations (tables, views, sequences, indexes, composite types): owner,
--     privileges, reloptions (also of the TOAST table), persistence, access
--     method, tablespace, replica identity, row security, partitioning,
--     inheritance
--   columns: position among live columns, type and typmod, NOT NULL, default,
--     identity, generated, collation, storage, compression, statistics
--     target, attoptions, column privileges
--   constraints (pg_get_constraintdef, deferrable, deferred, validated, NO
--     INHERIT, local/inherited), indexes (pg_get_indexdef, clustered, replica
--     identity, valid), triggers (pg_get_triggerdef, enabled state), rewrite
--     rules, row security policies, extended statistics
--   functions and procedures (pg_get_functiondef: language, body,
--     volatility, strictness, SECURITY DEFINER, leakproof, parallel, cost,
--     rows, SET search_path...; aggregates by their parts), owner, privileges
--   views (pg_get_viewdef), sequences (type, start, increment, bounds,
--     cache, cycle, owning column), types (enums, domains, ranges, base
--     types), operators, casts, operator classes and families, event triggers
--   the COMMENT of every one of these objects and of their columns,
--     constraints, triggers and indexes; security labels; the initial
--     privileges pg_dump starts from (pg_init_privs)
--   rows: the rows of the extension's tables that CREATE EXTENSION itself
--     provides, i.e. those pg_dump leaves out: every row of a table not
--     registered with pg_extension_config_dump, the rows outside the
--     condition of one registered with a condition (the shipped rules), none
--     of one registered without or with the condition WHERE false (data
--     derived from other tables, which a restore rebuilds: rule_candidates).  With -v all_rows=1, every row of every
--     table (to compare databases that hold no users' data).  Columns whose
--     default is computed at insert time (now(), current_user) are left out
--     of rows: they say when and by whom the extension was installed.
--
-- Privileges are compared as effective (a NULL ACL as the default it
-- stands for), aclitems sorted; pg_init_privs shows the raw difference.
-- Never printed: OIDs, TOAST table names, internal trigger names, sequence
-- positions, statistics, sizes.  Read-only: it creates nothing.

\set QUIET on
\set ON_ERROR_STOP on
\pset format unaligned
\pset tuples_only on
\pset footer off
\pset null ''
\if :{?all_rows}
\set fingerprint_rows all
\else
\set fingerprint_rows shipped
\endif

WITH
ext AS (
    SELECT e.*
    FROM pg_catalog.pg_extension e
    WHERE e.extname = 'lambda_detect'
),
member AS (
    SELECT d.classid, d.objid
    FROM pg_catalog.pg_depend d
    JOIN ext ON d.refobjid = ext.oid
    WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
      AND d.deptype = 'e'
),
member_type AS (
    SELECT t.*
    FROM pg_catalog.pg_type t
    WHERE t.oid IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_type'::pg_catalog.regclass)
),
-- member relations, and the relations behind member composite types
rel AS (
    SELECT c.*
    FROM pg_catalog.pg_class c
    WHERE c.oid IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass)
       OR c.oid IN (SELECT typrelid FROM member_type WHERE typrelid <> 0)
),
idx AS (
    SELECT i.*, c.relname, c.relowner, c.relacl, c.reloptions, c.reltablespace
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid IN (SELECT oid FROM rel)
),
con AS (
    SELECT co.*
    FROM pg_catalog.pg_constraint co
    WHERE co.conrelid IN (SELECT oid FROM rel)
       OR co.contypid IN (SELECT oid FROM member_type)
),
trg AS (
    SELECT tg.*
    FROM pg_catalog.pg_trigger tg
    WHERE tg.tgrelid IN (SELECT oid FROM rel) AND NOT tg.tgisinternal
),
rwr AS (
    SELECT r.*
    FROM pg_catalog.pg_rewrite r
    WHERE r.ev_class IN (SELECT oid FROM rel) AND r.rulename <> '_RETURN'
),
pol AS (
    SELECT p.*
    FROM pg_catalog.pg_policy p
    WHERE p.polrelid IN (SELECT oid FROM rel)
),
stx AS (
    SELECT s.*
    FROM pg_catalog.pg_statistic_ext s
    WHERE s.stxrelid IN (SELECT oid FROM rel)
),
-- every object whose comment, security label and initial privileges count
obj (classid, objid) AS (
    SELECT classid, objid FROM member
    UNION SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, oid FROM ext
    UNION SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, extnamespace FROM ext
    UNION SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, oid FROM rel
    UNION SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, indexrelid FROM idx
    UNION SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, oid FROM con
    UNION SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, oid FROM trg
    UNION SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, oid FROM rwr
    UNION SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, oid FROM pol
    UNION SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, oid FROM stx
),
line (line) AS (
    -- the extension
    SELECT 'extension ' || extname || ': version ' || extversion FROM ext
    UNION ALL
    SELECT 'extension ' || extname || ': owner ' || pg_catalog.pg_get_userbyid(extowner) FROM ext
    UNION ALL
    SELECT 'extension ' || extname || ': schema ' || pg_catalog.quote_ident(n.nspname)
    FROM ext JOIN pg_catalog.pg_namespace n ON n.oid = ext.extnamespace
    UNION ALL
    SELECT 'extension ' || extname || ': relocatable ' || extrelocatable FROM ext
    UNION ALL
    SELECT 'extension lambda_detect: member ' || pg_catalog.pg_describe_object(classid, objid, 0)
    FROM member
    UNION ALL
    SELECT 'extension ' || extname || ': config dump ' || cfg.tab::pg_catalog.regclass::text
           || ' condition ' || pg_catalog.quote_literal(cfg.cond)
    FROM ext, LATERAL ROWS FROM (pg_catalog.unnest(ext.extconfig), pg_catalog.unnest(ext.extcondition)) AS cfg (tab, cond)

    -- the schema
    UNION ALL
    SELECT 'schema ' || pg_catalog.quote_ident(n.nspname) || ': owner ' || pg_catalog.pg_get_userbyid(n.nspowner)
    FROM ext JOIN pg_catalog.pg_namespace n ON n.oid = ext.extnamespace
    UNION ALL
    SELECT 'schema ' || pg_catalog.quote_ident(n.nspname) || ': privileges '
           || (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
               FROM pg_catalog.unnest(coalesce(n.nspacl, pg_catalog.acldefault('n'::"char", n.nspowner))) a)::text
    FROM ext JOIN pg_catalog.pg_namespace n ON n.oid = ext.extnamespace

    -- comments, security labels, initial privileges of everything above and below
    UNION ALL
    SELECT pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': comment ' || d.description
    FROM pg_catalog.pg_description d JOIN obj ON (d.classoid, d.objoid) = (obj.classid, obj.objid)
    UNION ALL
    SELECT pg_catalog.pg_describe_object(s.classoid, s.objoid, s.objsubid)
           || ': security label ' || s.provider || ' ' || s.label
    FROM pg_catalog.pg_seclabel s JOIN obj ON (s.classoid, s.objoid) = (obj.classid, obj.objid)
    UNION ALL
    SELECT pg_catalog.pg_describe_object(p.classoid, p.objoid, p.objsubid)
           || ': initial privileges (' || p.privtype::text || ') '
           || (SELECT pg_catalog.array_agg(a::text ORDER BY a::text) FROM pg_catalog.unnest(p.initprivs) a)::text
    FROM pg_catalog.pg_init_privs p JOIN obj ON (p.classoid, p.objoid) = (obj.classid, obj.objid)

    -- relations; facts at their default values are left out (a missing
    -- line is still a difference when the other side has it)
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0) || ': ' || f.fact
    FROM rel c
    LEFT JOIN pg_catalog.pg_class toast ON toast.oid = c.reltoastrelid
    CROSS JOIN LATERAL (VALUES
        ('owner ' || pg_catalog.pg_get_userbyid(c.relowner)),
        ('privileges ' || (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
                           FROM pg_catalog.unnest(coalesce(c.relacl, pg_catalog.acldefault(
                               (CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a)::text),
        ('access method ' || (SELECT amname FROM pg_catalog.pg_am WHERE oid = c.relam)),
        ('options ' || (SELECT pg_catalog.array_agg(o ORDER BY o) FROM pg_catalog.unnest(c.reloptions) o)::text),
        ('toast options ' || (SELECT pg_catalog.array_agg(o ORDER BY o) FROM pg_catalog.unnest(toast.reloptions) o)::text),
        (CASE WHEN c.relpersistence <> 'p' THEN 'persistence ' || c.relpersistence::text END),
        ('tablespace ' || (SELECT spcname FROM pg_catalog.pg_tablespace WHERE oid = c.reltablespace)),
        (CASE WHEN c.relkind IN ('r', 'p') AND c.relreplident <> 'd'
              THEN 'replica identity ' || c.relreplident::text
                   || coalesce(' using ' || (SELECT ic.relname FROM pg_catalog.pg_index i
                                             JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                                             WHERE i.indrelid = c.oid AND i.indisreplident), '') END),
        (CASE WHEN c.relrowsecurity OR c.relforcerowsecurity
              THEN 'row security ' || c.relrowsecurity || ', forced ' || c.relforcerowsecurity END),
        ('partition key ' || pg_catalog.pg_get_partkeydef(c.oid)),
        ('partition of ' || (SELECT i.inhparent::pg_catalog.regclass::text || ' '
                                    || pg_catalog.pg_get_expr(c.relpartbound, c.oid)
                             FROM pg_catalog.pg_inherits i
                             WHERE i.inhrelid = c.oid AND c.relispartition)),
        ('inherits ' || (SELECT pg_catalog.string_agg(i.inhparent::pg_catalog.regclass::text, ', ' ORDER BY i.inhseqno)
                         FROM pg_catalog.pg_inherits i
                         WHERE i.inhrelid = c.oid AND NOT c.relispartition))
    ) AS f (fact)
    WHERE f.fact IS NOT NULL
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid, 0)
           || ': ' || f.fact
    FROM idx i
    CROSS JOIN LATERAL (VALUES
        ('definition ' || pg_catalog.pg_get_indexdef(i.indexrelid)),
        (CASE WHEN i.indisclustered OR i.indisreplident OR NOT i.indisvalid OR NOT i.indimmediate
              THEN 'clustered ' || i.indisclustered || ', replica identity ' || i.indisreplident
                   || ', valid ' || i.indisvalid || ', immediate ' || i.indimmediate END),
        (CASE WHEN i.relowner <> (SELECT relowner FROM pg_catalog.pg_class WHERE oid = i.indrelid)
              THEN 'owner ' || pg_catalog.pg_get_userbyid(i.relowner) END),
        ('tablespace ' || (SELECT spcname FROM pg_catalog.pg_tablespace WHERE oid = i.reltablespace)),
        ('attached to ' || (SELECT pg_catalog.string_agg(h.inhparent::pg_catalog.regclass::text, ', ')
                            FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid))
    ) AS f (fact)
    WHERE f.fact IS NOT NULL

    -- columns
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum)
           || ': ' || f.fact
    FROM (SELECT a.*, pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS position
          FROM pg_catalog.pg_attribute a
          WHERE a.attrelid IN (SELECT oid FROM rel WHERE relkind <> 'S') AND a.attnum > 0 AND NOT a.attisdropped) a
    JOIN rel c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef ad ON (ad.adrelid, ad.adnum) = (a.attrelid, a.attnum)
    CROSS JOIN LATERAL (VALUES
        ('position ' || a.position),
        ('type ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
            || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
            || CASE a.attidentity WHEN 'a' THEN ' generated always as identity'
                                  WHEN 'd' THEN ' generated by default as identity' ELSE '' END
            || CASE WHEN a.attgenerated = 's' THEN ' generated always as (' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) || ') stored'
                    WHEN ad.adbin IS NOT NULL THEN ' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)
                    ELSE '' END
            || coalesce(' collate ' || (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                                        FROM pg_catalog.pg_collation co
                                        JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
                                        WHERE co.oid = a.attcollation), '')),
        -- the rest only when not the default, to keep a column to a few lines
        (CASE WHEN a.attstorage <> t.typstorage OR a.attcompression <> '' OR a.attstattarget <> -1
              THEN 'storage ' || a.attstorage::text
                   || ', compression ' || CASE a.attcompression WHEN '' THEN 'default' ELSE a.attcompression::text END
                   || ', statistics ' || a.attstattarget END),
        -- (pg_attver, where the server sets it, is the WAL position at which
        -- the column was made: it differs between any two databases)
        ('options ' || (SELECT pg_catalog.array_agg(o ORDER BY o) FROM pg_catalog.unnest(a.attoptions) o
                        WHERE o !~ '^pg_attver=')::text),
        ('fdw options ' || (SELECT pg_catalog.array_agg(o ORDER BY o) FROM pg_catalog.unnest(a.attfdwoptions) o)::text),
        ('privileges ' || (SELECT pg_catalog.array_agg(x::text ORDER BY x::text) FROM pg_catalog.unnest(a.attacl) x)::text)
    ) AS f (fact)
    WHERE f.fact IS NOT NULL

    -- constraints
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_constraint'::pg_catalog.regclass, co.oid, 0) || ': ' || f.fact
    FROM con co
    CROSS JOIN LATERAL (VALUES
        ('definition ' || pg_catalog.pg_get_constraintdef(co.oid)),
        ('type ' || co.contype::text || ', deferrable ' || co.condeferrable || ', deferred ' || co.condeferred
            || ', validated ' || co.convalidated || ', no inherit ' || co.connoinherit
            || ', local ' || co.conislocal || ', inherited ' || co.coninhcount
            || coalesce(', index ' || (SELECT relname FROM pg_catalog.pg_class WHERE oid = co.conindid), ''))
    ) AS f (fact)

    -- triggers, rewrite rules, policies, extended statistics
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_trigger'::pg_catalog.regclass, tg.oid, 0) || ': ' || f.fact
    FROM trg tg
    CROSS JOIN LATERAL (VALUES
        ('definition ' || pg_catalog.pg_get_triggerdef(tg.oid, true)),
        ('enabled ' || tg.tgenabled::text)
    ) AS f (fact)
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid, 0)
           || ': definition ' || pg_catalog.pg_get_ruledef(r.oid, true) || ' enabled ' || r.ev_enabled::text
    FROM rwr r
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 0)
           || ': ' || CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END
           || ' for ' || p.polcmd::text
           || ' to ' || (SELECT pg_catalog.array_agg(CASE r WHEN 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r) END ORDER BY 1)
                         FROM pg_catalog.unnest(p.polroles) r)::text
           || ' using (' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ')'
           || ' with check (' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') || ')'
    FROM pol p
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid, 0)
           || ': definition ' || pg_catalog.pg_get_statisticsobjdef(s.oid) || ', statistics ' || s.stxstattarget
    FROM stx s

    -- functions, procedures, aggregates
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0) || ': ' || f.fact
    FROM pg_catalog.pg_proc p
    CROSS JOIN LATERAL (VALUES
        ('owner ' || pg_catalog.pg_get_userbyid(p.proowner)),
        ('privileges ' || (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
                           FROM pg_catalog.unnest(coalesce(p.proacl, pg_catalog.acldefault('f'::"char", p.proowner))) a)::text),
        ('kind ' || p.prokind::text || ', volatility ' || p.provolatile::text || ', strict ' || p.proisstrict
            || ', security definer ' || p.prosecdef || ', leakproof ' || p.proleakproof
            || ', parallel ' || p.proparallel::text || ', cost ' || p.procost || ', rows ' || p.prorows
            || ', config ' || coalesce(p.proconfig::text, '{}')),
        ('definition ' || CASE WHEN p.prokind = 'a'
                               THEN (SELECT 'aggregate ' || pg_catalog.concat_ws(', ', a.aggkind, a.aggtransfn, a.aggfinalfn,
                                            a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.aggmtransfn,
                                            a.aggminvtransfn, a.aggmfinalfn, a.aggsortop::pg_catalog.regoper,
                                            pg_catalog.format_type(a.aggtranstype, NULL), a.agginitval,
                                            a.aggfinalmodify, a.aggfinalextra)
                                     FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid)
                               ELSE pg_catalog.pg_get_functiondef(p.oid) END)
    ) AS f (fact)
    WHERE p.oid IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_proc'::pg_catalog.regclass)

    -- views and materialized views
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0)
           || ': definition ' || pg_catalog.pg_get_viewdef(c.oid, true)
    FROM rel c
    WHERE c.relkind IN ('v', 'm')

    -- sequences
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, s.seqrelid, 0)
           || ': parameters ' || pg_catalog.format_type(s.seqtypid, NULL)
           || ' start ' || s.seqstart || ' increment ' || s.seqincrement
           || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache
           || CASE WHEN s.seqcycle THEN ' cycle' ELSE ' no cycle' END
           || coalesce((SELECT ' owned by ' || pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
                               || CASE d.deptype WHEN 'i' THEN ' (identity)' ELSE '' END
                        FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.seqrelid
                          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')), '')
    FROM pg_catalog.pg_sequence s
    WHERE s.seqrelid IN (SELECT oid FROM rel)

    -- types
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0) || ': ' || f.fact
    FROM member_type t
    CROSS JOIN LATERAL (VALUES
        ('owner ' || pg_catalog.pg_get_userbyid(t.typowner)),
        ('privileges ' || (SELECT pg_catalog.array_agg(a::text ORDER BY a::text)
                           FROM pg_catalog.unnest(coalesce(t.typacl, pg_catalog.acldefault('T'::"char", t.typowner))) a)::text),
        ('type ' || t.typtype::text || ', category ' || t.typcategory::text || ', length ' || t.typlen
            || ', by value ' || t.typbyval || ', align ' || t.typalign::text || ', storage ' || t.typstorage::text
            || ', delimiter ' || t.typdelim::text
            || ', functions ' || pg_catalog.concat_ws(' ', t.typinput, t.typoutput, t.typreceive, t.typsend,
                                                       t.typmodin, t.typmodout, t.typanalyze, t.typsubscript)
            || ', collatable ' || (t.typcollation <> 0)
            || ', not null ' || t.typnotnull
            || coalesce(', base ' || pg_catalog.format_type(NULLIF(t.typbasetype, 0), NULLIF(t.typtypmod, -1)), '')
            || coalesce(', default ' || t.typdefault, '')),
        ('enum labels ' || coalesce((SELECT pg_catalog.array_agg(e.enumlabel ORDER BY e.enumsortorder)
                                     FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)::text, '-')),
        ('range ' || coalesce((SELECT pg_catalog.concat_ws(' ', pg_catalog.format_type(r.rngsubtype, NULL),
                                                            r.rngcollation, r.rngsubopc::pg_catalog.regclass,
                                                            r.rngcanonical, r.rngsubdiff)
                               FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid), '-'))
    ) AS f (fact)

    -- operators, casts, operator classes and families, event triggers
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_operator'::pg_catalog.regclass, o.oid, 0)
           || ': ' || pg_catalog.concat_ws(' ', 'kind', o.oprkind, 'function', o.oprcode,
                                           'result', pg_catalog.format_type(o.oprresult, NULL),
                                           'commutator', o.oprcom::pg_catalog.regoper, 'negator', o.oprnegate::pg_catalog.regoper,
                                           'restrict', o.oprrest, 'join', o.oprjoin,
                                           'merges', o.oprcanmerge, 'hashes', o.oprcanhash,
                                           'owner', pg_catalog.pg_get_userbyid(o.oprowner))
    FROM pg_catalog.pg_operator o
    WHERE o.oid IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_operator'::pg_catalog.regclass)
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_cast'::pg_catalog.regclass, ca.oid, 0)
           || ': function ' || coalesce(NULLIF(ca.castfunc, 0)::pg_catalog.regprocedure::text, '-')
           || ', context ' || ca.castcontext::text || ', method ' || ca.castmethod::text
    FROM pg_catalog.pg_cast ca
    WHERE ca.oid IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_cast'::pg_catalog.regclass)
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_opclass'::pg_catalog.regclass, oc.oid, 0)
           || ': input ' || pg_catalog.format_type(oc.opcintype, NULL) || ', default ' || oc.opcdefault
           || ', storage ' || coalesce(pg_catalog.format_type(NULLIF(oc.opckeytype, 0), NULL), '-')
           || ', family ' || pg_catalog.pg_describe_object('pg_catalog.pg_opfamily'::pg_catalog.regclass, oc.opcfamily, 0)
    FROM pg_catalog.pg_opclass oc
    WHERE oc.oid IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_opclass'::pg_catalog.regclass)
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_amop'::pg_catalog.regclass, ao.oid, 0)
           || ': purpose ' || ao.amoppurpose::text
           || coalesce(', sort family ' || pg_catalog.pg_describe_object('pg_catalog.pg_opfamily'::pg_catalog.regclass,
                                                                           NULLIF(ao.amopsortfamily, 0), 0), '')
    FROM pg_catalog.pg_amop ao
    WHERE ao.amopfamily IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_opfamily'::pg_catalog.regclass)
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_amproc'::pg_catalog.regclass, ap.oid, 0) || ': present'
    FROM pg_catalog.pg_amproc ap
    WHERE ap.amprocfamily IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_opfamily'::pg_catalog.regclass)
    UNION ALL
    SELECT pg_catalog.pg_describe_object('pg_catalog.pg_event_trigger'::pg_catalog.regclass, et.oid, 0)
           || ': on ' || et.evtevent || ' execute ' || et.evtfoid::pg_catalog.regprocedure
           || ' enabled ' || et.evtenabled::text || ' tags ' || coalesce(et.evttags::text, '{}')
           || ' owner ' || pg_catalog.pg_get_userbyid(et.evtowner)
    FROM pg_catalog.pg_event_trigger et
    WHERE et.oid IN (SELECT objid FROM member WHERE classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass)
)
SELECT pg_catalog.replace(pg_catalog.rtrim(line, E'\n'), E'\n', E'\n    ')
FROM line
ORDER BY line COLLATE "C";

-- The rows: one query per table of the extension, built here and run by
-- \gexec, each printing its lines in order ("rows of T: N" and one line per
-- row as JSON, computed-default columns left out).
SELECT pg_catalog.format(
    $q$WITH r AS (SELECT pg_catalog.to_jsonb(%1$I.*) - %2$L::text[] AS j FROM %3$s %4$s)
       SELECT %5$L || (SELECT pg_catalog.count(*) FROM r)
       UNION ALL
       (SELECT %6$L || j::text FROM r ORDER BY j::text COLLATE "C")$q$,
    c.relname,
    masked.cols,
    c.oid::pg_catalog.regclass,
    CASE WHEN :'fingerprint_rows' = 'all' OR cfg.tab IS NULL THEN ''
         WHEN cfg.cond IN ('', 'WHERE false') THEN 'WHERE false'
         ELSE 'WHERE NOT coalesce((' || pg_catalog.regexp_replace(cfg.cond, '^\s*WHERE\s', '', 'i') || '), false)'
    END,
    'rows of ' || c.oid::pg_catalog.regclass::text
        || CASE WHEN :'fingerprint_rows' = 'all' OR cfg.tab IS NULL THEN ' (all): '
                WHEN cfg.cond = '' THEN ' (none: users'' data): '
                WHEN cfg.cond = 'WHERE false' THEN ' (none: derived from users'' data, never dumped): '
                ELSE ' (shipped, outside ' || pg_catalog.regexp_replace(cfg.cond, '\s+', ' ', 'g') || '): ' END,
    'row of ' || c.oid::pg_catalog.regclass::text || ': ')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_depend d
  ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
 AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'lambda_detect'
LEFT JOIN LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig), pg_catalog.unnest(e.extcondition)) AS cfg (tab, cond) ON cfg.tab = c.oid
CROSS JOIN LATERAL (
    -- columns whose default is computed at insert time, not a constant
    SELECT coalesce(pg_catalog.array_agg(a.attname ORDER BY a.attnum), '{}')::text AS cols
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_attrdef ad ON (ad.adrelid, ad.adnum) = (a.attrelid, a.attnum)
    WHERE a.attrelid = c.oid AND NOT a.attisdropped AND ad.adbin::text !~ '^\{CONST '
) AS masked
WHERE c.relkind IN ('r', 'p')
ORDER BY c.oid::pg_catalog.regclass::text COLLATE "C"
\gexec
