-- lambda_detect 0.1 -> 1.0
--
-- 1.0 is 0.1 released under the version number of a first stable release:
-- the schema is the same, so there is nothing to change.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION lambda_detect UPDATE TO '1.0'" to load this file. \quit
