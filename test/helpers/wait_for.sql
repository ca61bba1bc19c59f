-- Shared helper of the pgTAP tests: wait for an asynchronous effect of the
-- background worker with a bounded poll, never a fixed sleep.
--
--   \ir helpers/wait_for.sql
--   SELECT ok(lambda_detect_test.wait_for($$EXISTS (SELECT ...)$$), '...');
--
-- wait_for evaluates the boolean SQL expression every 0.1 s until it is true
-- or the timeout has passed, and returns its last value (false on timeout).
-- Each evaluation is a new statement of a plpgsql function running in the
-- caller's transaction; call it outside an explicit transaction block so
-- that every evaluation sees what the worker committed meanwhile (READ
-- COMMITTED takes a new snapshot per statement).

CREATE SCHEMA IF NOT EXISTS lambda_detect_test;

CREATE OR REPLACE FUNCTION lambda_detect_test.wait_for(
    condition text,
    timeout   interval DEFAULT '20 seconds')
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    result   boolean;
BEGIN
    LOOP
        EXECUTE 'SELECT (' || condition || ')' INTO result;
        IF result IS TRUE THEN
            RETURN true;
        END IF;
        IF clock_timestamp() >= deadline THEN
            RETURN coalesce(result, false);
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION lambda_detect_test.wait_for(text, interval) IS
    'pgTAP helper: polls a boolean SQL expression every 0.1 s until true or the timeout; returns the last result';
