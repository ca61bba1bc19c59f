-- Functions of 1.0 that Citus cannot run as they were (version 1.1).
--
-- docs/scaling.md plans lambda_detect on Citus; tools/citus-check.sh tried
-- the plan on Citus 13.2.2.  Of the 1.0 functions (08_investigation.sql,
-- not edited), these failed there for how their SQL is written, not for
-- what they do; this part replaces them with the same behaviour on one
-- server (the triage and investigation regression tests are unchanged):
--
-- * effective_investigation_settings() read investigation_settings as a
--   whole-row value, which on a reference table takes the shard's row type
--   ("COALESCE could not convert type ..."): it builds the row from named
--   columns, as effective_storage_settings() does.

CREATE OR REPLACE FUNCTION lambda_detect.effective_investigation_settings()
RETURNS lambda_detect.investigation_settings
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(
        (SELECT ROW(s.singleton, s.time_zone, s.business_hours_start, s.business_hours_end,
                    s.business_days, s.history, s.correlation_window)::lambda_detect.investigation_settings
           FROM lambda_detect.investigation_settings s),
        ROW(true, 'UTC', time '09:00', time '18:00', '{1,2,3,4,5}'::integer[],
            interval '90 days', interval '1 hour')::lambda_detect.investigation_settings)
$$;

COMMENT ON FUNCTION lambda_detect.effective_investigation_settings() IS
    'The investigation settings in effect: the row of investigation_settings, or the defaults when it has none';
