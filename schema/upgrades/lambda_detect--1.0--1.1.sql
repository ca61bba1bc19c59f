-- lambda_detect 1.0 -> 1.1
--
-- Every change made to schema/[0-9]*.sql since 1.0, in the same order.
-- t/006_upgrade.pl checks that 1.0 updated with this script has the same
-- objects as a fresh install of 1.1.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION lambda_detect UPDATE TO '1.1'" to load this file. \quit
