-- Nothing that holds event data is readable by PUBLIC, and no function is
-- callable by PUBLIC: grant what each duty needs (README, "Privileges").

REVOKE ALL ON SCHEMA lambda_detect FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA lambda_detect FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA lambda_detect FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA lambda_detect FROM PUBLIC;

-- pg_dump skips the contents of an extension's tables unless they are marked
-- as configuration: mark every table that holds users' data, and the
-- identity sequences behind them so restored ids do not start over.  The
-- rules shipped with the extension are created by CREATE EXTENSION itself,
-- so only the rules users add are dumped (their edits to shipped rules are
-- not: see docs/rules.md).  (One call per statement: each call updates the extension's
-- catalog row.)
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.rules',
    $$WHERE rule NOT IN ('lambda-public-invocation', 'lambda-public-wildcard-action',
                         'lambda-function-url-public', 'lambda-cross-account-invocation')$$);
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.inbox', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.events', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.ingest_errors', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.ingested_files', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.ingest_runs', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.rule_runs', '');
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.alerts', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.inbox', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.ingest_errors', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.ingest_runs', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.rule_runs', 'run_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.alerts', 'alert_id')::pg_catalog.regclass, '');
