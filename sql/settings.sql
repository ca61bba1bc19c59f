-- The settings, their defaults, units and who may change them.
\set VERBOSITY terse
\i sql/include/fresh_state.sql

SELECT name, boot_val, unit, context, vartype, min_val, max_val
  FROM pg_settings WHERE name LIKE 'lambda_detect.%' ORDER BY name;

-- a misspelt setting is an error, not a silent placeholder
SET lambda_detect.batchsize = 10;

-- the directory is for superusers only
CREATE ROLE regress_analyst LOGIN;
SET ROLE regress_analyst;
SET lambda_detect.inbox_dir = '/etc';
SHOW lambda_detect.inbox_dir;
RESET ROLE;
DROP ROLE regress_analyst;
