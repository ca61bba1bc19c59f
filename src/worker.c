/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The lambda_detect background worker: drains the inbox, scans the
 *	  inbox directory, and runs the rules that are due.
 *
 * One static worker, registered when the library is preloaded, connects to
 * lambda_detect.database as lambda_detect.worker_role (the bootstrap
 * superuser when that is empty).  Its loop, in the manner of worker_spi:
 *
 *	  drain one inbox batch -> scan inbox_dir if due -> run due rules
 *	  (and every enabled rule right after a batch stored candidates, so an
 *	  attack is alerted within seconds) -> wait on the latch.
 *
 * Each unit of work is its own transaction.  A unit that fails is rolled
 * back, logged, counted in the heartbeat and retried with exponential
 * backoff: the worker does not crash-loop on a bad state.  Before it works,
 * and again after a unit failed for lack of a privilege, it checks that its
 * role holds every grant it needs (worker_privileges.c) and waits, saying
 * once what is missing, until it does.  Each unit holds a share lock on the
 * extension, so that DROP EXTENSION waits for the unit in progress instead
 * of dropping tables under it.  It starts only once recovery has finished,
 * so never on a standby; SIGHUP reloads the settings (a new
 * lambda_detect.database or worker_role restarts it); SIGTERM ends it at
 * the next CHECK_FOR_INTERRUPTS.
 *
 * The same units run in the ingest helpers (LambdaDetectIngestHelperMain at
 * the end of this file; src/ingest_helpers.c starts them): processes that
 * drain an inbox backlog and read a backlog of files beside the worker, and
 * exit once the work is done.
 *
 * src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "lambda_detect.h"

/* seconds before the postmaster restarts a worker that exited with an error */
#define WORKER_RESTART_SECONDS	5
/* backoff bounds, in milliseconds */
#define BACKOFF_MIN_MS			1000
#define BACKOFF_MAX_MS			60000
#define CONNECT_BACKOFF_MAX_MS	300000
#define MAX_SCHEDULED_RULES		64
#define INBOX_RESTART_MS		1000	/* see ingest_unit */

/* when each enabled rule is next due */
typedef struct RuleSchedule
{
	char		rule[128];
	TimestampTz next_due;
	int64		interval_ms;
	int			failures;
	bool		catch_up;		/* last run truncated: run again at once */
	bool		seen;
} RuleSchedule;

static RuleSchedule schedules[MAX_SCHEDULED_RULES];
static int	nschedules = 0;

/* long-lived memory of the worker, and memory of one scan's file list */
static MemoryContext worker_cxt = NULL;
static MemoryContext scan_cxt = NULL;

/*
 * Each kind of unit backs off on its own: a failing scan must not slow the
 * inbox, and a succeeding unit must not reset another's backoff.
 */
typedef struct UnitBackoff
{
	int			failures;
	TimestampTz next_attempt;	/* 0: now */
} UnitBackoff;

static UnitBackoff startup_backoff;
static UnitBackoff ingest_backoff;
static UnitBackoff scan_backoff;
static UnitBackoff schedule_backoff;
static UnitBackoff maintenance_backoff;
static UnitBackoff privileges_backoff;

/* the error of the last failed unit, for the rule run it belongs to */
static char last_unit_sqlstate[6];
static char *last_unit_error = NULL;

static bool extension_present = false;
static bool is_helper = false;	/* an ingest helper, not the worker */
static bool rule_cap_logged = false;
static bool extension_missing_logged = false;
static bool schema_version_logged = false;
static char connected_db[NAMEDATALEN];
static char *connected_role = NULL;

/*
 * Whether the role's privileges were found complete since the last failure
 * for lack of one; and the last such failure reported, so that the same
 * missing grant is logged once, not at every retry.
 */
static bool privileges_checked = false;
static char *privilege_error_logged = NULL;

typedef bool (*UnitFunction) (void *arg);

static int
backoff_ms(int failures, int max_ms)
{
	int64		ms = BACKOFF_MIN_MS;

	for (int i = 1; i < failures && ms < max_ms; i++)
		ms *= 2;
	return (int) Min(ms, (int64) max_ms);
}

/*
 * RegisterIngestWorker registers the worker; called from _PG_init in the
 * postmaster.  BgWorkerStart_RecoveryFinished keeps it off standbys; after
 * a promotion it starts.
 */
