/*-------------------------------------------------------------------------
 *
 * normalize.c
 *	  lambda_detect.normalize(jsonb): the one place that turns any accepted
 *	  CloudTrail shape into event rows.
 *
 * Accepted shapes (docs/design.md, section 2): a single record; a log file body
 * {"Records": [...]}; a bare array of records; an EventBridge event whose
 * "detail" is a record.  CloudTrail digest files and Insight records are
 * recognised and skipped with a reason.  Everything else is rejected with a
 * SQLSTATE-style code, a reason keyword and a message, as a row, never as an
 * error: one bad record must not sink the batch it arrived in.
 *
 * Field derivation follows Elastic's AWS integration, because the seed rule
 * must keep exact parity with Elastic's: outcome is "failure" when
 * errorCode or errorMessage is present and non-empty, else "success".
 *
 * src/normalize.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inet.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "lambda_detect.h"

PG_FUNCTION_INFO_V1(ld_normalize);

/*
 * identifiers and ARNs longer than this cannot be real, and would not fit
 * in a btree index entry (events is indexed on each of them); AWS's access
 * key ids are 16 to 128 characters long
 */
#define MAX_EVENT_ID_LEN	512
#define MAX_ARN_LEN			2048
#define MAX_ACCESS_KEY_ID_LEN	128
#define MAX_ACCOUNT_ID_LEN	128

/* records smaller than this (in bytes, as jsonb) are not worth compressing */
#define MIN_COMPRESSED_RECORD	256

/* output columns of normalize(), in order */
enum
{
	COL_ORDINAL,
	COL_STATUS,
	COL_SQLSTATE,
	COL_REASON,
	COL_MESSAGE,
	COL_LOCATION,
	COL_EVENT_ID,
	COL_EVENT_TIME,
	COL_EVENT_SOURCE,
	COL_EVENT_NAME,
	COL_EVENT_TYPE,
	COL_AWS_REGION,
	COL_RECIPIENT_ACCOUNT_ID,
	COL_ACTOR_ACCOUNT_ID,
	COL_ACTOR_ARN,
	COL_ACTOR_TYPE,
	COL_ACCESS_KEY_ID,
	COL_USER_NAME,
	COL_SOURCE_IP,
	COL_SOURCE_ADDRESS,
	COL_USER_AGENT,
	COL_ERROR_CODE,
	COL_ERROR_MESSAGE,
	COL_OUTCOME,
	COL_READ_ONLY,
	COL_REQUEST_ID,
	COL_REQUEST_PARAMETERS,
	COL_RESPONSE_ELEMENTS,
	COL_RECORD,
	NORMALIZE_NATTS
};

typedef struct NormalizeState
{
	Tuplestorestate *tupstore;
	TupleDesc	tupdesc;
	int			ordinal;		/* of the last row emitted */
} NormalizeState;

/* one output row under construction */
typedef struct OutRow
{
	Datum		values[NORMALIZE_NATTS];
	bool		nulls[NORMALIZE_NATTS];
} OutRow;

static void
row_init(OutRow *row)
{
	for (int i = 0; i < NORMALIZE_NATTS; i++)
	{
		row->values[i] = (Datum) 0;
		row->nulls[i] = true;
	}
}

static void
row_set_text(OutRow *row, int col, const char *str, int len)
{
	if (str == NULL)
		return;
	row->values[col] = PointerGetDatum(cstring_to_text_with_len(str, len));
	row->nulls[col] = false;
}

static void
row_set_cstring(OutRow *row, int col, const char *str)
{
	if (str != NULL)
		row_set_text(row, col, str, strlen(str));
}

static void
row_emit(NormalizeState *state, OutRow *row, const char *status,
		 const char *location)
{
	row->values[COL_ORDINAL] = Int32GetDatum(++state->ordinal);
	row->nulls[COL_ORDINAL] = false;
	row_set_cstring(row, COL_STATUS, status);
	row_set_cstring(row, COL_LOCATION, location);
	tuplestore_putvalues(state->tupstore, state->tupdesc, row->values, row->nulls);
}

/*
 * emit_rejected reports input that cannot become an event, keeping the
 * original JSON (when there is any) so that the dead letter loses nothing.
 */
