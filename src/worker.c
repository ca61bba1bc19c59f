/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The lambda_detect background worker: drains the inbox, scans the
 *	  inbox directory, and runs the rules that are due.
 *
 * One static worker, registered when the library is preloaded, connects to
 * lambda_detect.database.  Its loop, in the manner of worker_spi:
 *
 *	  drain one inbox batch -> scan inbox_dir if due -> run due rules
 *	  (and every enabled rule right after a batch stored candidates, so an
 *	  attack is alerted within seconds) -> wait on the latch.
 *
 * Each unit of work is its own transaction.  A unit that fails is rolled
 * back, logged, counted in the heartbeat and retried with exponential
 * backoff: the worker does not crash-loop on a bad state.  It starts only
 * once recovery has finished, so never on a standby; SIGHUP reloads the
 * settings (a new lambda_detect.database restarts it); SIGTERM ends it at
 * the next CHECK_FOR_INTERRUPTS.
 *
 * src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
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

static int	unit_failures = 0;
static bool extension_present = false;
static bool extension_missing_logged = false;
static char connected_db[NAMEDATALEN];

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

/* The file scan's commit point between two chunks of files. */
static void
scan_boundary(void)
{
	end_unit();
	begin_unit("lambda_detect: scanning inbox_dir");
}

/*
 * run_unit runs fn in a transaction of its own.  An error is logged,
 * recorded in the heartbeat and rolled back (the PostgresMain recipe:
 * report, abort, flush), and counts towards the backoff.  Returns what fn
 * returned (whether more work is waiting), or false after an error or when
 * the extension is not installed.
 */
static bool
run_unit(const char *activity, UnitFunction fn, void *arg)
{
	volatile bool more = false;
	volatile bool missing = false;

	PG_TRY();
	{
		begin_unit(activity);
		if (!OidIsValid(get_extension_oid("lambda_detect", true)))
			missing = true;
		else
			more = fn(arg);
		end_unit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();

		SharedStateRecordError(edata->message);
		FreeErrorData(edata);
		unit_failures++;
		return false;
	}
	PG_END_TRY();

	if (missing)
	{
		if (!extension_missing_logged)
			ereport(LOG,
					(errmsg("lambda_detect worker: extension \"lambda_detect\" is not installed in database \"%s\"",
							connected_db),
					 errhint("Run CREATE EXTENSION lambda_detect in that database, or set lambda_detect.database.")));
		extension_missing_logged = true;
		extension_present = false;
		SharedStateSetState("waiting for extension");
		return false;
	}
	extension_missing_logged = false;
	unit_failures = 0;
	return more;
}

/* --- the units --- */

/* Runs once each time the extension is found (again): crash clean-up. */
static bool
startup_unit(void *arg)
{
	CloseOutInterruptedRuleRuns();
	nschedules = 0;
	return false;
}

static bool
ingest_unit(void *arg)
{
	IngestCounts *counts = (IngestCounts *) arg;
	bool		more = IngestInboxBatch("worker", ld_batch_size, counts);

	if (counts->inbox_rows > 0)
		SharedStateRecordIngest(counts->events, false);
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
	if (!ScanInboxDirectory("worker", counts, scan_cxt, scan_boundary))
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
	SharedStateRecordIngest(counts->events, true);
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
					  true, MAX_SCHEDULED_RULES);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read rules: %s", SPI_result_code_string(ret));

	for (int i = 0; i < nschedules; i++)
		schedules[i].seen = false;
	for (uint64 r = 0; r < SPI_processed; r++)
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
		if (s == NULL && nschedules < MAX_SCHEDULED_RULES)
		{
			/* a rule not seen before runs at once, to catch up */
			s = &schedules[nschedules++];
			memset(s, 0, sizeof(*s));
			strlcpy(s->rule, rule, sizeof(s->rule));
			s->next_due = now;
		}
		if (s == NULL)
			continue;
		if (s->interval_ms != 0 && s->interval_ms != interval_ms && s->failures == 0 &&
			!s->catch_up)
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
		a->error = MemoryContextStrdup(worker_cxt,
									   edata->message ? edata->message : "unknown error");
	return false;
}

/*
 * run_rule_now runs one rule in two units: the first commits the run's
 * "running" row, the second does the work, so that a crash in between
 * leaves a row to close out.  Then it sets when the rule is next due.
 */
static void
run_rule_now(RuleSchedule *s, const char *trigger)
{
	RuleUnitArg a;
	TimestampTz now;

	memset(&a, 0, sizeof(a));
	a.schedule = s;
	a.trigger = trigger;

	run_unit("lambda_detect: starting rule run", rule_start_unit, &a);
	if (a.started)
		run_unit("lambda_detect: running rule", rule_execute_unit, &a);
	SharedStateRecordRuleRun();

	now = GetCurrentTimestamp();
	if (!a.started || a.error != NULL || unit_failures > 0)
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
 * were just stored) every rule not backing off after failures.
 */