void
RegisterIngestWorker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = WORKER_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "lambda_detect", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "LambdaDetectWorkerMain", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "lambda_detect worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "lambda_detect worker", BGW_MAXLEN);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/* Waits on the latch for up to timeout_ms, then handles interrupts. */
static void
wait_latch(long timeout_ms)
{
	(void) WaitLatch(MyLatch,
					 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 Max(timeout_ms, 1),
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * begin_unit and end_unit bracket a unit of work: a transaction with an
 * SPI connection and an active snapshot.  SetCurrentStatementStartTimestamp
 * comes first so that now() in the unit is the unit's own start time, not
 * the time the worker started (worker_spi does the same).
 */
static void
begin_unit(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_unit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * lock_schema_version returns the installed version of the extension, or
 * NULL when it is not installed, and holds a share lock on the extension
 * until the end of the transaction.  DROP EXTENSION locks the extension
 * exclusively before it touches anything else, so it waits for the unit in
 * progress to end instead of dropping tables under it; the next unit waits
 * for the DROP to end and then finds the extension gone, not a table
 * missing halfway through a statement (nor a deadlock between the two).
 */
static char *
lock_schema_version(void)
{
	for (;;)
	{
		Oid			extoid = get_extension_oid("lambda_detect", true);

		if (!OidIsValid(extoid))
			return NULL;
		LockDatabaseObject(ExtensionRelationId, extoid, 0, AccessShareLock);
		/* what we waited for may have dropped it: read the catalog afresh */
		InvalidateCatalogSnapshot();
		if (get_extension_oid("lambda_detect", true) == extoid)
			return InstalledSchemaVersion();
		UnlockDatabaseObject(ExtensionRelationId, extoid, 0, AccessShareLock);
	}
}

/*
 * The file scan's commit point between two chunks of files.  The new
 * transaction takes the extension's lock again; if the extension was
 * dropped or updated in between, the scan stops here.
 */
static void
scan_boundary(void)
{
	char	   *installed;

	end_unit();
	/* a pass over a large directory takes long, and waits on no latch */
	if (!PostmasterIsAlive())
		proc_exit(1);
	begin_unit("lambda_detect: scanning inbox_dir");
	installed = lock_schema_version();
	if (installed == NULL || strcmp(installed, LAMBDA_DETECT_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("lambda_detect worker: extension \"lambda_detect\" was dropped or updated during a scan of inbox_dir"),
				 errdetail("The files read before are committed; the next scan goes on from there.")));
}

/*
 * scan_backlog is called when the worker's scan finds more new files than
 * one transaction takes: helpers are asked to scan beside it.
 */
static void
scan_backlog(void)
{
	if (!is_helper && ld_ingest_helpers > 0)
	{
		SharedStateRequestScan();
		StartIngestHelpers(true, connected_db);
	}
}

/* True when a unit kind is not backing off after failures. */
static bool
unit_ready(UnitBackoff *backoff, TimestampTz now)
{
	return backoff->failures == 0 || now >= backoff->next_attempt;
}

/* Milliseconds until a backing-off unit may run again (LONG_MAX if none). */
static long
ms_until_ready(UnitBackoff *backoff, TimestampTz now)
{
	if (backoff->failures == 0)
		return LONG_MAX;
	return (long) Max((backoff->next_attempt - now) / 1000, 0);
}

/*
 * emit_error_data writes edata to the server log, at its own level, as the
 * current error.  ThrowErrorData is PostgreSQL's way of reporting an error
 * put together by hand; at ERROR it jumps, so the jump is caught here at once
 * and the error emitted (PostgresMain's recipe).  errfinish released the
 * interrupts the caller holds: they are held again.
 */
static void
emit_error_data(ErrorData *edata)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		ThrowErrorData(edata);
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
	}
	PG_END_TRY();
}

/*
 * report_unit_error logs the error edata of a failed unit, which is the
 * current error.  The server log's readers are the server's administrators,
 * who need not be allowed to read events, so the log gets no text that may
 * quote them.  An error about the system (ErrorIsAboutSystem) is logged as
 * raised, without its log-only detail: a deadlock's names the other
 * sessions' queries, and one may be a client's INSERT of a payload.  Any
 * other error (a CHECK violation's detail quotes the whole row, a trigger's
 * RAISE whatever it was given) is logged as the unit, its SQLSTATE and the
 * names of the objects involved; its message goes to the heartbeat
 * (worker_status(), granted like the data), and, for a rule run, to
 * rule_runs.
 */
static void
report_unit_error(const char *activity, ErrorData *edata)
{
	const char *prefix = "lambda_detect: ";
	const char *what = activity;
	MemoryContext report_cxt;
	MemoryContext old_cxt;
	ErrorData  *shown;

	if (ErrorIsAboutSystem(edata) && edata->detail_log == NULL)
	{
		EmitErrorReport();
		return;
	}

	report_cxt = AllocSetContextCreate(CurrentMemoryContext, "lambda_detect error report",
									   ALLOCSET_SMALL_SIZES);
	old_cxt = MemoryContextSwitchTo(report_cxt);
	if (strncmp(what, prefix, strlen(prefix)) == 0)
		what += strlen(prefix);
	shown = palloc(sizeof(ErrorData));
	memcpy(shown, edata, sizeof(ErrorData));
	shown->detail_log = NULL;
	if (!ErrorIsAboutSystem(edata))
	{
		shown->message = psprintf("lambda_detect worker: %s failed", what);
		shown->detail = psprintf("%s.  The error's text may quote the data being processed, "
								 "so the server log leaves it out.",
								 ErrorLogText(edata));
		shown->hint = pstrdup("worker_status() shows its message to the roles granted it, "
							  "and the same work run from SQL (ingest_now(), run_rule(), maintain()) raises it whole.");
		shown->context = NULL;
		shown->internalquery = NULL;
		shown->internalpos = 0;
		shown->cursorpos = 0;
		shown->backtrace = NULL;
	}
	FlushErrorState();
	emit_error_data(shown);
	MemoryContextSwitchTo(old_cxt);
	MemoryContextDelete(report_cxt);
}

/*
 * run_unit runs fn in a transaction of its own.  An error is logged
 * (report_unit_error), recorded in the heartbeat and rolled back (the
 * PostgresMain recipe: report, abort, flush), and makes this kind of unit
 * back off.  Returns what fn returned (whether more work is waiting), or
 * false after an error or when the extension is not installed; *ok says
 * whether it committed.
 */
static bool
run_unit(const char *activity, UnitFunction fn, void *arg, UnitBackoff *backoff,
		 bool *ok)
{
	volatile bool more = false;
	volatile bool missing = false;
	char	   *volatile other_version = NULL;

	if (ok)
		*ok = false;
	PG_TRY();
	{
		char	   *installed;

		begin_unit(activity);
		installed = lock_schema_version();
		if (installed == NULL)
			missing = true;
		else if (strcmp(installed, LAMBDA_DETECT_VERSION) != 0)
			other_version = MemoryContextStrdup(worker_cxt, installed);
		else
			more = fn(arg);
		end_unit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		repeated = false;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();

		/*
		 * A missing privilege makes the worker check all of them again before
		 * it goes on; the same missing grant is reported once, not at every
		 * retry, until the role's privileges were found complete.
		 */
		if (edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
		{
			char	   *text = psprintf("%s\n%s", edata->message ? edata->message : "",
										edata->detail ? edata->detail : "");

			privileges_checked = false;
			repeated = privilege_error_logged != NULL &&
				strcmp(privilege_error_logged, text) == 0;
			if (privilege_error_logged)
				pfree(privilege_error_logged);
			privilege_error_logged = text;
			if (!is_helper)
				SharedStateSetState("waiting for privileges");
		}
		if (!repeated)
			report_unit_error(activity, edata);
		AbortCurrentTransaction();
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();

		SharedStateRecordError(edata->message);
		strlcpy(last_unit_sqlstate, unpack_sql_state(edata->sqlerrcode),
				sizeof(last_unit_sqlstate));
		if (last_unit_error)
			pfree(last_unit_error);
		last_unit_error = pstrdup(edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);

		backoff->failures++;
		backoff->next_attempt = GetCurrentTimestamp() +
			(TimestampTz) backoff_ms(backoff->failures, BACKOFF_MAX_MS) * 1000;
		return false;
	}
	PG_END_TRY();

	backoff->failures = 0;
	backoff->next_attempt = 0;
	if (missing)
	{
		if (!is_helper && (extension_present || !extension_missing_logged))
			ereport(LOG,
					(errmsg("lambda_detect worker: extension \"lambda_detect\" is not installed in database \"%s\"",
							connected_db),
					 errhint("Run CREATE EXTENSION lambda_detect in that database, or set lambda_detect.database.")));
		extension_missing_logged = true;
		extension_present = false;
		if (!is_helper)
			SharedStateSetState("waiting for extension");
		return false;
	}
	extension_missing_logged = false;
	if (other_version != NULL)
	{
		/* the new library is loaded; the schema awaits ALTER EXTENSION UPDATE */
		if (!is_helper && (extension_present || !schema_version_logged))
			ereport(LOG,
					(errmsg("lambda_detect worker: schema version %s in database \"%s\" does not match library version %s; waiting",
							other_version, connected_db, LAMBDA_DETECT_VERSION),
					 errhint("Run ALTER EXTENSION lambda_detect UPDATE in that database.")));
		pfree(other_version);
		schema_version_logged = true;
		extension_present = false;
		if (!is_helper)
			SharedStateSetState("waiting for ALTER EXTENSION UPDATE");
		return false;
	}
	schema_version_logged = false;
	if (ok)
		*ok = true;
	return more;
}

/* --- the units --- */

/*
 * Runs once each time the extension is found (again): the role's
 * privileges, then crash clean-up.
 */
static bool
startup_unit(void *arg)
{
	CheckWorkerPrivileges();
	CloseOutInterruptedRuleRuns();
	nschedules = 0;
	return false;
}

/* Checks the role's privileges again, after a unit lacked one. */
static bool
privileges_unit(void *arg)
{
	CheckWorkerPrivileges();
	return false;
}

/*
 * maintenance_unit takes one step of lambda_detect.maintain() (a partition
 * made or dropped, a bounded delete), in a transaction of its own: a step's
 * locks, an exclusive one on events among them, are held for that step
 * only.  Returns whether it did a step, so that the loop takes the next one
 * soon (after the next inbox batch); a skipped step (a lock not available
 * within maintain()'s lock_timeout) or none waits for the next interval.
 */
static bool
maintenance_unit(void *arg)
{
	int			ret;
	bool		isnull;
	int64		done;

	ret = SPI_execute("SELECT pg_catalog.count(*) FILTER (WHERE m.action <> 'skipped')"
					  "  FROM lambda_detect.maintain(1) m", false, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not run lambda_detect.maintain(): %s", SPI_result_code_string(ret));
	done = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return done > 0;
}

/*
 * ingest_unit takes one inbox batch.
 *
 * A batch claims the oldest rows after the last one the previous batch of
 * this process claimed, not the oldest of the whole inbox: the rows earlier
 * batches deleted stay in the inbox's index while any transaction older
 * than their deletion is open (a long report, pg_dump), and a drain that
 * searched from the first id each time would read all of them again for
 * every batch, its cost growing with the square of the backlog (measured:
 * 100,000 rows drained 26% slower while a session held a snapshot, and
 * make bench's 500,000 at half speed).  Ids are taken when rows are
 * inserted and transactions commit in any order, so a row can become
 * visible below that mark, as can one that another process claimed and
 * rolled back: a drain starts again from the first id after a batch that
 * was not full, at least every INBOX_RESTART_MS while a backlog keeps every
 * batch full, and after a batch that failed (its transaction may have
 * rolled back what it claimed).
 */
static int64 inbox_after_id = 0;
static TimestampTz inbox_restarted_at = 0;

static bool
ingest_unit(void *arg)
{
	IngestCounts *counts = (IngestCounts *) arg;
	TimestampTz now = GetCurrentTimestamp();
	bool		more;

	if (TimestampDifferenceExceeds(inbox_restarted_at, now, INBOX_RESTART_MS))
	{
		inbox_after_id = 0;
		inbox_restarted_at = now;
	}
	more = IngestInboxBatch("worker", ld_batch_size, &inbox_after_id, PG_INT64_MAX,
							counts);
	if (!more)
		inbox_after_id = 0;

	counts->skip_reasons = (Datum) 0;	/* freed with the transaction */
	return more;
}

/*
 * scan_unit scans inbox_dir.  A directory that cannot be read is logged
 * once per setting value, not at every scan.
 */
static bool
scan_unit(void *arg)
{
	IngestCounts *counts = (IngestCounts *) arg;
	static char *warned_dir = NULL;

	MemoryContextReset(scan_cxt);
	if (!ScanInboxDirectory("worker", counts, scan_cxt, scan_boundary, scan_backlog,
							!is_helper) &&
		!is_helper)
	{
		if (warned_dir == NULL || strcmp(warned_dir, ld_inbox_dir) != 0)
		{
			ereport(LOG,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("lambda_detect.inbox_dir \"%s\" cannot be read: %m", ld_inbox_dir),
					 errhint("Create the directory, make it readable by the server, or correct lambda_detect.inbox_dir.")));
			if (warned_dir)
				pfree(warned_dir);
			warned_dir = MemoryContextStrdup(worker_cxt, ld_inbox_dir);
		}
		SharedStateRecordError("lambda_detect.inbox_dir cannot be read");
	}
	else if (warned_dir != NULL)
	{
		pfree(warned_dir);
		warned_dir = NULL;
	}
	MemoryContextReset(scan_cxt);
	counts->skip_reasons = (Datum) 0;
	return false;
}

/* Reads the enabled rules into the schedule; keeps state of known ones. */
static bool
load_schedule_unit(void *arg)
{
	TimestampTz now = GetCurrentTimestamp();
	int			ret;

	ret = SPI_execute("SELECT rule, (extract(epoch FROM run_interval) * 1000)::int8"
					  "  FROM lambda_detect.rules WHERE enabled ORDER BY rule",
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read rules: %s", SPI_result_code_string(ret));
	if (SPI_processed > MAX_SCHEDULED_RULES && !rule_cap_logged)
	{
		ereport(WARNING,
				(errmsg("lambda_detect worker schedules only the first %d of %llu enabled rules",
						MAX_SCHEDULED_RULES, (unsigned long long) SPI_processed),
				 errhint("Disable rules you do not need; run the others with run_rule().")));
		rule_cap_logged = true;
	}

	for (int i = 0; i < nschedules; i++)
		schedules[i].seen = false;
	for (uint64 r = 0; r < SPI_processed && r < MAX_SCHEDULED_RULES; r++)
	{
		bool		isnull;
		char	   *rule = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[r],
															 SPI_tuptable->tupdesc, 1, &isnull));
		int64		interval_ms = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
															  SPI_tuptable->tupdesc, 2, &isnull));
		RuleSchedule *s = NULL;

		for (int i = 0; i < nschedules; i++)
			if (strcmp(schedules[i].rule, rule) == 0)
				s = &schedules[i];
		if (s == NULL)
		{
			/* a rule not seen before runs at once, to catch up */
			s = &schedules[nschedules++];
			memset(s, 0, sizeof(*s));
			strlcpy(s->rule, rule, sizeof(s->rule));
			s->next_due = now;
		}
		else if (s->interval_ms != interval_ms && s->failures == 0 && !s->catch_up)
			s->next_due = Min(s->next_due, now + interval_ms * 1000);
		s->interval_ms = interval_ms;
		s->seen = true;
	}

	/* forget rules that were disabled or deleted */
	for (int i = 0; i < nschedules;)
	{
		if (!schedules[i].seen)
			schedules[i] = schedules[--nschedules];
		else
			i++;
	}
	return false;
}

