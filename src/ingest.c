/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  Storing normalized events: inbox batches, file documents, dead
 *	  letters and the per-batch ingest_runs row.
 *
 * One SQL statement does a whole batch: it claims inbox rows (or takes the
 * documents of a file), runs normalize() over them, inserts the events with
 * ON CONFLICT on their key DO NOTHING, dead-letters the rejects and counts
 * everything.  Because claiming (DELETE ... RETURNING) and storing happen in
 * one statement of one transaction, a crash at any point loses and
 * duplicates nothing.  Batches run side by side (the worker, its ingest
 * helpers, ingest_now()); each inserts its events in key order, because
 * ON CONFLICT waits for a concurrent inserter of the same key, and two
 * batches sharing two events in opposite orders would deadlock.
 *
 * If the statement fails for a reason that is not transient, the batch is
 * redone one inbox row (or one document) at a time, each in its own
 * subtransaction, and the one that still fails is moved whole to
 * ingest_errors: a single poisonous payload never blocks the queue.
 *
 * All functions here expect an open transaction and SPI connection.
 *
 * src/ingest.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "lambda_detect.h"

PG_FUNCTION_INFO_V1(ld_ingest_now);

/*
 * The part of the batch statement after the "claimed" CTE, which must yield
 * (inbox_id, received_at, source, doc_location, payload).
 *
 * The key of events is (event_id, event_time, recipient_account_id): copies
 * of an event carry all three.  A record without recipientAccountId (NULL
 * from normalize()) is stored under '': the account is NOT NULL, being the
 * distribution column of the Citus plan (docs/scaling.md), and an event is
 * never dropped for lacking one.
 *
 * The last column is last_inbox_id: the highest inbox id claimed, which the
 * inbox statements report for the next batch's start, and the file
 * statement, claiming no inbox row, gives as NULL.
 */
#define INGEST_STATEMENT_TAIL(last_inbox_id) \
	"n AS MATERIALIZED (" \
	"  SELECT c.inbox_id, c.received_at, c.source, c.doc_location, r.*" \
	"    FROM claimed c CROSS JOIN LATERAL lambda_detect.normalize(c.payload) r)," \
	" stored AS (" \
	"  INSERT INTO lambda_detect.events AS e" \
	"    (event_id, event_time, event_source, event_name, event_type, aws_region," \
	"     recipient_account_id, actor_account_id, actor_arn, actor_type, access_key_id," \
	"     user_name, source_ip, source_address, user_agent, error_code, error_message," \
	"     outcome, read_only, request_id, request_parameters, response_elements, record)" \
	"  SELECT n.event_id, n.event_time, n.event_source, n.event_name, n.event_type, n.aws_region," \
	"     COALESCE(n.recipient_account_id, ''), n.actor_account_id, n.actor_arn, n.actor_type," \
	"     n.access_key_id," \
	"     n.user_name, n.source_ip, n.source_address, n.user_agent, n.error_code, n.error_message," \
	"     n.outcome, n.read_only, n.request_id, n.request_parameters, n.response_elements, n.record" \
	"    FROM n WHERE n.status = 'event'" \
	"   ORDER BY n.event_id, n.event_time, COALESCE(n.recipient_account_id, '')" \
	"  ON CONFLICT (event_id, event_time, recipient_account_id) DO NOTHING" \
	"  RETURNING e.event_source, e.event_name)," \
	" rejected AS (" \
	"  INSERT INTO lambda_detect.ingest_errors" \
	"    (sqlstate, reason, message, source, location, inbox_id, inbox_received_at, payload)" \
	"  SELECT n.sqlstate, n.reason, n.message, n.source," \
	"         NULLIF(concat_ws(' ', NULLIF(n.doc_location, ''), n.location), ''), n.inbox_id," \
	"         n.received_at, n.record" \
	"    FROM n WHERE n.status = 'rejected'" \
	"  RETURNING 1)" \
	" SELECT (SELECT count(*) FROM claimed)," \
	"        (SELECT count(*) FROM n WHERE n.status = 'event')," \
	"        (SELECT count(*) FROM stored)," \
	"        (SELECT count(*) FROM stored e WHERE " LD_CANDIDATE_PREDICATE("e") ")," \
	"        (SELECT count(*) FROM n WHERE n.status = 'skipped')," \
	"        (SELECT count(*) FROM rejected)," \
	"        (SELECT array_agg(s.reason ORDER BY s.reason) FROM" \
	"           (SELECT n.reason FROM n WHERE n.status = 'skipped') s)," \
	"        " last_inbox_id

