-- lambda_detect 1.0 -> 1.1
--
-- The Makefile assembles the upgrade script lambda_detect--1.0--1.1.sql from
-- this header and the schema parts added in 1.1 (UPGRADE_1.0--1.1 in the
-- Makefile), the same files a fresh install runs: after a release, schema
-- changes are new parts, never edits of released ones.  t/008_upgrade.pl
-- checks that 1.0 updated with it has the same objects as a fresh install.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION lambda_detect UPDATE TO '1.1'" to load this file. \quit
