-- Each regression test starts from an empty lambda_detect, whatever ran before it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS lambda_detect;
TRUNCATE lambda_detect.inbox, lambda_detect.events, lambda_detect.ingest_errors,
         lambda_detect.ingested_files, lambda_detect.ingest_runs, lambda_detect.rule_runs,
         lambda_detect.alerts, lambda_detect.known_networks,
         lambda_detect.investigation_settings, lambda_detect.exceptions,
         lambda_detect.suppressed_matches, lambda_detect.alert_occurrences,
         lambda_detect.rule_candidates RESTART IDENTITY;