static void
emit_rejected(NormalizeState *state, const char *location, const char *sqlstate,
			  const char *reason, Jsonb *original, const char *fmt,...)
	pg_attribute_printf(6, 7);

static void
emit_rejected(NormalizeState *state, const char *location, const char *sqlstate,
			  const char *reason, Jsonb *original, const char *fmt,...)
{
	OutRow		row;
	StringInfoData msg;

	initStringInfo(&msg);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&msg, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&msg, needed);
	}

	row_init(&row);
	row_set_cstring(&row, COL_SQLSTATE, sqlstate);
	row_set_cstring(&row, COL_REASON, reason);
	row_set_cstring(&row, COL_MESSAGE, msg.data);
	if (original != NULL)
	{
		row.values[COL_RECORD] = JsonbPGetDatum(original);
		row.nulls[COL_RECORD] = false;
	}
	row_emit(state, &row, "rejected", location);
}

/* emit_skipped reports input that is recognised but holds no event. */
static void
emit_skipped(NormalizeState *state, const char *location, const char *reason,
			 const char *message)
{
	OutRow		row;

	row_init(&row);
	row_set_cstring(&row, COL_REASON, reason);
	row_set_cstring(&row, COL_MESSAGE, message);
	row_emit(state, &row, "skipped", location);
}

/* Returns the JSON of a jsonb value (a container or a scalar). */
static Jsonb *
value_to_jsonb(JsonbValue *v)
{
	return JsonbValueToJsonb(v);
}

/*
 * ParseCloudTrailTime parses CloudTrail's eventTime, an ISO 8601 UTC time
 * such as 2024-08-01T13:47:16Z (fractional seconds and a numeric offset are
 * accepted too).  Returns false, rather than raising, on anything else,
 * including impossible dates such as February 30th.
 */
