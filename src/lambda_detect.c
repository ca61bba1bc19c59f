/*-------------------------------------------------------------------------
 *
 * lambda_detect.c
 *	  Module entry point: settings, shared memory hooks and the background
 *	  worker's registration.
 *
 * The worker and the shared state exist only when the library is listed in
 * shared_preload_libraries.  Loaded any other way (CREATE EXTENSION in a
 * server that does not preload it), the SQL functions still work in the
 * caller's backend, the server log says that nothing runs in the
 * background, and worker_status() reports "not preloaded".
 *
 * src/lambda_detect.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"

#include "lambda_detect.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
ld_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestSharedState();
}

static void
ld_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	AttachSharedState();
}

/*
 * _PG_init defines the settings in every process that loads the library,
 * and, in the postmaster only, asks for shared memory and registers the
 * worker.
 */
void
_PG_init(void)
{
	/* pg_upgrade's binary-upgrade server must not start our worker */
	if (IsBinaryUpgrade)
		return;

	DefineSettings();

	if (!process_shared_preload_libraries_in_progress)
	{
		ereport(LOG,
				(errmsg("lambda_detect is not in shared_preload_libraries"),
				 errdetail("Ingestion and rules run only when called from SQL "
						   "(ingest_now(), run_rule()); nothing runs in the background."),
				 errhint("Add lambda_detect to shared_preload_libraries in postgresql.conf and restart the server.")));
		return;
	}

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ld_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ld_shmem_startup;

	InstallDropDatabaseGuard();
	RegisterIngestWorker();
}