/*
 * claims the oldest $1 unlocked inbox rows after id $3, up to id $2: the
 * ids are collected first (an InitPlan), then deleted by id, so that the
 * DELETE cannot be planned as a join reading the whole inbox
 */
static const char *inbox_batch_sql =
"WITH claimed AS ("
"  DELETE FROM lambda_detect.inbox WHERE id = ANY (ARRAY("
"    SELECT id FROM lambda_detect.inbox WHERE id > $3 AND id <= $2"
"     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))"
"  RETURNING id AS inbox_id, received_at, source, NULL::text AS doc_location, payload),"
INGEST_STATEMENT_TAIL("(SELECT max(c.inbox_id) FROM claimed c)");

/* claims the one inbox row $1 (already locked by the caller) */
static const char *inbox_row_sql =
"WITH claimed AS ("
"  DELETE FROM lambda_detect.inbox WHERE id = $1"
"  RETURNING id AS inbox_id, received_at, source, NULL::text AS doc_location, payload),"
INGEST_STATEMENT_TAIL("(SELECT max(c.inbox_id) FROM claimed c)");

/* documents $1 of source $2 at locations $3 */
static const char *documents_sql =
"WITH claimed AS ("
"  SELECT NULL::bigint AS inbox_id, NULL::timestamptz AS received_at, $2::text AS source,"
"         d.doc_location, d.payload"
"    FROM unnest($1::jsonb[], $3::text[]) AS d(payload, doc_location)),"
INGEST_STATEMENT_TAIL("NULL::bigint");

static SPIPlanPtr inbox_batch_plan = NULL;
static SPIPlanPtr inbox_row_plan = NULL;
static SPIPlanPtr documents_plan = NULL;

/*
 * Statements are prepared the first time they are needed and kept for the
 * life of the backend (PrepareKeptPlan).  Saved plans are revalidated by
 * the plan cache, so a DROP and CREATE EXTENSION in between is harmless.
 *
 * Statements that claim inbox rows are planned afresh at each execution
 * (CURSOR_OPT_CUSTOM_PLAN): a generic plan made while the inbox was nearly
 * empty would keep scanning it sequentially after a large COPY filled it,
 * making each batch cost the whole inbox.
 */
static SPIPlanPtr
prepare_once(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	return PrepareKeptPlan(cache, sql, nargs, argtypes, 0);
}

void
AddIngestCounts(IngestCounts *sum, const IngestCounts *part)
{
	sum->inbox_rows += part->inbox_rows;
	sum->files += part->files;
	sum->records += part->records;
	sum->events += part->events;
	sum->duplicates += part->duplicates;
	sum->candidates += part->candidates;
	sum->skipped += part->skipped;
	sum->errors += part->errors;
}

