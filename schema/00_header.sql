-- lambda_detect install script.
--
-- The Makefile assembles this script from the numbered files in schema/, in
-- order; each file holds one part of the schema.  Edit those, not the
-- assembled lambda_detect--<version>.sql.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION lambda_detect" to load this file. \quit

COMMENT ON SCHEMA lambda_detect IS
    'lambda_detect: CloudTrail ingestion and detection of AWS Lambda function policies opened to public invocation';
