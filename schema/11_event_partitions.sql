-- events becomes a table partitioned by event time (version 1.1).
--
-- Investigation needs months of history while the rules need the last hour,
-- and disks are finite: with one partition per day (by default), expired
-- history is dropped a partition at a time instead of deleted row by row.
-- The partitions themselves are made by lambda_detect.maintain()
-- (14_storage_maintenance.sql), which the worker calls: ahead of time for
-- the coming days, and on demand for late events.  Until a partition for
-- its time exists, an event waits in events_default, from which maintain()
-- drains it; nothing stays there except events dated further ahead than
-- partitions are made, which are drained when their day comes.
--
-- The primary key must include the partition key, so it is (event_id,
-- event_time).  Duplicates are still caught: CloudTrail delivers the same
-- event twice as the same record, with the same eventTime, so both copies
-- route to the same partition, where the key finds the first; how many days
-- apart they were ingested does not matter.  (A record that reuses an
-- eventID with another eventTime is not a copy of the same event.)
--
-- The key also holds recipient_account_id, which is NOT NULL: Citus, on
-- which events would be distributed by account (docs/scaling.md), needs
-- the distribution column in every unique key and refuses NULL in it.  An
-- eventID is unique per recipient account (CloudTrail gives each account's
-- copy of a cross-account call its own eventID, and the copies share a
-- sharedEventID), and a copy of an event carries its recipientAccountId as
-- it carries its eventTime, so the key deduplicates as before.  A record
-- without recipientAccountId is stored under '' (never lost); the rules
-- treat '' as an unknown account, as they treated NULL.
--
-- The conversion below works on any contents, so a fresh install (empty
-- events, created by 02_events.sql) and the update from 1.0 (events with
-- data) run the same statements: the table is rebuilt partitioned with the
-- same columns, constraints, comments, indexes and grants, its rows are
-- copied into events_default (the worker then drains them into daily
-- partitions), and the old table is dropped.  The one view on events,
-- alerts_ecs, is dropped first and made again by 13_alerts_ecs.sql, with
-- its grants.

DO $convert$
DECLARE
    old_table  CONSTANT regclass := 'lambda_detect.events'::regclass;
    index_defs text[] := '{}';
    index_cmts text[] := '{}';
    grants     text[] := '{}';
    init_acl   aclitem[];
    view_acl   text;
    foreign_objects text;
    r          record;
