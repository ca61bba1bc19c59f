-- request_scan(): the worker scans inbox_dir now (version 1.1).
--
-- Rows inserted into the inbox wake the worker at commit; log files copied
-- into inbox_dir waited for the next scan, up to scan_interval (10 s by
-- default).  A client that has just delivered files (an aws s3 sync job)
-- calls this after copying them, and the worker scans as soon as the
-- caller's transaction commits.  It only makes the worker do sooner what
-- it would do anyway (a scan that finds nothing new skips the unchanged
-- directories, src/dir_cache.c): ingest duties may be granted it.

CREATE FUNCTION lambda_detect.request_scan()
RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_request_scan';

COMMENT ON FUNCTION lambda_detect.request_scan() IS
    'Asks the background worker to scan lambda_detect.inbox_dir when the calling transaction commits, without waiting for scan_interval; returns whether a worker is running in this database to do it (if not, ingest_now() reads the directory in the calling session)';

REVOKE ALL ON FUNCTION lambda_detect.request_scan() FROM PUBLIC;