/* Reads an int8 column of the first SPI result row. */
static int64
result_int64(int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								  col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* Appends the skip reasons of a batch (a text[] datum) to counts. */
void
AddSkipReasons(IngestCounts *counts, Datum reasons)
{
	if (counts->skip_reasons == (Datum) 0)
		counts->skip_reasons = reasons;
	else
		counts->skip_reasons = DirectFunctionCall2(array_cat,
												   counts->skip_reasons,
												   reasons);
}

/*
 * Runs a prepared batch statement and adds its result row to *result.  The
 * first column counts what "claimed" yielded: inbox rows, or documents of a
 * file (which the caller counts itself).  For inbox rows, *last_inbox_id is
 * raised to the highest id claimed.
 */
static void
execute_batch(SPIPlanPtr plan, Datum *values, int64 *last_inbox_id,
			  IngestCounts *result)
{
	bool		from_inbox = last_inbox_id != NULL;
	int			ret;
	int64		records,
				stored;
	bool		isnull;
	Datum		reasons;

	ret = SPI_execute_plan(plan, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ingest statement failed: %s", SPI_result_code_string(ret));

	records = result_int64(2);
	stored = result_int64(3);
	if (from_inbox)
		result->inbox_rows += result_int64(1);
	result->records += records;
	result->events += stored;
	result->duplicates += records - stored;
	result->candidates += result_int64(4);
	result->skipped += result_int64(5);
	result->errors += result_int64(6);

	reasons = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isnull);
	if (!isnull)
	{
		AddSkipReasons(result, SPI_datumTransfer(reasons, false, -1));
	}
	if (from_inbox)
		*last_inbox_id = Max(*last_inbox_id, result_int64(8));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * RecordIngestError writes one dead letter.  payload is kept when the
 * input was JSON; raw_text (cut at lambda_detect.max_error_text) when it
 * was not.
 */
void
RecordIngestError(const char *sqlstate, const char *reason, const char *message,
				  const char *source, const char *location, Jsonb *payload,
				  const char *raw_text, int raw_len)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		values[7];
	char		nulls[7];
	int			ret;

	prepare_once(&plan,
				 "INSERT INTO lambda_detect.ingest_errors"
				 " (sqlstate, reason, message, source, location, payload, raw_text)"
				 " VALUES ($1, $2, $3, $4, $5, $6, $7)",
				 7, argtypes);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(sqlstate);
	values[1] = CStringGetTextDatum(reason);
	values[2] = CStringGetTextDatum(message);
	if (source)
		values[3] = CStringGetTextDatum(source);
	else
		nulls[3] = 'n';
	if (location)
		values[4] = CStringGetTextDatum(location);
	else
		nulls[4] = 'n';
	if (payload)
		values[5] = JsonbPGetDatum(payload);
	else
		nulls[5] = 'n';
	if (raw_text)
	{
		int			keep = Min(raw_len, ld_max_error_text);

		/* never cut a multibyte character in half */
		keep = pg_mbcliplen(raw_text, raw_len, keep);
		values[6] = PointerGetDatum(cstring_to_text_with_len(raw_text, keep));
	}
	else
		nulls[6] = 'n';

	ret = SPI_execute_plan(plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record ingest error: %s", SPI_result_code_string(ret));
}

/*
 * RecordIngestRun writes the ingest_runs row of a batch that found work.
 */
void
RecordIngestRun(const char *origin, const char *kind, TimestampTz started_at,
				  IngestCounts *result)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[12] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID, INT4OID,
		INT4OID, INT4OID, INT4OID, INT4OID, INT4OID, INT4OID, TEXTARRAYOID};
	Datum		values[12];
	char		nulls[12];
	IngestCounts *c = result;
	int			ret;

	if (c->inbox_rows == 0 && c->files == 0)
		return;

	prepare_once(&plan,
				 "INSERT INTO lambda_detect.ingest_runs"
				 " (started_at, finished_at, origin, kind, inbox_rows, files, records, events,"
				 "  duplicates, candidates, skipped, errors, skipped_reasons)"
				 " SELECT $1, clock_timestamp(), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
				 "   (SELECT jsonb_object_agg(r, k) FROM"
				 "      (SELECT r, count(*) AS k FROM unnest($12) AS r GROUP BY r) s)",
				 12, argtypes);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = TimestampTzGetDatum(started_at);
	values[1] = CStringGetTextDatum(origin);
	values[2] = CStringGetTextDatum(kind);
	values[3] = Int32GetDatum((int32) c->inbox_rows);
	values[4] = Int32GetDatum((int32) c->files);
	values[5] = Int32GetDatum((int32) c->records);
	values[6] = Int32GetDatum((int32) c->events);
	values[7] = Int32GetDatum((int32) c->duplicates);
	values[8] = Int32GetDatum((int32) c->candidates);
	values[9] = Int32GetDatum((int32) c->skipped);
	values[10] = Int32GetDatum((int32) c->errors);
	values[11] = result->skip_reasons;
	if (result->skip_reasons == (Datum) 0)
		nulls[11] = 'n';

	ret = SPI_execute_plan(plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record ingest run: %s", SPI_result_code_string(ret));
}

/* Formats an error for a dead letter: message, and detail when there is one. */
static char *
error_text(ErrorData *edata)
{
	if (edata->detail)
		return psprintf("%s: %s", edata->message, edata->detail);
	return pstrdup(edata->message ? edata->message : "unknown error");
}

/* --- inbox --- */

/*
 * begin_index_plans makes the statements planned until end_index_plans
 * read the inbox through its index only: neither a sequential scan nor a
 * bitmap scan, which read every row in the id range and sort them.  A
 * batch takes the next batch_size rows in id order, and each of its
 * statements is planned afresh (CURSOR_OPT_CUSTOM_PLAN); without usable
 * statistics (a new or freshly filled inbox) the planner can estimate the
 * range at a few rows and read all of it, so that each batch would cost the
 * whole backlog and a drain its square.  The settings are scoped as a
 * function's SET clause is: a failure within restores them too.
 */
static int
begin_index_plans(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

static void
end_index_plans(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

typedef struct InboxWork
{
	SPIPlanPtr	plan;
	Datum		args[3];
	int64		last_id;		/* raised to the highest inbox id claimed */
	IngestCounts *result;
} InboxWork;

static void
inbox_work(void *arg)
{
	InboxWork  *work = (InboxWork *) arg;
	int			nestlevel = begin_index_plans();

	execute_batch(work->plan, work->args, &work->last_id, work->result);
	end_index_plans(nestlevel);
}

/*
 * An out-of-memory error says something about the input when one payload
 * causes it: a batch that runs out is redone row by row, and a single row
 * that still does is dead-lettered rather than retried for ever.
 */
static bool
is_out_of_memory(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY ||
		edata->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED;
}

/*
 * dead_letter_inbox_row moves inbox row id whole to ingest_errors, with the
 * error that storing it raised, and returns the dead letter's id.
 */
static int64
dead_letter_inbox_row(int64 id, ErrorData *edata)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	int			ret;
	int64		dead_letter;

	prepare_once(&plan,
				 "WITH gone AS (DELETE FROM lambda_detect.inbox WHERE id = $1 RETURNING *)"
				 " INSERT INTO lambda_detect.ingest_errors"
				 "  (sqlstate, reason, message, source, inbox_id, inbox_received_at, payload)"
				 " SELECT $2, 'store_failed', $3, gone.source, gone.id, gone.received_at, gone.payload"
				 "   FROM gone"
				 " RETURNING id",
				 3, argtypes);
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	values[2] = CStringGetTextDatum(error_text(edata));
	ret = SPI_execute_plan(plan, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not dead-letter inbox row: %s", SPI_result_code_string(ret));
	dead_letter = result_int64(1);
	SPI_freetuptable(SPI_tuptable);
	return dead_letter;
}

/*
 * ingest_inbox_rows_one_by_one is the fallback after a failed batch: it
 * locks the same oldest rows and stores each in its own subtransaction.
 * The rows that still fail are dead-lettered, unless every row failed with
 * the same SQLSTATE: then the fault is the system's (a missing partition, a
 * constraint an administrator added), not the input's, and it is raised so
 * that the rows stay in the inbox until it is mended.  Returns the highest
 * id it locked (after_id when none).
 */
static int64
ingest_inbox_rows_one_by_one(int batch_size, int64 after_id, int64 max_id,
							 IngestCounts *result)
{
	static SPIPlanPtr lock_plan = NULL;
	Oid			argtypes[3] = {INT4OID, INT8OID, INT8OID};
	Oid			rowtypes[1] = {INT8OID};
	Datum		args[3] = {Int32GetDatum(batch_size), Int64GetDatum(max_id),
						   Int64GetDatum(after_id)};
	int64		last_id = after_id;
	int			nestlevel;
	int64	   *ids;
	ErrorData **errors;
	uint64		nids;
	uint64		nfailed = 0;
	bool		same_code = true;
	int			ret;

	PrepareKeptPlan(&lock_plan,
						 "SELECT id FROM lambda_detect.inbox WHERE id > $3 AND id <= $2"
						 " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
						 3, argtypes, CURSOR_OPT_CUSTOM_PLAN);
	nestlevel = begin_index_plans();
	ret = SPI_execute_plan(lock_plan, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not lock inbox rows: %s", SPI_result_code_string(ret));
	end_index_plans(nestlevel);

	nids = SPI_processed;
	ids = palloc(sizeof(int64) * Max(nids, 1));
	errors = palloc0(sizeof(ErrorData *) * Max(nids, 1));
	for (uint64 i = 0; i < nids; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
											 SPI_tuptable->tupdesc, 1, &isnull));
		last_id = Max(last_id, ids[i]);
	}
	SPI_freetuptable(SPI_tuptable);

	prepare_once(&inbox_row_plan, inbox_row_sql, 1, rowtypes);
	for (uint64 i = 0; i < nids; i++)
	{
		InboxWork	work = {inbox_row_plan, {Int64GetDatum(ids[i])}, 0, result};
		ErrorData  *edata;

		CHECK_FOR_INTERRUPTS();
		edata = RunGuarded(inbox_work, &work);
		if (edata == NULL)
			continue;
		if (IsTransientError(edata) && !is_out_of_memory(edata))
			ReThrowError(edata);
		if (nfailed > 0 && edata->sqlerrcode != errors[nfailed - 1]->sqlerrcode)
			same_code = false;
		errors[nfailed] = edata;
		ids[nfailed] = ids[i];
		nfailed++;
	}

	if (nfailed == nids && nids > 1 && same_code)
		ReThrowError(errors[0]);

	/*
	 * The caller of ingest_now() sees the whole error; the server log, whose
	 * readers need not be allowed to read the data the error may quote, the
	 * dead letter that keeps it (ErrorLogText).
	 */
	for (uint64 i = 0; i < nfailed; i++)
	{
		int64		dead_letter = dead_letter_inbox_row(ids[i], errors[i]);

		ereport(WARNING,
				(errmsg("lambda_detect: inbox row %lld could not be stored and was moved to ingest_errors",
						(long long) ids[i]),
				 errdetail("%s", error_text(errors[i])),
				 errdetail_log("Dead letter %lld: %s.", (long long) dead_letter,
							   ErrorLogText(errors[i]))));
		result->inbox_rows++;
		result->errors++;
		FreeErrorData(errors[i]);
	}
	return last_id;
}

/*
 * IngestInboxBatch ingests the oldest batch_size inbox rows with ids after
 * *after_id and up to max_id that no other transaction has locked, writes
 * the batch's ingest_runs row, and adds its counts to *counts.  *after_id
 * is raised to the highest id the batch claimed, so that the next batch of
 * a drain can start there (see ingest_unit in worker.c for why, and for
 * when a drain starts again from the first id).  Returns true when the
 * batch was full, i.e. more rows may be waiting.
 */
bool
IngestInboxBatch(const char *origin, int batch_size, int64 *after_id, int64 max_id,
				 IngestCounts *counts)
{
	Oid			argtypes[3] = {INT4OID, INT8OID, INT8OID};
	IngestCounts result;
	InboxWork	work;
	ErrorData  *edata;
	TimestampTz started_at = GetCurrentTimestamp();

	memset(&result, 0, sizeof(result));
	PrepareKeptPlan(&inbox_batch_plan, inbox_batch_sql, 3, argtypes,
						 CURSOR_OPT_CUSTOM_PLAN);
	work.plan = inbox_batch_plan;
	work.args[0] = Int32GetDatum(batch_size);
	work.args[1] = Int64GetDatum(max_id);
	work.args[2] = Int64GetDatum(*after_id);
	work.last_id = *after_id;
	work.result = &result;

	edata = RunGuarded(inbox_work, &work);
	if (edata != NULL)
	{
		if (IsTransientError(edata) && !is_out_of_memory(edata))
			ReThrowError(edata);
		ereport(LOG,
				(errmsg("lambda_detect: inbox batch failed, storing its rows one by one"),
				 errdetail("%s", error_text(edata)),
				 errdetail_log("%s.", ErrorLogText(edata))));
		FreeErrorData(edata);
		memset(&result, 0, sizeof(result));
		work.last_id = ingest_inbox_rows_one_by_one(batch_size, *after_id, max_id,
													&result);
	}
	*after_id = work.last_id;

	RecordIngestRun(origin, "inbox", started_at, &result);
	AddIngestCounts(counts, &result);
	return result.inbox_rows >= batch_size;
}

/* --- documents read from files --- */

typedef struct DocumentsWork
{
	Datum		values[3];
	IngestCounts *result;
} DocumentsWork;

static void
documents_work(void *arg)
{
	DocumentsWork *work = (DocumentsWork *) arg;

	execute_batch(documents_plan, work->values, NULL, work->result);
}

static Datum
make_array(Datum *elems, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, n, elemtype, typlen, typbyval, typalign));
}