BEGIN
    -- Objects of users' own on events would not survive the rebuild: say
    -- which, rather than lose them or fail on an internal name.
    SELECT pg_catalog.string_agg(o, ', ' ORDER BY o) INTO foreign_objects FROM (
        SELECT pg_catalog.format('view %s', v.oid::pg_catalog.regclass) AS o
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_rewrite w ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                      AND d.objid = w.oid
          JOIN pg_catalog.pg_class v ON v.oid = w.ev_class
         WHERE d.refobjid = old_table AND v.oid <> old_table
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                            WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                              AND e.objid = v.oid AND e.deptype = 'e')
        UNION
        SELECT pg_catalog.format('trigger %I', t.tgname) FROM pg_catalog.pg_trigger t
         WHERE t.tgrelid = old_table AND NOT t.tgisinternal
        UNION
        SELECT pg_catalog.format('policy %I', pol.polname) FROM pg_catalog.pg_policy pol
         WHERE pol.polrelid = old_table
        UNION
        SELECT pg_catalog.format('publication %I', pub.pubname)
          FROM pg_catalog.pg_publication_rel pr
          JOIN pg_catalog.pg_publication pub ON pub.oid = pr.prpubid
         WHERE pr.prrelid = old_table
        UNION
        SELECT pg_catalog.format('statistics %s', st.oid::pg_catalog.regclass::text)
          FROM pg_catalog.pg_statistic_ext st WHERE st.stxrelid = old_table
        UNION
        SELECT pg_catalog.format('grant on column %I', a.attname) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = old_table AND a.attacl IS NOT NULL) x(o);
    IF foreign_objects IS NOT NULL THEN
        RAISE EXCEPTION 'lambda_detect.events has objects of its users that the update to 1.1 cannot keep'
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'Version 1.1 rebuilds events as a partitioned table.  Found: ' || foreign_objects || '.',
                  HINT = 'Drop them, run ALTER EXTENSION lambda_detect UPDATE again, then create them on the new table.';
    END IF;

    -- what is to be rebuilt: secondary indexes (with comments) and grants
    FOR r IN
        SELECT c.relname, pg_catalog.pg_get_indexdef(i.indexrelid) AS def,
               pg_catalog.obj_description(i.indexrelid, 'pg_class') AS cmt
          FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = old_table AND NOT i.indisprimary
         ORDER BY c.relname
    LOOP
        index_defs := index_defs || r.def;
        index_cmts := index_cmts || pg_catalog.format('COMMENT ON INDEX lambda_detect.%I IS %L',
                                                        r.relname, r.cmt);
        EXECUTE pg_catalog.format('ALTER INDEX lambda_detect.%I RENAME TO %I',
                                  r.relname, r.relname || '_1_0');
    END LOOP;
    FOR r IN
        SELECT a.privilege_type, a.is_grantable,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END AS grantee
          FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid = old_table AND a.grantee <> c.relowner
    LOOP
        grants := grants || pg_catalog.format('GRANT %s ON lambda_detect.events TO %s%s',
                                              r.privilege_type, r.grantee,
                                              CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;

    -- the view on events goes; 13_alerts_ecs.sql makes it again with these grants
    IF pg_catalog.to_regclass('lambda_detect.alerts_ecs') IS NOT NULL THEN
        SELECT c.relacl::text INTO view_acl
          FROM pg_catalog.pg_class c WHERE c.oid = 'lambda_detect.alerts_ecs'::regclass;
        PERFORM pg_catalog.set_config('lambda_detect_upgrade.alerts_ecs_acl',
                                      COALESCE(view_acl, ''), true);
        ALTER EXTENSION lambda_detect DROP VIEW lambda_detect.alerts_ecs;
        DROP VIEW lambda_detect.alerts_ecs;
    END IF;

    ALTER TABLE lambda_detect.events RENAME TO events_1_0;
    ALTER TABLE lambda_detect.events_1_0 RENAME CONSTRAINT events_pkey TO events_1_0_pkey;

    CREATE TABLE lambda_detect.events (
        LIKE lambda_detect.events_1_0
        INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS
        INCLUDING STORAGE INCLUDING COMPRESSION
    ) PARTITION BY RANGE (event_time);
    -- 1.0 stored a missing recipientAccountId as NULL
    UPDATE lambda_detect.events_1_0 SET recipient_account_id = ''
     WHERE recipient_account_id IS NULL;
    ALTER TABLE lambda_detect.events
        ALTER COLUMN recipient_account_id SET DEFAULT '',
        ALTER COLUMN recipient_account_id SET NOT NULL,
        ADD CONSTRAINT events_pkey PRIMARY KEY (event_id, event_time, recipient_account_id);
    FOR i IN 1 .. COALESCE(pg_catalog.array_length(index_defs, 1), 0) LOOP
        EXECUTE index_defs[i];
        EXECUTE index_cmts[i];
    END LOOP;
    -- The users' grants come back through GRANT (which records the roles'
    -- dependencies), but in an extension script GRANT also records them as
    -- the extension's own initial privileges, and pg_dump would then leave
    -- them out: the initial privileges are put back to what the REVOKE
    -- recorded, which is what a fresh install records (99_privileges.sql).
    REVOKE ALL ON lambda_detect.events FROM PUBLIC;
    SELECT c.relacl INTO init_acl FROM pg_catalog.pg_class c
     WHERE c.oid = 'lambda_detect.events'::pg_catalog.regclass;
    FOR i IN 1 .. COALESCE(pg_catalog.array_length(grants, 1), 0) LOOP
        EXECUTE grants[i];
    END LOOP;
    UPDATE pg_catalog.pg_init_privs SET initprivs = init_acl
     WHERE objoid = 'lambda_detect.events'::pg_catalog.regclass
       AND classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND objsubid = 0;

    -- Rows are kept whole in the heap up to a page (toast_tuple_target,
    -- 2 kB by default, is the most PostgreSQL allows).  normalize() has
    -- already compressed the record, so TOAST has nothing left to compress
    -- in a row of 2 to 8 kB and would only move the record to the TOAST
    -- table: one more heap tuple and index entry per such event (a third of
    -- CloudTrail's), more time and more space.  Measured on 100,000 events
    -- of make bench's data: storing them took 35-36 us per event against
    -- 40-43, and 2,395 bytes per event against 2,431.  Partitions made by
    -- create_event_partition() get the same setting.
    CREATE TABLE lambda_detect.events_default PARTITION OF lambda_detect.events DEFAULT
        WITH (toast_tuple_target = 8160);
    INSERT INTO lambda_detect.events SELECT * FROM lambda_detect.events_1_0;

    -- dropping a member leaves its pg_extension_config_dump entry behind
    -- unless it leaves the extension first
    ALTER EXTENSION lambda_detect DROP TABLE lambda_detect.events_1_0;
    DROP TABLE lambda_detect.events_1_0;
END
$convert$;

COMMENT ON TABLE lambda_detect.events IS
    'Normalized CloudTrail events, one row per event (its eventID, with the eventTime and recipientAccountId every copy carries), partitioned by event time (see event_partitions)';
COMMENT ON CONSTRAINT events_pkey ON lambda_detect.events IS
    'One row per eventID: duplicates of an event carry its eventTime and recipientAccountId, so they meet in one partition (and would meet in one Citus shard)';
COMMENT ON COLUMN lambda_detect.events.recipient_account_id IS
    'CloudTrail recipientAccountId: the account that owns the resource; '''' (empty) when the record names none (never NULL: it is in the key, and the distribution column of the Citus plan)';
COMMENT ON TABLE lambda_detect.events_default IS
    'Events whose time has no partition yet: lambda_detect.maintain() drains them into partitions (only events dated beyond partitions_ahead wait here)';

REVOKE ALL ON lambda_detect.events_default FROM PUBLIC;

-- Users' data, dumped by pg_dump: the partitions made later are not
-- extension members, so pg_dump dumps them (and their rows) like any table.
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.events', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.events_default', '');
