/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The lambda_detect.* configuration parameters.
 *
 * Everything the worker reads can change on SIGHUP.  inbox_dir and the
 * input limits are superuser-settable (PGC_SUSET), so that a superuser can
 * also point a session's ingest_now() at a directory; the worker follows the
 * server's configuration file.  The database and the role the worker
 * connects as are read on SIGHUP too: a connection cannot change either, so
 * the worker restarts to follow them.  notify_payload is read by SQL
 * (alert_notify_payload()), by whichever session changes an alert;
 * notify_from too, and by the rule engine.
 *
 * src/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "lambda_detect.h"

char	   *ld_database = NULL;
char	   *ld_worker_role = NULL;
char	   *ld_inbox_dir = NULL;
int			ld_batch_size = 500;
int			ld_ingest_helpers = 1;
int			ld_naptime_ms = 1000;
int			ld_scan_interval_ms = 10000;
int			ld_full_scan_interval_ms = 3600000;
int			ld_maintenance_interval_ms = 60000;
int			ld_file_settle_ms = 5000;
int			ld_max_payload_kb = 128 * 1024;
int			ld_max_depth = 100;
int			ld_max_records = 100000;
int			ld_max_error_text = 65536;
bool		ld_run_rules = true;

/* read by alert_notify_payload() with current_setting(), not by C */
static int	ld_notify_payload = 1;

/* who sends NOTIFY: the triggers on alerts, or the sessions changing them */
int			ld_notify_from = NOTIFY_FROM_TRIGGER;

static const struct config_enum_entry notify_from_options[] = {
	{"trigger", NOTIFY_FROM_TRIGGER, false},
	{"session", NOTIFY_FROM_SESSION, false},
	{NULL, 0, false}
};

static const struct config_enum_entry notify_payload_options[] = {
	{"minimal", 0, false},
	{"full", 1, false},
	{NULL, 0, false}
};

/*
 * DefineSettings registers every lambda_detect.* parameter and reserves the
 * prefix, so that a misspelt lambda_detect.something is reported rather
 * than silently kept as a placeholder.
 */