bool
ParseCloudTrailTime(const char *str, int len, TimestampTz *result)
{
	const char *p = str;
	const char *end = str + len;
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz = 0;
	Timestamp	ts;

#define DIGITS(n, target) \
	do { \
		int _v = 0; \
		for (int _i = 0; _i < (n); _i++) \
		{ \
			if (p >= end || *p < '0' || *p > '9') \
				return false; \
			_v = _v * 10 + (*p++ - '0'); \
		} \
		(target) = _v; \
	} while (0)
#define EXPECT(c) \
	do { \
		if (p >= end || *p != (c)) \
			return false; \
		p++; \
	} while (0)

	memset(&tm, 0, sizeof(tm));
	DIGITS(4, tm.tm_year);
	EXPECT('-');
	DIGITS(2, tm.tm_mon);
	EXPECT('-');
	DIGITS(2, tm.tm_mday);
	if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	DIGITS(2, tm.tm_hour);
	EXPECT(':');
	DIGITS(2, tm.tm_min);
	EXPECT(':');
	DIGITS(2, tm.tm_sec);

	if (p < end && *p == '.')
	{
		int			scale = 100000;

		p++;
		if (p >= end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
		{
			fsec += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}

	if (p < end && (*p == 'Z' || *p == 'z'))
		p++;
	else if (p < end && (*p == '+' || *p == '-'))
	{
		int			sign = (*p == '+') ? 1 : -1;
		int			hh,
					mm;

		p++;
		DIGITS(2, hh);
		if (p < end && *p == ':')
			p++;
		DIGITS(2, mm);
		if (hh > 23 || mm > 59)
			return false;
		/* tm2timestamp's tz is seconds west of UTC */
		tz = -sign * (hh * SECS_PER_HOUR + mm * SECS_PER_MINUTE);
	}
	else
		return false;
	if (p != end)
		return false;

#undef DIGITS
#undef EXPECT

	if (tm.tm_year < 1 || tm.tm_mon < 1 || tm.tm_mon > MONTHS_PER_YEAR ||
		tm.tm_mday < 1 ||
		tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		return false;

	if (tm2timestamp(&tm, fsec, &tz, &ts) != 0 || TIMESTAMP_NOT_FINITE(ts))
		return false;
	*result = ts;
	return true;
}

/*
 * Reads an optional top-level string field into the row.  JSON null counts
 * as absent.  Returns false when the field has another type.
 */
static bool
record_text(JsonbContainer *rec, const char *key, OutRow *row, int col)
{
	JsonbValue	v;

	if (JsonbObjectGet(rec, key, &v) == NULL || v.type == jbvNull)
		return true;
	if (v.type != jbvString)
		return false;
	row_set_text(row, col, v.val.string.val, v.val.string.len);
	return true;
}

/*
 * compress_record returns the record compressed with lz4 when that saves
 * space, else the record as it is.
 *
 * events.record is the widest column, and most CloudTrail records (1 to 2 kB
 * as jsonb) are below the row size at which the server starts compressing
 * (TOAST_TUPLE_THRESHOLD, about 2 kB for the whole row), so the server would
 * store them raw whatever the column's compression setting.  A compressed
 * value built here is stored as it is, and every reader decompresses it
 * transparently, as it would a value the server had compressed.  Without
 * lz4 in the server nothing is done: pglz gives up on most records.
 */
static Datum
compress_record(Jsonb *record)
{
#ifdef USE_LZ4
	if (VARSIZE(record) >= MIN_COMPRESSED_RECORD)
	{
		Datum		compressed = toast_compress_datum(PointerGetDatum(record),
													  TOAST_LZ4_COMPRESSION);

		if (DatumGetPointer(compressed) != NULL)
			return compressed;
	}
#endif
	return JsonbPGetDatum(record);
}

/* Reads a string member of a nested object (lenient: other types ignored). */
static void
nested_text(JsonbContainer *obj, const char *key, OutRow *row, int col)
{
	JsonbValue	v;

	if (obj != NULL && row->nulls[col] &&
		JsonbObjectGet(obj, key, &v) != NULL && v.type == jbvString)
		row_set_text(row, col, v.val.string.val, v.val.string.len);
}

/* Sets a jsonb column from an optional member; JSON null stays SQL NULL. */
static void
record_json(JsonbContainer *rec, const char *key, OutRow *row, int col)
{
	JsonbValue	v;

	if (JsonbObjectGet(rec, key, &v) == NULL || v.type == jbvNull)
		return;
	row->values[col] = JsonbPGetDatum(value_to_jsonb(&v));
	row->nulls[col] = false;
}

/* True when a text column of the row is set and not empty. */
static bool
text_is_nonempty(OutRow *row, int col)
{
	return !row->nulls[col] &&
		VARSIZE_ANY_EXHDR(DatumGetPointer(row->values[col])) > 0;
}

/*
 * normalize_record turns one CloudTrail record into an event row, a skip
 * (Insight records) or a rejection.  rec_value is the record as a jsonb
 * value; rec_jsonb, when the caller already has it, is the same as a datum.
 */
static void
normalize_record(NormalizeState *state, JsonbValue *rec_value, Jsonb *rec_jsonb,
				 const char *location)
{
	JsonbContainer *rec = rec_value->val.binary.data;
	JsonbContainer *identity = NULL;
	JsonbValue	v;
	OutRow		row;
	char	   *str;
	static const char *const required[] = {"eventID", "eventSource", "eventName"};
	static const int required_col[] = {COL_EVENT_ID, COL_EVENT_SOURCE, COL_EVENT_NAME};
	static const struct
	{
		const char *key;
		int			col;
	}			optional[] =
	{
		{"eventType", COL_EVENT_TYPE},
		{"awsRegion", COL_AWS_REGION},
		{"recipientAccountId", COL_RECIPIENT_ACCOUNT_ID},
		{"sourceIPAddress", COL_SOURCE_ADDRESS},
		{"userAgent", COL_USER_AGENT},
		{"errorCode", COL_ERROR_CODE},
		{"errorMessage", COL_ERROR_MESSAGE},
		{"requestID", COL_REQUEST_ID},
	};

	if (rec_jsonb == NULL)
		rec_jsonb = value_to_jsonb(rec_value);

	/* Insight records share log files with events but are not API calls */
	str = JsonbObjectGetString(rec, "eventType", NULL);
	if (str != NULL && strcmp(str, "AwsCloudTrailInsight") == 0)
	{
		emit_skipped(state, location, "insight_record",
					 "CloudTrail Insight record (not an API call)");
		return;
	}

	row_init(&row);

	for (int i = 0; i < lengthof(required); i++)
	{
		if (JsonbObjectGet(rec, required[i], &v) == NULL || v.type == jbvNull)
		{
			emit_rejected(state, location, "23502", "missing_field", rec_jsonb,
						  "record has no %s", required[i]);
			return;
		}
		if (v.type != jbvString)
		{
			emit_rejected(state, location, "42804", "wrong_type", rec_jsonb,
						  "%s is not a string", required[i]);
			return;
		}
		if (v.val.string.len == 0)
		{
			emit_rejected(state, location, "23502", "missing_field", rec_jsonb,
						  "%s is empty", required[i]);
			return;
		}
		row_set_text(&row, required_col[i], v.val.string.val, v.val.string.len);
		if (i == 0 && v.val.string.len > MAX_EVENT_ID_LEN)
		{
			emit_rejected(state, location, "22001", "field_too_long", rec_jsonb,
						  "eventID is %d bytes long (at most %d)",
						  v.val.string.len, MAX_EVENT_ID_LEN);
			return;
		}
	}

	/* eventTime: required, and must be a real time */
	if (JsonbObjectGet(rec, "eventTime", &v) == NULL || v.type == jbvNull)
	{
		emit_rejected(state, location, "23502", "missing_field", rec_jsonb,
					  "record has no eventTime");
		return;
	}
	if (v.type != jbvString)
	{
		emit_rejected(state, location, "42804", "wrong_type", rec_jsonb,
					  "eventTime is not a string");
		return;
	}
	{
		TimestampTz ts;

		if (!ParseCloudTrailTime(v.val.string.val, v.val.string.len, &ts))
		{
			emit_rejected(state, location, "22007", "bad_timestamp", rec_jsonb,
						  "eventTime \"%.*s\" is not an ISO 8601 time such as 2024-08-01T13:47:16Z",
						  Min(v.val.string.len, 64), v.val.string.val);
			return;
		}
		row.values[COL_EVENT_TIME] = TimestampTzGetDatum(ts);
		row.nulls[COL_EVENT_TIME] = false;
	}

	for (int i = 0; i < lengthof(optional); i++)
	{
		if (!record_text(rec, optional[i].key, &row, optional[i].col))
		{
			emit_rejected(state, location, "42804", "wrong_type", rec_jsonb,
						  "%s is not a string", optional[i].key);
			return;
		}
	}
	/* recipientAccountId is in the keys of events and alerts: it must fit an index */
	if (!row.nulls[COL_RECIPIENT_ACCOUNT_ID] &&
		VARSIZE_ANY_EXHDR(DatumGetPointer(row.values[COL_RECIPIENT_ACCOUNT_ID])) >
		MAX_ACCOUNT_ID_LEN)
	{
		emit_rejected(state, location, "22001", "field_too_long", rec_jsonb,
					  "recipientAccountId is longer than %d bytes", MAX_ACCOUNT_ID_LEN);
		return;
	}

	/* userIdentity: who made the call */
	if (JsonbObjectGet(rec, "userIdentity", &v) != NULL && v.type != jbvNull)
	{
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		{
			emit_rejected(state, location, "42804", "wrong_type", rec_jsonb,
						  "userIdentity is not an object");
			return;
		}
		identity = v.val.binary.data;
	}
	if (identity != NULL)
	{
		JsonbContainer *session = JsonbObjectGetObject(identity, "sessionContext");
		JsonbContainer *issuer = session ? JsonbObjectGetObject(session, "sessionIssuer") : NULL;

		nested_text(identity, "accountId", &row, COL_ACTOR_ACCOUNT_ID);
		nested_text(identity, "arn", &row, COL_ACTOR_ARN);
		nested_text(identity, "type", &row, COL_ACTOR_TYPE);
		nested_text(identity, "accessKeyId", &row, COL_ACCESS_KEY_ID);
		nested_text(identity, "userName", &row, COL_USER_NAME);
		nested_text(issuer, "userName", &row, COL_USER_NAME);
		/* AWS services acting on their own have no ARN, only invokedBy */
		nested_text(identity, "invokedBy", &row, COL_ACTOR_ARN);

		if (!row.nulls[COL_ACTOR_ARN] &&
			VARSIZE_ANY_EXHDR(DatumGetPointer(row.values[COL_ACTOR_ARN])) > MAX_ARN_LEN)
		{
			emit_rejected(state, location, "22001", "field_too_long", rec_jsonb,
						  "userIdentity.arn is longer than %d bytes", MAX_ARN_LEN);
			return;
		}
		if (!row.nulls[COL_ACCESS_KEY_ID] &&
			VARSIZE_ANY_EXHDR(DatumGetPointer(row.values[COL_ACCESS_KEY_ID])) > MAX_ACCESS_KEY_ID_LEN)
		{
			emit_rejected(state, location, "22001", "field_too_long", rec_jsonb,
						  "userIdentity.accessKeyId is longer than %d bytes",
						  MAX_ACCESS_KEY_ID_LEN);
			return;
		}
	}

	/* sourceIPAddress is an address, or a service name such as lambda.amazonaws.com */
	if (!row.nulls[COL_SOURCE_ADDRESS])
	{
		char	   *addr = text_to_cstring(DatumGetTextPP(row.values[COL_SOURCE_ADDRESS]));
		unsigned char buf[sizeof(struct in6_addr)];

		if (inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1)
		{
			row.values[COL_SOURCE_IP] = DirectFunctionCall1(inet_in, CStringGetDatum(addr));
			row.nulls[COL_SOURCE_IP] = false;
		}
	}

	/* Elastic: event.outcome is failure when errorCode or errorMessage is set */
	row_set_cstring(&row, COL_OUTCOME,
					(text_is_nonempty(&row, COL_ERROR_CODE) ||
					 text_is_nonempty(&row, COL_ERROR_MESSAGE)) ? "failure" : "success");

	if (JsonbObjectGet(rec, "readOnly", &v) != NULL)
	{
		if (v.type == jbvBool)
		{
			row.values[COL_READ_ONLY] = BoolGetDatum(v.val.boolean);
			row.nulls[COL_READ_ONLY] = false;
		}
		else if (v.type == jbvString &&
				 (v.val.string.len == 4 || v.val.string.len == 5))
		{
			bool		b;

			if (parse_bool_with_len(v.val.string.val, v.val.string.len, &b))
			{
				row.values[COL_READ_ONLY] = BoolGetDatum(b);
				row.nulls[COL_READ_ONLY] = false;
			}
		}
	}

	record_json(rec, "requestParameters", &row, COL_REQUEST_PARAMETERS);
	record_json(rec, "responseElements", &row, COL_RESPONSE_ELEMENTS);

	row.values[COL_RECORD] = compress_record(rec_jsonb);
	row.nulls[COL_RECORD] = false;

	row_emit(state, &row, "event", location);
	/* the tuplestore has its copy; a file of many records must not keep two */
	if (DatumGetPointer(row.values[COL_RECORD]) != (Pointer) rec_jsonb)
		pfree(DatumGetPointer(row.values[COL_RECORD]));
}

/* True when v is a JSON object. */
static bool
is_object(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/*
 * normalize_array handles the element list of {"Records": [...]} or of a
 * bare array.  A list longer than lambda_detect.max_records is rejected
 * whole (kept in the dead letter), not cut.
 */
static void
normalize_array(NormalizeState *state, JsonbContainer *array, const char *prefix,
				Jsonb *payload)
{
	uint32		n = JsonContainerSize(array);

	if (n == 0)
	{
		emit_skipped(state, prefix[0] ? prefix : NULL, "empty_log_file",
					 "no records");
		return;
	}
	if (n > (uint32) ld_max_records)
	{
		emit_rejected(state, prefix[0] ? prefix : NULL, "54000", "too_many_records",
					  payload,
					  "payload holds %u records, more than lambda_detect.max_records (%d)",
					  n, ld_max_records);
		return;
	}

	for (uint32 i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(array, i);
		char	   *location = psprintf("%s[%u]", prefix, i);

		if (is_object(elem))
			normalize_record(state, elem, NULL, location);
		else
			emit_rejected(state, location, "42804", "not_cloudtrail",
						  value_to_jsonb(elem),
						  "array element is not a JSON object");
		pfree(location);
		pfree(elem);
	}
}

/* True when an EventBridge detail-type says the detail is a CloudTrail record. */
static bool
is_cloudtrail_detail_type(const char *detail_type)
{
	size_t		len = strlen(detail_type);
	const char *suffix = "via CloudTrail";
	size_t		slen = strlen(suffix);

	return len >= slen && strcmp(detail_type + len - slen, suffix) == 0;
}

/*
 * normalize_payload recognises the shape of a payload and dispatches.
 */
static void
normalize_payload(NormalizeState *state, Jsonb *payload)
{
	JsonbContainer *root = &payload->root;
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(payload))
	{
		emit_rejected(state, NULL, "42804", "not_cloudtrail", payload,
					  "payload is a JSON scalar, not a CloudTrail record, log file, array or EventBridge event");
		return;
	}
	if (JB_ROOT_IS_ARRAY(payload))
	{
		normalize_array(state, root, "", payload);
		return;
	}

	/* CloudTrail log file body (S3 delivery) */
	if (JsonbObjectGet(root, "Records", &v) != NULL)
	{
		if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
			normalize_array(state, v.val.binary.data, "Records", payload);
		else
			emit_rejected(state, NULL, "42804", "records_not_array", payload,
						  "\"Records\" is not an array");
		return;
	}

	/* EventBridge event carrying a CloudTrail record in "detail" */
	if (JsonbObjectGet(root, "detail-type", &v) != NULL)
	{
		char	   *detail_type = JsonbObjectGetString(root, "detail-type", NULL);
		JsonbValue	detail;

		if (detail_type == NULL || !is_cloudtrail_detail_type(detail_type))
		{
			emit_skipped(state, NULL, "eventbridge_not_cloudtrail",
						 "EventBridge event whose detail-type is not a CloudTrail one");
			return;
		}
		if (JsonbObjectGet(root, "detail", &detail) == NULL || !is_object(&detail))
		{
			emit_rejected(state, "detail", "42804", "not_cloudtrail", payload,
						  "EventBridge event has no \"detail\" object");
			return;
		}
		normalize_record(state, &detail, NULL, "detail");
		return;
	}

	/* CloudTrail digest file: integrity data, no events */
	if (JsonbObjectGet(root, "digestStartTime", &v) != NULL ||
		(JsonbObjectGet(root, "logFiles", &v) != NULL &&
		 JsonbObjectGet(root, "digestEndTime", &v) != NULL))
	{
		emit_skipped(state, NULL, "digest_file",
					 "CloudTrail digest file (integrity data, no events)");
		return;
	}

	/* a single record; normalize_record reports what it lacks */
	if (JsonbObjectGet(root, "eventID", &v) != NULL ||
		JsonbObjectGet(root, "eventTime", &v) != NULL ||
		JsonbObjectGet(root, "eventSource", &v) != NULL ||
		JsonbObjectGet(root, "eventName", &v) != NULL ||
		JsonbObjectGet(root, "eventType", &v) != NULL)
	{
		JsonbValue	whole;

		whole.type = jbvBinary;
		whole.val.binary.data = root;
		whole.val.binary.len = VARSIZE(payload) - VARHDRSZ;
		normalize_record(state, &whole, payload, NULL);
		return;
	}

	emit_rejected(state, NULL, "42804", "not_cloudtrail", payload,
				  "JSON object is not CloudTrail: it has none of Records, eventID, eventTime, eventSource, eventName, eventType, detail-type or digestStartTime");
}

/*
 * ld_normalize is normalize(payload jsonb): materializes one row per record
 * (or one row for a payload that is skipped or rejected whole).
 */
Datum
ld_normalize(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *payload = PG_GETARG_JSONB_P(0);
	NormalizeState state;

	/*
	 * The executor knows the result type; using its descriptor spares
	 * building one from the catalog at each call, which the batch statement
	 * makes once per payload.
	 */
	InitMaterializedSRF(fcinfo, rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) &&
						rsinfo->expectedDesc != NULL ?
						MAT_SRF_USE_EXPECTED_DESC : 0);
	state.tupstore = rsinfo->setResult;
	state.tupdesc = rsinfo->setDesc;
	state.ordinal = 0;

	if (state.tupdesc->natts != NORMALIZE_NATTS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("normalize() is declared with %d columns, the library returns %d",
						state.tupdesc->natts, NORMALIZE_NATTS),
				 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));

	normalize_payload(&state, payload);

	return (Datum) 0;
}
