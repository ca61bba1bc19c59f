/*-------------------------------------------------------------------------
 *
 * guarded.c
 *	  Running a unit of work in a subtransaction and keeping its error.
 *
 * Ingestion must never let one bad payload or file sink a batch, and a
 * failed rule run must be recorded rather than lost: both run the risky part
 * here, get the error back as data, and decide what to do with it.
 *
 * src/guarded.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "lambda_detect.h"

/*
 * RunGuarded calls fn(arg) inside an internal subtransaction.  On success
 * the subtransaction is released and NULL returned; on error it is rolled
 * back and a copy of the error, allocated in the caller's memory context,
 * is returned.  The pattern is PL/pgSQL's exception block
 * (exec_stmt_block): the memory context and resource owner current at entry
 * are restored on both paths.
 */
ErrorData *
RunGuarded(GuardedFunction fn, void *arg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	/* run the work in the caller's memory context, not the subxact's */
	MemoryContextSwitchTo(oldcontext);

	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();

	return edata;
}

/*
 * IsTransientError tells errors that say nothing about the input (a cancel,
 * a shutdown, a full disk, a deadlock, out of memory or connections, a
 * missing privilege or a table dropped under us) from
 * errors the input caused.  Input errors are dead-lettered; transient ones
 * are re-raised so that the work is retried and no good data is set aside.
 */
bool
IsTransientError(ErrorData *edata)
{
	switch (ERRCODE_TO_CATEGORY(edata->sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:	/* 08 */
		case ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION:	/* 42: privileges, a dropped table */
		case ERRCODE_TRANSACTION_ROLLBACK:	/* 40 */
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53 */
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:	/* 55 */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57 */
		case ERRCODE_SYSTEM_ERROR:	/* 58 */
			return true;
		default:
			return false;
	}
}