typedef struct RuleUnitArg
{
	RuleSchedule *schedule;
	const char *trigger;
	RuleRunState state;
	bool		started;
	char	   *error;			/* message of a failed run, in worker_cxt */
} RuleUnitArg;

static bool
rule_start_unit(void *arg)
{
	RuleUnitArg *a = (RuleUnitArg *) arg;

	a->started = RuleRunStart(a->schedule->rule, a->trigger, GetCurrentTimestamp(),
							  true, &a->state);
	return false;
}

static bool
rule_execute_unit(void *arg)
{
	RuleUnitArg *a = (RuleUnitArg *) arg;
	ErrorData  *edata = RuleRunExecute(&a->state);

	if (edata != NULL)
	{
		a->error = MemoryContextStrdup(worker_cxt,
									   edata->message ? edata->message : "unknown error");
		/* recorded as a failed run, not raised: check the privileges again */
		if (edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
			privileges_checked = false;
	}
	return false;
}

static bool
rule_mark_failed_unit(void *arg)
{
	RuleUnitArg *a = (RuleUnitArg *) arg;

	RuleRunMarkFailed(a->state.run_id, last_unit_sqlstate, a->error);
	return false;
}

/*
 * run_rule_now runs one rule in two units: the first commits the run's
 * "running" row, the second does the work, so that a crash in between
 * leaves a row to close out.  If the second fails outside what
 * RuleRunExecute guards (say, a lock timeout on the rule), a third records
 * the run as failed.  Then it sets when the rule is next due.
 */
static void
run_rule_now(RuleSchedule *s, const char *trigger)
{
	RuleUnitArg a;
	UnitBackoff rule_backoff = {0, 0};
	bool		started_ok;
	bool		executed_ok = false;
	TimestampTz now;

	memset(&a, 0, sizeof(a));
	a.schedule = s;
	a.trigger = trigger;

	run_unit("lambda_detect: starting rule run", rule_start_unit, &a, &rule_backoff,
			 &started_ok);
	if (started_ok && a.started)
	{
		run_unit("lambda_detect: running rule", rule_execute_unit, &a, &rule_backoff,
				 &executed_ok);
		if (!executed_ok)
		{
			a.error = MemoryContextStrdup(worker_cxt,
										  last_unit_error ? last_unit_error : "unknown error");
			run_unit("lambda_detect: recording failed rule run", rule_mark_failed_unit, &a,
					 &rule_backoff, NULL);
		}
	}
	SharedStateRecordRuleRun();

	now = GetCurrentTimestamp();
	if (!started_ok || !a.started || !executed_ok || a.error != NULL)
	{
		s->failures++;
		s->catch_up = false;
		s->next_due = now + (TimestampTz) Min((int64) backoff_ms(s->failures, BACKOFF_MAX_MS),
											  s->interval_ms) * 1000;
		if (a.error != NULL)
		{
			SharedStateRecordError(a.error);
			pfree(a.error);
		}
	}
	else
	{
		s->failures = 0;
		s->catch_up = a.state.truncated;
		s->next_due = a.state.truncated ? now : now + s->interval_ms * 1000;
	}
}

/*
 * run_due_rules runs every rule that is due, and with force (candidates
 * were just stored) every rule not backing off after failures.  The list
 * of rules is read again at most every naptime.
 */
static void
run_due_rules(bool force, TimestampTz *next_schedule_load)
{
	TimestampTz now = GetCurrentTimestamp();

	if (now >= *next_schedule_load && unit_ready(&schedule_backoff, now))
	{
		bool		ok;

		run_unit("lambda_detect: reading rules", load_schedule_unit, NULL,
				 &schedule_backoff, &ok);
		if (ok)
			*next_schedule_load = GetCurrentTimestamp() + (TimestampTz) ld_naptime_ms * 1000;
	}
	now = GetCurrentTimestamp();
	for (int i = 0; i < nschedules; i++)
	{
		RuleSchedule *s = &schedules[i];

		CHECK_FOR_INTERRUPTS();
		if (s->catch_up)
			run_rule_now(s, "catchup");
		else if (now >= s->next_due)
			run_rule_now(s, "schedule");
		else if (force && s->failures == 0)
			run_rule_now(s, "ingest");
	}
}

/* Milliseconds until the earliest rule is due (0 when a catch-up is pending). */
static long
ms_until_next_rule(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		ms = LONG_MAX;

	for (int i = 0; i < nschedules; i++)
	{
		if (schedules[i].catch_up)
			return 0;
		ms = Min(ms, (long) Max((schedules[i].next_due - now) / 1000, 0));
	}
	return ms;
}

/*
 * connect_with_backoff connects to lambda_detect.database as
 * lambda_detect.worker_role.  A missing database, a missing role or one that
 * may not log in ends the process (FATAL), so the count of failed attempts
 * is kept in shared memory and each restart waits longer before trying
 * again: a clear log line and a backoff, not a crash loop.  Settings changed
 * while it waited are read before it tries.
 */
static void
connect_with_backoff(void)
{
	int			failures = SharedStateConnectFailures(false, false);

	if (failures > 0)
	{
		long		delay = backoff_ms(failures, CONNECT_BACKOFF_MAX_MS) -
			WORKER_RESTART_SECONDS * 1000L;

		if (ld_worker_role[0] == '\0')
			ereport(LOG,
					(errmsg("lambda_detect worker: connecting to database \"%s\" failed %d times; retrying in %ld ms",
							ld_database, failures, Max(delay, 0)),
					 errhint("Create the database, or set lambda_detect.database to one that exists.")));
		else
			ereport(LOG,
					(errmsg("lambda_detect worker: connecting to database \"%s\" as role \"%s\" failed %d times; retrying in %ld ms",
							ld_database, ld_worker_role, failures, Max(delay, 0)),
					 errhint("Create the database and the role; the role needs LOGIN (a background worker "
							 "connects through the same check as a client) and CONNECT on the database.  "
							 "Or correct lambda_detect.database and lambda_detect.worker_role.")));
		if (delay > 0)
			wait_latch(delay);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	SharedStateConnectFailures(true, false);
	BackgroundWorkerInitializeConnection(ld_database,
										 ld_worker_role[0] != '\0' ? ld_worker_role : NULL,
										 0);
	SharedStateConnectFailures(false, true);
	strlcpy(connected_db, ld_database, NAMEDATALEN);
	connected_role = MemoryContextStrdup(TopMemoryContext, ld_worker_role);
}

/*
 * LambdaDetectWorkerMain is the worker's entry point: it connects, then
 * loops over the units until SIGTERM or postmaster death.
 */
void
LambdaDetectWorkerMain(Datum main_arg)
{
	TimestampTz next_scan = 0;
	TimestampTz next_maintenance = 0;
	TimestampTz next_schedule_load = 0;
	char	   *scanned_dir = NULL;
	bool		rules_were_on;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "lambda_detect worker",
									   ALLOCSET_DEFAULT_SIZES);
	scan_cxt = AllocSetContextCreate(worker_cxt, "lambda_detect scan",
									 ALLOCSET_DEFAULT_SIZES);

	connect_with_backoff();
	SharedStateWorkerStarted();
	pgstat_report_appname("lambda_detect worker");

	/* everything the worker runs is schema-qualified; resolve nothing via public */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);

	if (connected_role[0] == '\0')
		ereport(LOG,
				(errmsg("lambda_detect worker started in database \"%s\"", connected_db)));
	else
		ereport(LOG,
				(errmsg("lambda_detect worker started in database \"%s\" as role \"%s\"",
						connected_db, connected_role)));

	for (;;)
	{
		bool		more = false;
		bool		candidates = false;
		bool		ok;
		TimestampTz now;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(worker_cxt);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			rules_were_on = ld_run_rules;
			ProcessConfigFile(PGC_SIGHUP);
			/* rules switched back on: every rule is due now, to catch up */
			if (ld_run_rules && !rules_were_on)
				nschedules = 0;
			if (strcmp(ld_database, connected_db) != 0 ||
				strcmp(ld_worker_role, connected_role) != 0)
			{
				if (ld_worker_role[0] == '\0')
					ereport(LOG,
							(errmsg("lambda_detect worker restarting to connect to database \"%s\"",
									ld_database)));
				else
					ereport(LOG,
							(errmsg("lambda_detect worker restarting to connect to database \"%s\" as role \"%s\"",
									ld_database, ld_worker_role)));
				proc_exit(1);
			}
			next_scan = 0;
			next_schedule_load = 0;
			next_maintenance = 0;
		}

		if (!extension_present)
		{
			now = GetCurrentTimestamp();
			if (unit_ready(&startup_backoff, now))
			{
				run_unit("lambda_detect: starting", startup_unit, NULL, &startup_backoff, &ok);
				extension_present = ok;
				privileges_checked = ok;
			}
			if (!extension_present)
			{
				wait_latch(startup_backoff.failures > 0 ?
						   Min(ms_until_ready(&startup_backoff, GetCurrentTimestamp()), BACKOFF_MAX_MS) :
						   Max(ld_naptime_ms, 5000));
				continue;
			}
			SharedStateSetState("running");
		}
		else if (!privileges_checked)
		{
			/* a unit lacked a privilege: nothing runs until the role has all */
			now = GetCurrentTimestamp();
			if (unit_ready(&privileges_backoff, now))
				run_unit("lambda_detect: checking privileges", privileges_unit, NULL,
						 &privileges_backoff, &privileges_checked);
			if (!extension_present)
				continue;
			if (!privileges_checked)
			{
				wait_latch(Min(ms_until_ready(&privileges_backoff, GetCurrentTimestamp()),
							   BACKOFF_MAX_MS));
				continue;
			}
			SharedStateSetState("running");
		}
		if (privileges_checked && privilege_error_logged != NULL)
		{
			pfree(privilege_error_logged);
			privilege_error_logged = NULL;
		}

		/* 1. one batch of the inbox */
		now = GetCurrentTimestamp();
		if (unit_ready(&ingest_backoff, now))
		{
			IngestCounts counts;

			memset(&counts, 0, sizeof(counts));
			SharedStateSetState("ingesting");
			more = run_unit("lambda_detect: draining inbox", ingest_unit, &counts,
							&ingest_backoff, &ok);
			if (!ok)
				inbox_after_id = 0;
			if (ok && counts.inbox_rows > 0)
				SharedStateRecordIngest(counts.events, false);
			candidates = ok && counts.candidates > 0;
			/* a backlog: drain it with helpers too (src/ingest_helpers.c) */
			if (ok && more && ld_ingest_helpers > 0)
				StartIngestHelpers(false, connected_db);
		}
		if (!extension_present)
			continue;

		/* 2. the directory, when due or asked for (request_scan()) */
		now = GetCurrentTimestamp();
		if (ld_inbox_dir[0] != '\0' && unit_ready(&scan_backoff, now) &&
			(now >= next_scan || SharedStateScanWanted(false) ||
			 scanned_dir == NULL || strcmp(scanned_dir, ld_inbox_dir) != 0))
		{
			IngestCounts counts;

			(void) SharedStateScanWanted(true);
			memset(&counts, 0, sizeof(counts));
			SharedStateSetState("scanning");
			run_unit("lambda_detect: scanning inbox_dir", scan_unit, &counts, &scan_backoff, &ok);
			if (ok)
				SharedStateRecordIngest(counts.events, true);
			/* a scan that failed midway committed its earlier chunks */
			candidates |= counts.candidates > 0;
			if (scanned_dir)
				pfree(scanned_dir);
			scanned_dir = MemoryContextStrdup(worker_cxt, ld_inbox_dir);
			next_scan = GetCurrentTimestamp() + (TimestampTz) ld_scan_interval_ms * 1000;
		}

		/* 3. the rules that are due, and all of them after new candidates */
		candidates |= SharedStateTakeCandidates();
		now = GetCurrentTimestamp();
		if (ld_run_rules &&
			(candidates || now >= next_schedule_load || ms_until_next_rule() == 0))
		{
			SharedStateSetState("running rules");
			run_due_rules(candidates, &next_schedule_load);
		}

		/* 4. storage upkeep, when due: one step, and the next soon while there are more */
		now = GetCurrentTimestamp();
		if (ld_maintenance_interval_ms > 0 && unit_ready(&maintenance_backoff, now) &&
			now >= next_maintenance)
		{
			bool		backlog;

			SharedStateSetState("maintaining");
			backlog = run_unit("lambda_detect: maintenance", maintenance_unit, NULL,
							   &maintenance_backoff, &ok);
			next_maintenance = backlog ? 0 :
				GetCurrentTimestamp() + (TimestampTz) ld_maintenance_interval_ms * 1000;
			more |= backlog;
		}

		/* 5. sleep until something is due, unless work is waiting */
		SharedStateSetState("idle");
		now = GetCurrentTimestamp();
		if (more && unit_ready(&ingest_backoff, now))
			continue;
		timeout = ld_naptime_ms;
		if (ld_run_rules)
			timeout = Min(timeout, ms_until_next_rule());
		if (ld_inbox_dir[0] != '\0')
			timeout = Min(timeout,
						  scan_backoff.failures > 0 ? ms_until_ready(&scan_backoff, now) :
						  (long) Max((next_scan - now) / 1000, 0));
		if (ingest_backoff.failures > 0)
			timeout = Min(timeout, ms_until_ready(&ingest_backoff, now));
		if (ld_maintenance_interval_ms > 0)
			timeout = Min(timeout,
						  maintenance_backoff.failures > 0 ? ms_until_ready(&maintenance_backoff, now) :
						  (long) Max((next_maintenance - now) / 1000, 0));
		if (timeout > 0)
			wait_latch(timeout);
	}
}

