-- Common start of every pgTAP file: stop at the first error, quiet output,
-- the extensions under test, and the shared helpers.
--
--   \ir helpers/setup.sql
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS lambda_detect;
\ir wait_for.sql
\ir cloudtrail.sql