/*
 * IngestDocuments stores parsed JSON documents that came from one file
 * (source is its path; locations[i] says where document i was, e.g.
 * "line 12", or is NULL).  A document that cannot be stored even alone is
 * dead-lettered whole.  The counts go to *result; the caller writes the
 * ingest_runs row.
 */
static void
ingest_documents(Datum *documents, Datum *locations, int ndocuments,
				 const char *source, IngestCounts *result)
{
	Oid			argtypes[3] = {JSONBARRAYOID, TEXTOID, TEXTARRAYOID};
	DocumentsWork work;
	ErrorData  *edata;

	prepare_once(&documents_plan, documents_sql, 3, argtypes);
	work.values[0] = make_array(documents, ndocuments, JSONBOID);
	work.values[1] = CStringGetTextDatum(source);
	work.values[2] = make_array(locations, ndocuments, TEXTOID);
	work.result = result;

	edata = RunGuarded(documents_work, &work);
	if (edata == NULL)
		return;
	if (IsTransientError(edata) && !is_out_of_memory(edata))
		ReThrowError(edata);
	if (ndocuments == 1)
	{
		char	   *location = TextDatumGetCString(locations[0]);

		RecordIngestError(unpack_sql_state(edata->sqlerrcode), "store_failed",
						  error_text(edata), source,
						  location[0] ? location : NULL,
						  DatumGetJsonbP(documents[0]), NULL, 0);
		result->errors++;
		FreeErrorData(edata);
		return;
	}
	FreeErrorData(edata);

	for (int i = 0; i < ndocuments; i++)
	{
		CHECK_FOR_INTERRUPTS();
		ingest_documents(&documents[i], &locations[i], 1, source, result);
	}
}