/*
 * LambdaDetectIngestHelperMain is an ingest helper's entry point (see
 * src/ingest_helpers.c): it connects where the worker is connected (the
 * database and role in bgw_extra) and works beside it, unit by unit: a pass
 * over inbox_dir whenever the worker asked for one since its last pass, and
 * inbox batches.  It exits once a batch leaves nothing waiting and no pass is
 * asked of it, when a unit fails, when its slot is no longer wanted or the
 * worker has left its database, and on SIGTERM.  It runs no rule, does no
 * maintenance and keeps no heartbeat state of its own: its batches count in
 * the worker's, and candidates it stores are handed to the worker, which
 * runs the rules.  Nothing it could log about a missing or other-version
 * extension is new (the worker says it), so it stays silent about those.
 */
void
LambdaDetectIngestHelperMain(Datum main_arg)
{
	int			slot = DatumGetInt32(main_arg) & INGEST_HELPER_SLOT_MASK;
	bool		for_scan = (DatumGetInt32(main_arg) & INGEST_HELPER_FOR_SCAN) != 0;
	IngestHelperTarget target;
	uint64		scans_served;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	is_helper = true;
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "lambda_detect ingest helper",
									   ALLOCSET_DEFAULT_SIZES);
	scan_cxt = AllocSetContextCreate(worker_cxt, "lambda_detect scan",
									 ALLOCSET_DEFAULT_SIZES);
	memcpy(&target, MyBgworkerEntry->bgw_extra, sizeof(target));

	/*
	 * Published before connecting, so that DROP DATABASE can stop it
	 * meanwhile; a slot still held by a helper of an earlier worker process
	 * means this one is not wanted.
	 */
	if (!SharedStateHelperStarted(slot))
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(target.database_oid, target.role_oid, 0);
	SharedStateHelperConnected();
	strlcpy(connected_db, target.database, NAMEDATALEN);
	connected_role = MemoryContextStrdup(TopMemoryContext, ld_worker_role);
	pgstat_report_appname("lambda_detect ingest helper");
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);

	/* started by a scan's backlog: serve the request that started it */
	scans_served = SharedStateScanRequests() - (for_scan ? 1 : 0);
	for (;;)
	{
		IngestCounts counts;
		bool		ok;
		bool		more;
		bool		scanned = false;
		uint64		scans_requested;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(worker_cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (slot >= ld_ingest_helpers ||
			strcmp(ld_worker_role, connected_role) != 0 ||
			!SharedStateWorkerDatabaseIs(connected_db))
			break;
		/* it never waits on a latch, so it looks for the postmaster itself */
		if (!PostmasterIsAlive())
			proc_exit(1);

		/* a pass over inbox_dir, when the worker asked for one since the last */
		scans_requested = SharedStateScanRequests();
		if (ld_inbox_dir[0] != '\0' && scans_requested != scans_served)
		{
			scans_served = scans_requested;
			memset(&counts, 0, sizeof(counts));
			run_unit("lambda_detect: scanning inbox_dir", scan_unit, &counts, &scan_backoff, &ok);
			if (ok)
				SharedStateRecordIngest(counts.events, true);
			if (counts.candidates > 0)
				SharedStateNoteCandidates();
			if (!ok)
				break;
			scanned = true;
		}

		/* one inbox batch */
		memset(&counts, 0, sizeof(counts));
		more = run_unit("lambda_detect: draining inbox", ingest_unit, &counts,
						&ingest_backoff, &ok);
		if (!ok)
			inbox_after_id = 0;
		if (ok && counts.inbox_rows > 0)
			SharedStateRecordIngest(counts.events, false);
		if (ok && counts.candidates > 0)
			SharedStateNoteCandidates();
		if (!ok)
			break;

		/*
		 * Done, unless a pass was asked for meanwhile: the worker saw this
		 * helper alive and started none for it.
		 */
		if (!more && !scanned &&
			(ld_inbox_dir[0] == '\0' || SharedStateScanRequests() == scans_served))
			break;
	}
	proc_exit(0);
}
