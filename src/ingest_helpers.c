/*-------------------------------------------------------------------------
 *
 * ingest_helpers.c
 *	  Starting the ingest helpers: background workers that drain an inbox
 *	  backlog beside the worker.
 *
 * A batch is one transaction in one process, so a single worker drains a
 * large backlog on one core.  Batches claim their rows with FOR UPDATE SKIP
 * LOCKED, so several processes can drain the inbox at once without claiming
 * a row twice, and ON CONFLICT makes two copies of an event in concurrent
 * batches meet in one row.  When a batch of the worker leaves more rows
 * waiting, the worker calls StartIngestHelpers, which starts up to
 * lambda_detect.ingest_helpers helpers (LambdaDetectIngestHelperMain, in
 * worker.c, since they run the worker's units).  A helper exits when a
 * batch finds the inbox drained, so helpers cost nothing while ingestion
 * keeps up.
 *
 * Files are shared the same way: when the worker's scan of inbox_dir finds
 * more new files than one transaction takes, helpers are asked to scan too, and each
 * scan reads only the files no other scan has claimed (files.c).
 *
 * Rules stay with the worker: a helper that stores candidates tells it
 * through shared memory (SharedStateNoteCandidates).  The rule watermark
 * already accounts for every open transaction in the database, helpers'
 * included (oldest_open_transaction_start in rule_engine.c).
 *
 * src/ingest_helpers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "lambda_detect.h"

/* the worker's handles of the helpers it started, by slot */
static BackgroundWorkerHandle *helper_handles[LD_MAX_INGEST_HELPERS];
static bool start_failure_logged = false;
static bool exit_callback_registered = false;

/*
 * When the worker exits (SIGTERM from the DROP DATABASE guard, a restart to
 * another database or role), the helpers it started go too, including one
 * registered but not yet running, which the guard could not see.
 */
static void
stop_helpers_at_exit(int code, Datum arg)
{
	for (int slot = 0; slot < LD_MAX_INGEST_HELPERS; slot++)
		if (helper_handles[slot] != NULL)
			TerminateBackgroundWorker(helper_handles[slot]);
}

/* True when the helper in slot is starting or running. */
static bool
helper_alive(int slot)
{
	pid_t		pid;
	BgwHandleStatus status;

	if (helper_handles[slot] == NULL)
		return false;
	status = GetBackgroundWorkerPid(helper_handles[slot], &pid);
	if (status == BGWH_STARTED || status == BGWH_NOT_YET_STARTED)
		return true;
	pfree(helper_handles[slot]);
	helper_handles[slot] = NULL;
	return false;
}

/*
 * StartIngestHelpers starts a helper in every slot below
 * lambda_detect.ingest_helpers that has none running.  Called by the worker
 * after a batch that left rows waiting, and with for_scan when its scan of
 * inbox_dir finds more new files than one transaction takes: a helper
 * started for a scan scans too (running helpers learn of the scan from
 * SharedStateRequestScan).  Helpers connect to the worker's database as its
 * role (passed in bgw_extra), not to whatever the settings name by then.
 * When the server has no background worker slot free, the worker works
 * alone; that is logged once.
 */
void
StartIngestHelpers(bool for_scan, const char *database)
{
	IngestHelperTarget target;

	/* a helper could not connect lately: the worker works alone for a while */
	if (SharedStateHelpersFailing())
		return;
	if (!exit_callback_registered)
	{
		before_shmem_exit(stop_helpers_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}

	/* helpers connect where the worker is connected, whatever the settings say now */
	memset(&target, 0, sizeof(target));
	target.database_oid = MyDatabaseId;
	target.role_oid = GetSessionUserId();
	strlcpy(target.database, database, NAMEDATALEN);

	for (int slot = 0; slot < ld_ingest_helpers; slot++)
	{
		BackgroundWorker helper;
		MemoryContext oldcxt;
		bool		started;

		/* running, or held by a helper of an earlier worker process */
		if (helper_alive(slot) || SharedStateHelperSlotBusy(slot))
			continue;

		memset(&helper, 0, sizeof(helper));
		helper.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		helper.bgw_start_time = BgWorkerStart_RecoveryFinished;
		helper.bgw_restart_time = BGW_NEVER_RESTART;
		strlcpy(helper.bgw_library_name, "lambda_detect", BGW_MAXLEN);
		strlcpy(helper.bgw_function_name, "LambdaDetectIngestHelperMain", BGW_MAXLEN);
		snprintf(helper.bgw_name, BGW_MAXLEN, "lambda_detect ingest helper %d", slot + 1);
		strlcpy(helper.bgw_type, "lambda_detect ingest helper", BGW_MAXLEN);
		helper.bgw_main_arg = Int32GetDatum(slot | (for_scan ? INGEST_HELPER_FOR_SCAN : 0));
		helper.bgw_notify_pid = MyProcPid;
		StaticAssertStmt(sizeof(IngestHelperTarget) <= BGW_EXTRALEN,
						 "IngestHelperTarget must fit bgw_extra");
		memcpy(helper.bgw_extra, &target, sizeof(target));

		/* the handle outlives the call */
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		started = RegisterDynamicBackgroundWorker(&helper, &helper_handles[slot]);
		MemoryContextSwitchTo(oldcxt);
		if (!started)
		{
			helper_handles[slot] = NULL;
			if (!start_failure_logged)
				ereport(LOG,
						(errmsg("lambda_detect worker: could not start an ingest helper; working alone"),
						 errhint("Raise max_worker_processes, or lower lambda_detect.ingest_helpers.")));
			start_failure_logged = true;
			return;
		}
		start_failure_logged = false;
	}
}