void
DefineSettings(void)
{
	DefineCustomStringVariable("lambda_detect.database",
							   "Database the background worker connects to.",
							   "The extension must be created in this database; "
							   "the worker restarts when it changes.",
							   &ld_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	/*
	 * PGC_SIGHUP rather than PGC_POSTMASTER: the role matters only when the
	 * worker connects, so a reload that changes it restarts the worker (as
	 * for the database) instead of asking for a server restart.  Only the
	 * configuration file or ALTER SYSTEM can set it, both a superuser's.
	 */
	DefineCustomStringVariable("lambda_detect.worker_role",
							   "Role the background worker connects as; empty means the bootstrap superuser.",
							   "A non-superuser role needs the grants of the worker duty (README, \"Privileges\"), "
							   "and, in PostgreSQL 15, the LOGIN attribute; the worker restarts when it changes.",
							   &ld_worker_role,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("lambda_detect.inbox_dir",
							   "Directory scanned for CloudTrail log files (.json, .json.gz, JSON lines); empty disables scanning.",
							   "Typically an \"aws s3 sync\" copy of a trail bucket.  "
							   "Files are read, never moved or deleted.",
							   &ld_inbox_dir,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.batch_size",
							"Inbox rows (or files) the worker ingests in one transaction.",
							NULL,
							&ld_batch_size,
							500, 1, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.ingest_helpers",
							"Processes the worker starts to drain an inbox backlog beside it.",
							"When a batch leaves more rows waiting, the worker starts up to this "
							"many ingest helpers (background workers) that claim batches too, "
							"each exiting once the inbox is empty.  0 drains with the worker alone.",
							&ld_ingest_helpers,
							1, 0, LD_MAX_INGEST_HELPERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.naptime",
							"Longest time the worker sleeps when it has nothing to do.",
							"Inserting into the inbox wakes it at once; this bounds how "
							"late it notices due rules.",
							&ld_naptime_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.scan_interval",
							"Time between two scans of lambda_detect.inbox_dir.",
							NULL,
							&ld_scan_interval_ms,
							10000, 100, 24 * 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.full_scan_interval",
							"Time between two scans of lambda_detect.inbox_dir that read every directory.",
							"In between, the worker skips directories whose files were all read and "
							"that have not changed since; a file rewritten in place under the same "
							"name is seen at the next full scan.  0 reads every directory at every scan.",
							&ld_full_scan_interval_ms,
							3600000, 0, 7 * 24 * 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.maintenance_interval",
							"Time between two calls of lambda_detect.maintain() by the worker.",
							"Partitions of events ahead of time, draining of events_default and "
							"retention; 0 leaves it to whoever calls maintain().",
							&ld_maintenance_interval_ms,
							60000, 0, 24 * 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.file_settle_time",
							"Files modified more recently than this are left for a later scan.",
							"Guards against reading a file that is still being written.",
							&ld_file_settle_ms,
							5000, 0, 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.max_payload_size",
							"Largest file ingested from inbox_dir, measured after decompression.",
							"Larger inputs, such as gzip bombs, are rejected to ingest_errors.",
							&ld_max_payload_kb,
							128 * 1024, 1, 256 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.max_depth",
							"Deepest JSON nesting accepted in a file.",
							NULL,
							&ld_max_depth,
							100, 8, 10000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.max_records",
							"Most CloudTrail records accepted in one payload or file document.",
							"A payload with more is rejected whole to ingest_errors.",
							&ld_max_records,
							100000, 1, 10000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lambda_detect.max_error_text",
							"Longest piece of unparseable input kept in ingest_errors.raw_text.",
							"Longer text is cut; the file path and location point at the rest.",
							&ld_max_error_text,
							65536, 0, 64 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("lambda_detect.run_rules",
							 "Whether the worker runs enabled rules on schedule and after ingesting candidates.",
							 NULL,
							 &ld_run_rules,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	/*
	 * PGC_SUSET: any role that can connect may LISTEN, whatever its grants,
	 * and a notification goes to every listener whichever session sent it,
	 * so only a superuser (the configuration file, ALTER SYSTEM, ALTER
	 * DATABASE or ROLE ... SET, or a superuser's own session) chooses what
	 * it carries.  The default, full, is the payload of the design (fields
	 * of the alert row, nothing else); minimal is for databases where roles
	 * that may not read alerts can connect.  Not GUC_SUPERUSER_ONLY: every
	 * session that changes an alert reads it.
	 */
	DefineCustomEnumVariable("lambda_detect.notify_payload",
							 "What the payloads of NOTIFY lambda_detect_alerts carry.",
							 "full (default): the alert's id, rule, severity, status and its event's id, time, "
							 "account, region, function, statement id, principal, actor and source, as the "
							 "alert row has them; minimal: the alert's id, rule, severity and status only.  "
							 "Any role that can connect may LISTEN, whatever its grants: choose minimal "
							 "where roles that may not read alerts can connect.",
							 &ld_notify_payload,
							 1,
							 notify_payload_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	/*
	 * Read by the rule engine in C and by notify_alert() and
	 * notify_alert_changed() with current_setting(): under Citus the
	 * triggers on alerts would fire on the nodes holding its shards, so the
	 * session that changes an alert sends the notification instead.
	 */
	DefineCustomEnumVariable("lambda_detect.notify_from",
							 "What sends NOTIFY lambda_detect_alerts: the triggers on alerts, or the session.",
							 "trigger (default): the triggers on alerts notify each new alert and each status "
							 "change.  session: the rule engine notifies the alerts it creates and "
							 "acknowledge_alert()/close_alert() the changes they make, and the triggers do "
							 "nothing; a direct UPDATE of alerts.status then notifies nothing.  For Citus, "
							 "where row triggers fire on the nodes holding the shards.",
							 &ld_notify_from,
							 NOTIFY_FROM_TRIGGER,
							 notify_from_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("lambda_detect");
}
