/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state between the background worker and ordinary backends:
 *	  the worker's latch (so an inbox insert can wake it at commit) and its
 *	  heartbeat (so SQL can see what it is doing).
 *
 * The state exists only when the library is in shared_preload_libraries;
 * without it, waking is a no-op and worker_status() says so.
 *
 * src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "lambda_detect.h"

#define LD_STATE_LEN 48		/* "waiting for ALTER EXTENSION UPDATE" and a margin */
#define LD_ERROR_LEN 256

typedef struct LambdaDetectShared
{
	slock_t		mutex;
	pid_t		worker_pid;
	Latch	   *worker_latch;
	char		database[NAMEDATALEN];
	char		state[LD_STATE_LEN];
	TimestampTz started_at;
	TimestampTz last_activity_at;
	TimestampTz last_ingest_at;
	TimestampTz last_scan_at;
	TimestampTz last_rule_run_at;
	TimestampTz last_error_at;
	int64		batches;
	int64		events;
	int64		errors;
	char		last_error[LD_ERROR_LEN];
	int			connect_failures;
	/* ingest helpers (src/ingest_helpers.c): their pids, 0 for a free slot */
	pid_t		helper_pids[LD_MAX_INGEST_HELPERS];
	/* a helper stored rule candidates the worker has not yet acted on */
	bool		candidates_pending;
	/* bumped when the worker's scan finds a backlog of files to share */
	uint64		scan_requests;
	/* request_scan() asked the worker to scan inbox_dir before its time */
	bool		scan_wanted;
	/* when a helper last exited before it had connected (0: never) */
	TimestampTz helper_failed_at;
} LambdaDetectShared;

static LambdaDetectShared *ld_shared = NULL;

/* set by the inbox trigger and request_scan(), acted on when the transaction commits */
static bool wake_at_commit = false;
static bool scan_at_commit = false;
static bool xact_callback_registered = false;

PG_FUNCTION_INFO_V1(ld_wake_worker_at_commit);
PG_FUNCTION_INFO_V1(ld_request_scan);
PG_FUNCTION_INFO_V1(ld_worker_status);

/*
 * RequestSharedState asks for our shared memory; called from the
 * shmem_request_hook (PG15), so only when the library is preloaded.
 */
void
RequestSharedState(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(LambdaDetectShared)));
}

/*
 * AttachSharedState creates or attaches to the shared state; called from
 * the shmem_startup_hook.
 */