static void
run_due_rules(bool force)
{
	TimestampTz now;

	run_unit("lambda_detect: reading rules", load_schedule_unit, NULL);
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

/* Milliseconds until the earliest rule is due (or a catch-up is pending). */
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
 * connect_with_backoff connects to lambda_detect.database.  A missing
 * database ends the process (FATAL), so the count of failed attempts is
 * kept in shared memory and each restart waits longer before trying again:
 * a clear log line and a backoff, not a crash loop.
 */
static void
connect_with_backoff(void)
{
	int			failures = SharedStateConnectFailures(false, false);

	if (failures > 0)
	{
		long		delay = backoff_ms(failures, CONNECT_BACKOFF_MAX_MS) -
			WORKER_RESTART_SECONDS * 1000L;

		ereport(LOG,
				(errmsg("lambda_detect worker: connecting to database \"%s\" failed %d times; retrying in %ld ms",
						ld_database, failures, Max(delay, 0)),
				 errhint("Create the database, or set lambda_detect.database to one that exists.")));
		if (delay > 0)
			wait_latch(delay);
	}
	SharedStateConnectFailures(true, false);
	BackgroundWorkerInitializeConnection(ld_database, NULL, 0);
	SharedStateConnectFailures(false, true);
	strlcpy(connected_db, ld_database, NAMEDATALEN);
}

/*
 * LambdaDetectWorkerMain is the worker's entry point: it connects, then
 * loops over the units until SIGTERM or postmaster death.
 */
void
LambdaDetectWorkerMain(Datum main_arg)
{
	TimestampTz next_scan = 0;
	TimestampTz next_rules_check = 0;
	char	   *scanned_dir = NULL;

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

	ereport(LOG,
			(errmsg("lambda_detect worker started in database \"%s\"", connected_db)));

	for (;;)
	{
		bool		more = false;
		bool		candidates = false;
		TimestampTz now;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(worker_cxt);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (strcmp(ld_database, connected_db) != 0)
			{
				ereport(LOG,
						(errmsg("lambda_detect worker restarting to connect to database \"%s\"",
								ld_database)));
				proc_exit(1);
			}
			next_scan = 0;
			next_rules_check = 0;
		}

		if (!extension_present)
		{
			run_unit("lambda_detect: starting", startup_unit, NULL);
			extension_present = !extension_missing_logged && unit_failures == 0;
			if (!extension_present)
			{
				wait_latch(unit_failures > 0 ?
						   backoff_ms(unit_failures, BACKOFF_MAX_MS) :
						   Max(ld_naptime_ms, 5000));
				continue;
			}
			SharedStateSetState("running");
		}

		/* 1. one batch of the inbox */
		{
			IngestCounts counts;

			memset(&counts, 0, sizeof(counts));
			SharedStateSetState("ingesting");
			more = run_unit("lambda_detect: draining inbox", ingest_unit, &counts);
			candidates = counts.candidates > 0;
		}
		if (!extension_present)
			continue;

		/* 2. the directory, when due */
		now = GetCurrentTimestamp();
		if (ld_inbox_dir[0] != '\0' &&
			(now >= next_scan || scanned_dir == NULL || strcmp(scanned_dir, ld_inbox_dir) != 0))
		{
			IngestCounts counts;

			memset(&counts, 0, sizeof(counts));
			SharedStateSetState("scanning");
			run_unit("lambda_detect: scanning inbox_dir", scan_unit, &counts);
			candidates |= counts.candidates > 0;
			if (scanned_dir)
				pfree(scanned_dir);
			scanned_dir = MemoryContextStrdup(worker_cxt, ld_inbox_dir);
			next_scan = GetCurrentTimestamp() + (TimestampTz) ld_scan_interval_ms * 1000;
		}

		/* 3. the rules that are due, and all of them after new candidates */
		now = GetCurrentTimestamp();
		if (ld_run_rules && (candidates || now >= next_rules_check))
		{
			SharedStateSetState("running rules");
			run_due_rules(candidates);
			next_rules_check = GetCurrentTimestamp() + (TimestampTz) ld_naptime_ms * 1000;
		}

		SharedStateSetState("idle");
		if (unit_failures > 0)
			timeout = backoff_ms(unit_failures, BACKOFF_MAX_MS);
		else if (more || (ld_run_rules && ms_until_next_rule() == 0))
			continue;
		else
		{
			timeout = ld_naptime_ms;
			if (ld_run_rules)
				timeout = Min(timeout, ms_until_next_rule());
			if (ld_inbox_dir[0] != '\0')
				timeout = Min(timeout, (long) Max((next_scan - GetCurrentTimestamp()) / 1000, 0));
		}
		wait_latch(timeout);
	}
}