/*
 * IngestDocuments is the entry point for files.c: it stores the
 * documents in slices of lambda_detect.batch_size and writes no
 * ingest_runs row (the file scan writes one per transaction).
 */
void
IngestDocuments(Datum *documents, Datum *locations, int ndocuments,
				const char *source, IngestCounts *counts)
{
	for (int start = 0; start < ndocuments; start += ld_batch_size)
	{
		int			n = Min(ld_batch_size, ndocuments - start);

		ingest_documents(documents + start, locations + start, n, source, counts);
	}
}


/* The highest inbox id now, 0 when the inbox is empty. */
static int64
inbox_max_id(void)
{
	bool		isnull;
	Datum		d;
	int			ret = SPI_execute("SELECT max(id) FROM lambda_detect.inbox", true, 1);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the inbox: %s", SPI_result_code_string(ret));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_freetuptable(SPI_tuptable);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * ld_ingest_now is ingest_now(): one drain of the inbox and one scan of
 * lambda_detect.inbox_dir, in the caller's transaction, as the worker would
 * do them.
 */
Datum
ld_ingest_now(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	IngestCounts total;
	Datum		values[7];
	bool		nulls[7] = {false};
	int64		max_id;
	int64		after_id = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	CheckSchemaVersion();
	memset(&total, 0, sizeof(total));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * One drain: the rows there now, not those that keep arriving meanwhile.
	 * Each batch starts after the last row the one before claimed: the rows
	 * earlier batches deleted stay in the inbox's index until this
	 * transaction ends, and reading them again for every batch would make
	 * the drain's cost grow with the square of the backlog.
	 */
	max_id = inbox_max_id();
	while (IngestInboxBatch("ingest_now", ld_batch_size, &after_id, max_id, &total))
		CHECK_FOR_INTERRUPTS();

	if (ld_inbox_dir != NULL && ld_inbox_dir[0] != '\0' &&
		!ScanInboxDirectory("ingest_now", &total, CurrentMemoryContext, NULL, NULL, false))
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("lambda_detect.inbox_dir \"%s\" cannot be read: %m", ld_inbox_dir),
				 errhint("Create the directory, make it readable by the server, or correct lambda_detect.inbox_dir.")));

	SPI_finish();

	values[0] = Int32GetDatum((int32) total.inbox_rows);
	values[1] = Int32GetDatum((int32) total.files);
	values[2] = Int32GetDatum((int32) total.records);
	values[3] = Int32GetDatum((int32) total.events);
	values[4] = Int32GetDatum((int32) total.duplicates);
	values[5] = Int32GetDatum((int32) total.skipped);
	values[6] = Int32GetDatum((int32) total.errors);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