void
AttachSharedState(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ld_shared = ShmemInitStruct("lambda_detect", sizeof(LambdaDetectShared),
								&found);
	if (!found)
	{
		memset(ld_shared, 0, sizeof(LambdaDetectShared));
		SpinLockInit(&ld_shared->mutex);
		strlcpy(ld_shared->state, "not started", LD_STATE_LEN);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Clears the worker's slot when it exits, however it exits. */
static void
worker_detach(int code, Datum arg)
{
	SpinLockAcquire(&ld_shared->mutex);
	ld_shared->worker_pid = 0;
	ld_shared->worker_latch = NULL;
	strlcpy(ld_shared->state, code == 0 ? "stopped" : "exited", LD_STATE_LEN);
	SpinLockRelease(&ld_shared->mutex);
}

/*
 * SharedStateWorkerStarted publishes the worker's pid and latch.  Called by
 * the worker once connected, so that wake-ups reach it from then on.
 */
void
SharedStateWorkerStarted(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	ld_shared->worker_pid = MyProcPid;
	ld_shared->worker_latch = MyLatch;
	strlcpy(ld_shared->database, ld_database, NAMEDATALEN);
	strlcpy(ld_shared->state, "starting", LD_STATE_LEN);
	ld_shared->started_at = now;
	ld_shared->last_activity_at = now;
	SpinLockRelease(&ld_shared->mutex);
	on_shmem_exit(worker_detach, (Datum) 0);
}

void
SharedStateSetState(const char *state)
{
	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	strlcpy(ld_shared->state, state, LD_STATE_LEN);
	ld_shared->last_activity_at = GetCurrentTimestamp();
	SpinLockRelease(&ld_shared->mutex);
}

/* Counts one committed ingestion batch (of the inbox, or of files). */
void
SharedStateRecordIngest(int64 events, bool files)
{
	TimestampTz now = GetCurrentTimestamp();

	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	ld_shared->batches++;
	ld_shared->events += events;
	if (files)
		ld_shared->last_scan_at = now;
	else
		ld_shared->last_ingest_at = now;
	ld_shared->last_activity_at = now;
	SpinLockRelease(&ld_shared->mutex);
}

void
SharedStateRecordRuleRun(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	ld_shared->last_rule_run_at = now;
	ld_shared->last_activity_at = now;
	SpinLockRelease(&ld_shared->mutex);
}

void
SharedStateRecordError(const char *message)
{
	TimestampTz now = GetCurrentTimestamp();
	char		text[LD_ERROR_LEN];
	int			len;

	if (ld_shared == NULL)
		return;
	/* cut on a character boundary, and before taking the lock */
	message = message ? message : "";
	len = pg_mbcliplen(message, strlen(message), LD_ERROR_LEN - 1);
	memcpy(text, message, len);
	text[len] = '\0';

	SpinLockAcquire(&ld_shared->mutex);
	ld_shared->errors++;
	memcpy(ld_shared->last_error, text, len + 1);
	ld_shared->last_error_at = now;
	ld_shared->last_activity_at = now;
	SpinLockRelease(&ld_shared->mutex);
}

/*
 * SharedStateConnectFailures counts the worker's failed attempts to connect
 * to its database.  A failed connection ends the process (FATAL), so the
 * count lives here to let the restarted worker back off.
 */
int
SharedStateConnectFailures(bool increment, bool reset)
{
	int			failures;

	if (ld_shared == NULL)
		return 0;
	SpinLockAcquire(&ld_shared->mutex);
	if (reset)
		ld_shared->connect_failures = 0;
	if (increment)
		ld_shared->connect_failures++;
	failures = ld_shared->connect_failures;
	SpinLockRelease(&ld_shared->mutex);
	return failures;
}

/* set once this process, an ingest helper, has connected to its database */
static bool helper_connected = false;

/*
 * Frees a helper's slot when it exits, however it exits, and notes a helper
 * that exited before connecting (its role or database refused it), so that
 * the worker stops starting helpers for a while (SharedStateHelpersFailing).
 */
static void
helper_detach(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);

	SpinLockAcquire(&ld_shared->mutex);
	if (ld_shared->helper_pids[slot] == MyProcPid)
		ld_shared->helper_pids[slot] = 0;
	if (!helper_connected)
		ld_shared->helper_failed_at = GetCurrentTimestamp();
	SpinLockRelease(&ld_shared->mutex);
}

/*
 * SharedStateHelperStarted publishes an ingest helper's pid in its slot, so
 * that StopWorkerInDatabase can stop it too.  Returns false, publishing
 * nothing, when a live helper holds the slot already (one started by a
 * worker that has since restarted): this one must not run.
 */
bool
SharedStateHelperStarted(int slot)
{
	pid_t		holder;

	Assert(slot >= 0 && slot < LD_MAX_INGEST_HELPERS);
	if (ld_shared == NULL)
		return false;
	if (SharedStateHelperSlotBusy(slot))
		return false;
	SpinLockAcquire(&ld_shared->mutex);
	holder = ld_shared->helper_pids[slot];
	if (holder == 0)
		ld_shared->helper_pids[slot] = MyProcPid;
	SpinLockRelease(&ld_shared->mutex);
	if (holder != 0)
		return false;
	on_shmem_exit(helper_detach, Int32GetDatum(slot));
	return true;
}

/* Called by a helper once connected: its exit is no longer a failure to connect. */
void
SharedStateHelperConnected(void)
{
	helper_connected = true;
}

/*
 * True when a live process holds the helper slot.  A slot left set by a
 * process that died without its exit callbacks (a crash restarts the whole
 * server, so this is only belt and braces) counts as free.
 */
bool
SharedStateHelperSlotBusy(int slot)
{
	pid_t		pid;

	if (ld_shared == NULL)
		return false;
	SpinLockAcquire(&ld_shared->mutex);
	pid = ld_shared->helper_pids[slot];
	SpinLockRelease(&ld_shared->mutex);
	if (pid == 0)
		return false;
	if (BackendPidGetProc(pid) != NULL)
		return true;
	/* between its fork and its connection, a helper has no PGPROC entry yet */
	return kill(pid, 0) == 0;
}

/*
 * True when a helper exited before connecting within the last minute: the
 * worker then starts none, rather than one per batch that each fails.
 */
bool
SharedStateHelpersFailing(void)
{
	TimestampTz failed_at;

	if (ld_shared == NULL)
		return false;
	SpinLockAcquire(&ld_shared->mutex);
	failed_at = ld_shared->helper_failed_at;
	SpinLockRelease(&ld_shared->mutex);
	return failed_at != 0 &&
		!TimestampDifferenceExceeds(failed_at, GetCurrentTimestamp(), 60 * 1000);
}

/* True when the worker is connected to the database named dbname. */
bool
SharedStateWorkerDatabaseIs(const char *dbname)
{
	bool		same;

	if (ld_shared == NULL)
		return false;
	SpinLockAcquire(&ld_shared->mutex);
	same = ld_shared->worker_pid != 0 && strcmp(ld_shared->database, dbname) == 0;
	SpinLockRelease(&ld_shared->mutex);
	return same;
}

/*
 * SharedStateNoteCandidates tells the worker that a helper stored rule
 * candidates, and wakes it: the worker runs the rules right after a batch
 * with candidates, whichever process stored it.
 */
void
SharedStateNoteCandidates(void)
{
	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	ld_shared->candidates_pending = true;
	SpinLockRelease(&ld_shared->mutex);
	WakeWorker();
}

/* Returns, and clears, whether a helper stored candidates since the last call. */
bool
SharedStateTakeCandidates(void)
{
	bool		pending;

	if (ld_shared == NULL)
		return false;
	SpinLockAcquire(&ld_shared->mutex);
	pending = ld_shared->candidates_pending;
	ld_shared->candidates_pending = false;
	SpinLockRelease(&ld_shared->mutex);
	return pending;
}

/*
 * SharedStateRequestScan asks the ingest helpers to scan inbox_dir beside
 * the worker (its scan found more files than one transaction takes);
 * SharedStateScanRequests returns the number of such requests so far, so
 * that each helper can tell a request it has not yet served.
 */
void
SharedStateRequestScan(void)
{
	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	ld_shared->scan_requests++;
	SpinLockRelease(&ld_shared->mutex);
}

uint64
SharedStateScanRequests(void)
{
	uint64		requests;

	if (ld_shared == NULL)
		return 0;
	SpinLockAcquire(&ld_shared->mutex);
	requests = ld_shared->scan_requests;
	SpinLockRelease(&ld_shared->mutex);
	return requests;
}

/*
 * SharedStateScanWanted returns whether request_scan() asked the worker to
 * scan inbox_dir since its last scan; with clear, the request is taken (the
 * worker calls it so just before scanning, so that a request made during
 * the scan, for files its listing may have missed, asks for another).
 */
bool
SharedStateScanWanted(bool clear)
{
	bool		wanted;

	if (ld_shared == NULL)
		return false;
	SpinLockAcquire(&ld_shared->mutex);
	wanted = ld_shared->scan_wanted;
	if (clear)
		ld_shared->scan_wanted = false;
	SpinLockRelease(&ld_shared->mutex);
	return wanted;
}

/*
 * WakeWorker sets the worker's latch, if there is a worker.  The latch is
 * read under the spinlock but set after releasing it (a system call has no
 * place under a spinlock); a latch of a worker that exited meanwhile is a
 * PGPROC latch in shared memory, so setting it is harmless.
 */
void
WakeWorker(void)
{
	Latch	   *latch;

	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	latch = ld_shared->worker_latch;
	SpinLockRelease(&ld_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * StopWorkerInDatabase asks the worker and its ingest helpers to exit if
 * they are connected to dbname, and waits (up to five seconds) until they
 * have, so that a statement that needs the database to itself can proceed.
 * Helpers are stopped too: the worker would otherwise start no new ones,
 * but those running would keep the database busy until the inbox is empty.
 */
void
StopWorkerInDatabase(const char *dbname)
{
	pid_t		pids[1 + LD_MAX_INGEST_HELPERS];
	int			npids = 0;
	bool		ours;

	if (ld_shared == NULL)
		return;
	SpinLockAcquire(&ld_shared->mutex);
	ours = strcmp(ld_shared->database, dbname) == 0;
	if (ours && ld_shared->worker_pid != 0)
		pids[npids++] = ld_shared->worker_pid;
	for (int i = 0; ours && i < LD_MAX_INGEST_HELPERS; i++)
		if (ld_shared->helper_pids[i] != 0)
			pids[npids++] = ld_shared->helper_pids[i];
	SpinLockRelease(&ld_shared->mutex);
	if (npids == 0)
		return;

	ereport(LOG,
			(errmsg("lambda_detect: stopping the worker so that database \"%s\" can be changed",
					dbname)));
	/* each pid must still be a process of ours: not a reused pid */
	for (int i = 0; i < npids; i++)
		if (BackendPidGetProc(pids[i]) == NULL || kill(pids[i], SIGTERM) != 0)
			pids[i] = 0;
	for (int attempt = 0; attempt < 500; attempt++)
	{
		bool		gone = true;

		SpinLockAcquire(&ld_shared->mutex);
		for (int i = 0; i < npids; i++)
		{
			if (pids[i] == 0)
				continue;
			if (ld_shared->worker_pid == pids[i])
				gone = false;
			for (int j = 0; j < LD_MAX_INGEST_HELPERS; j++)
				if (ld_shared->helper_pids[j] == pids[i])
					gone = false;
		}
		SpinLockRelease(&ld_shared->mutex);
		if (gone)
			return;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/*
 * Wakes the worker once the transaction that filled the inbox commits.
 * Waking it earlier would let it look before the rows are visible and then
 * sleep until its next timeout.
 */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (scan_at_commit && ld_shared != NULL)
			{
				SpinLockAcquire(&ld_shared->mutex);
				ld_shared->scan_wanted = true;
				SpinLockRelease(&ld_shared->mutex);
			}
			if (wake_at_commit || scan_at_commit)
				WakeWorker();
			wake_at_commit = false;
			scan_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			scan_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * ld_wake_worker_at_commit is the inbox's statement trigger: it arranges
 * for the worker to be woken when the current transaction commits.
 */
Datum
ld_wake_worker_at_commit(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wake_worker_at_commit() must be called as a trigger")));

	if (!xact_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit = true;

	return PointerGetDatum(NULL);
}

/*
 * ld_request_scan is request_scan(): when the current transaction commits,
 * the worker scans lambda_detect.inbox_dir without waiting for
 * scan_interval (a client that has just copied log files there, such as an
 * aws s3 sync job, need not wait up to ten seconds for them to be read).
 * Returns whether a worker is running in this database to do it.
 */
Datum
ld_request_scan(PG_FUNCTION_ARGS)
{
	char	   *dbname = get_database_name(MyDatabaseId);

	if (ld_shared == NULL)
		PG_RETURN_BOOL(false);
	if (!xact_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		xact_callback_registered = true;
	}
	scan_at_commit = true;
	PG_RETURN_BOOL(dbname != NULL && SharedStateWorkerDatabaseIs(dbname));
}

/* Returns a timestamptz datum, or marks it NULL when never set. */
static Datum
timestamp_or_null(TimestampTz ts, bool *isnull)
{
	*isnull = (ts == 0);
	return TimestampTzGetDatum(ts);
}

/*
 * ld_worker_status returns the worker's heartbeat, read under the spinlock
 * into a local copy first so that no palloc happens while holding it.
 */
Datum
ld_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[13];
	bool		nulls[13];
	LambdaDetectShared copy;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(nulls, 0, sizeof(nulls));
	if (ld_shared == NULL)
	{
		memset(&copy, 0, sizeof(copy));
		strlcpy(copy.state, "not preloaded", LD_STATE_LEN);
	}
	else
	{
		SpinLockAcquire(&ld_shared->mutex);
		memcpy(&copy, ld_shared, sizeof(copy));
		SpinLockRelease(&ld_shared->mutex);
	}

	values[0] = Int32GetDatum((int32) copy.worker_pid);
	nulls[0] = (copy.worker_pid == 0);
	values[1] = CStringGetTextDatum(copy.database);
	nulls[1] = (copy.database[0] == '\0');
	values[2] = timestamp_or_null(copy.started_at, &nulls[2]);
	values[3] = CStringGetTextDatum(copy.state);
	values[4] = timestamp_or_null(copy.last_activity_at, &nulls[4]);
	values[5] = timestamp_or_null(copy.last_ingest_at, &nulls[5]);
	values[6] = timestamp_or_null(copy.last_scan_at, &nulls[6]);
	values[7] = timestamp_or_null(copy.last_rule_run_at, &nulls[7]);
	values[8] = Int64GetDatum(copy.batches);
	values[9] = Int64GetDatum(copy.events);
	values[10] = Int64GetDatum(copy.errors);
	values[11] = CStringGetTextDatum(copy.last_error);
	nulls[11] = (copy.last_error[0] == '\0');
	values[12] = timestamp_or_null(copy.last_error_at, &nulls[12]);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
