/*-------------------------------------------------------------------------
 *
 * files.c
 *	  Ingesting CloudTrail log files from lambda_detect.inbox_dir.
 *
 * The directory is typically an "aws s3 sync" copy of a trail bucket
 * (AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/ holding .json.gz files, plus digest
 * and Insight trees).  Files are never moved or deleted, since s3 sync would
 * fetch them again: the ledger lambda_detect.ingested_files remembers each
 * path with the size and mtime it had when read, and a file is read again
 * only when those change.
 *
 * Only regular files are read, never through a symbolic link; files still
 * being written (modified within lambda_detect.file_settle_time, or changing
 * while read) are left for a later scan.  A file's documents are stored in
 * the same transaction as its ledger row, so a crash re-reads the file
 * rather than losing or half-storing it, and eventID deduplication absorbs
 * anything read twice.
 *
 * A file holds one JSON document (a log file body, an array, a record) or
 * JSON lines, one document per line, as CloudWatch Logs exports give.  A bad
 * line is dead-lettered with its line number; the good lines are stored.
 *
 * src/files.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "lambda_detect.h"

/* what a directory walk found */
typedef enum FileKind
{
	FILE_TO_READ,				/* a settled regular log file */
	FILE_NOT_REGULAR,			/* named like a log file, but not a regular file */
	FILE_UNREADABLE_DIR			/* a directory we could not list */
} FileKind;

typedef struct FileEntry
{
	char	   *path;
	FileKind	kind;
	int64		size;
	TimestampTz mtime;
	TimestampTz ctime;
	dev_t		dev;			/* identity when listed: the file opened must be it */
	ino_t		ino;
	char	   *note;			/* why it is skipped or failed */
	DirState   *dir;			/* its directory's cache entry (worker's scans) */
} FileEntry;

typedef struct FileList
{
	FileEntry  *entries;
	int			n;
	int			capacity;
} FileList;

/* one walk of the tree (see dir_cache.c for the directory cache) */
typedef struct WalkState
{
	TimestampTz settled_before; /* files modified later wait for a later scan */
	bool		use_cache;		/* skip directories known complete and unchanged */
	TimestampTz stable_before;	/* directories changed later are never complete */
	uint64		scan;			/* this walk's number */
	List	   *read_dirs;		/* DirState of each directory read */
	int			dirs_skipped;
} WalkState;

/* the outcome of reading one file */
typedef struct FileOutcome
{
	const char *status;			/* ingested, skipped, error; NULL: changed, retry later */
	int			documents;
	IngestCounts counts;
	char	   *note;
} FileOutcome;

/* the message of a document nested deeper than lambda_detect.max_depth */
#define TOO_DEEP_MESSAGE	"JSON nests deeper than lambda_detect.max_depth"

/* most bytes of files read in one transaction before it commits */
#define SCAN_CHUNK_BYTES	(64 * 1024 * 1024)
/*
 * most files read in one of the worker's transactions: each file takes two
 * subtransactions that write, and past 64 PostgreSQL's cache of them
 * overflows and slows every other session down
 */
#define SCAN_CHUNK_FILES	25
/* most ledger look-ups in one query */
#define SCAN_LOOKUP_ENTRIES	1000

static TimestampTz
time_from_timespec(time_t sec, long nsec)
{
	return time_t_to_timestamptz(sec) + nsec / 1000;
}

static bool
has_log_suffix(const char *name)
{
	static const char *const suffixes[] = {
		".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz"
	};
	size_t		len = strlen(name);

	for (int i = 0; i < lengthof(suffixes); i++)
	{
		size_t		slen = strlen(suffixes[i]);

		if (len > slen && strcmp(name + len - slen, suffixes[i]) == 0)
			return true;
	}
	return false;
}

static void
add_entry(FileList *list, DirState *dir, const char *path, FileKind kind,
		  struct stat *st, const char *note)
{
	FileEntry  *e;

	if (list->n == list->capacity)
	{
		list->capacity = list->capacity ? list->capacity * 2 : 64;
		list->entries = list->entries ?
			repalloc_huge(list->entries, sizeof(FileEntry) * list->capacity) :
			palloc(sizeof(FileEntry) * list->capacity);
	}
	e = &list->entries[list->n++];
	e->path = pstrdup(path);
	e->kind = kind;
	e->size = st ? (int64) st->st_size : 0;
	e->mtime = st ? time_from_timespec(st->st_mtim.tv_sec, st->st_mtim.tv_nsec) : 0;
	e->ctime = st ? time_from_timespec(st->st_ctim.tv_sec, st->st_ctim.tv_nsec) : 0;
	e->dev = st ? st->st_dev : 0;
	e->ino = st ? st->st_ino : 0;
	e->note = note ? pstrdup(note) : NULL;
	e->dir = dir;
}

/*
 * walk_directory lists, below dir, the log files to consider.  Entries are
 * examined with lstat, so symbolic links are reported, never followed, and
 * nothing outside the tree is reached.  Hidden names (s3 sync's temporary
 * files among them) are ignored.  A directory's names are read and the
 * directory closed before descending, so the depth of a tree costs no open
 * descriptors.
 *
 * With the directory cache, a directory that an earlier walk read complete
 * and whose mtime, device and inode are still the same is not read: only
 * its subdirectories, as they were, are walked.  The directory's own lstat
 * comes before it is read, so a name added while it is being read changes
 * the mtime that the next walk compares.
 */
static void
walk_directory(const char *dir, FileList *list, WalkState *ws)
{
	DIR		   *d;
	struct dirent *de;
	List	   *names = NIL;
	List	   *subdirs = NIL;
	ListCell   *lc;
	DirState   *ds = NULL;
	struct stat dst;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (ws->use_cache && lstat(dir, &dst) == 0 && S_ISDIR(dst.st_mode))
	{
		TimestampTz dmtime = time_from_timespec(dst.st_mtim.tv_sec, dst.st_mtim.tv_nsec);

		ds = DirCacheLookup(dir, false);
		if (ds != NULL && ds->complete && ds->mtime == dmtime &&
			ds->dev == dst.st_dev && ds->ino == dst.st_ino)
		{
			ds->last_scan = ws->scan;
			ws->dirs_skipped++;
			for (int i = 0; i < ds->nsubdirs; i++)
			{
				char	   *path = psprintf("%s/%s", dir, ds->subdirs[i]);
				struct stat st;

				/* as in a listing: a directory still, never a link to one */
				if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
					walk_directory(path, list, ws);
				pfree(path);
			}
			return;
		}
		ds = DirCacheLookup(dir, true);
		ds->complete = false;
		ds->mtime = dmtime;
		ds->dev = dst.st_dev;
		ds->ino = dst.st_ino;
		ds->last_scan = ws->scan;
		ds->may_complete = dmtime <= ws->stable_before;
	}

	d = AllocateDir(dir);
	if (d == NULL)
	{
		struct stat st;
		char	   *note = psprintf("could not open directory: %m");

		if (lstat(dir, &st) == 0)
			add_entry(list, ds, dir, FILE_UNREADABLE_DIR, &st, note);
		return;
	}
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		if (de->d_name[0] != '.')
			names = lappend(names, pstrdup(de->d_name));
	}
	FreeDir(d);

	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		char	   *path = psprintf("%s/%s", dir, name);
		struct stat st;

		CHECK_FOR_INTERRUPTS();
		if (lstat(path, &st) != 0)
		{
			pfree(path);
			continue;			/* vanished since readdir */
		}

		if (S_ISDIR(st.st_mode))
		{
			if (has_log_suffix(name))
				add_entry(list, ds, path, FILE_NOT_REGULAR, &st,
						  "a directory named like a log file (its contents are scanned)");
			subdirs = lappend(subdirs, name);
			walk_directory(path, list, ws);
		}
		else if (has_log_suffix(name))
		{
			if (S_ISLNK(st.st_mode))
				add_entry(list, ds, path, FILE_NOT_REGULAR, &st,
						  "a symbolic link (links are never followed)");
			else if (!S_ISREG(st.st_mode))
				add_entry(list, ds, path, FILE_NOT_REGULAR, &st,
						  "not a regular file");
			else if (time_from_timespec(st.st_mtim.tv_sec, st.st_mtim.tv_nsec) <= ws->settled_before)
				add_entry(list, ds, path, FILE_TO_READ, &st, NULL);
			else if (ds != NULL)
				ds->may_complete = false;	/* still being written */
		}
		pfree(path);
	}
	if (ds != NULL)
	{
		DirCacheSetSubdirs(ds, subdirs);
		ws->read_dirs = lappend(ws->read_dirs, ds);
	}
	list_free(subdirs);
	list_free_deep(names);
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const FileEntry *) a)->path, ((const FileEntry *) b)->path);
}

/*
 * select_new_entries asks the ledger which of entries[from, to) are new or
 * changed since they were read, setting keep[i - from] accordingly.  A file
 * that failed is retried when its ctime changes too (say, after a chmod).
 * A directory holding a new, changed or failed file is not complete (a
 * chmod does not change the directory's mtime).
 */
static void
select_new_entries(FileList *list, int from, int to, bool *keep)
{
	static SPIPlanPtr plan = NULL;
	int			n = to - from;
	Datum	   *paths = palloc(sizeof(Datum) * n);
	Datum	   *sizes = palloc(sizeof(Datum) * n);
	Datum	   *mtimes = palloc(sizeof(Datum) * n);
	Datum	   *ctimes = palloc(sizeof(Datum) * n);
	Datum		values[4];
	int			ret;

	if (plan == NULL)
	{
		Oid			argtypes[4] = {TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
		TIMESTAMPTZARRAYOID};

		plan = SPI_prepare("SELECT f.i::int4,"
						   "       l.path IS NULL OR l.size <> f.size OR l.mtime <> f.mtime"
						   "       OR (l.status = 'error' AND l.ctime <> f.ctime)"
						   "  FROM unnest($1, $2, $3, $4)"
						   "       WITH ORDINALITY AS f(path, size, mtime, ctime, i)"
						   "  LEFT JOIN lambda_detect.ingested_files l ON l.path = f.path"
						   " WHERE l.path IS NULL OR l.size <> f.size OR l.mtime <> f.mtime"
						   "    OR l.status = 'error'",
						   4, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
	}

	for (int i = 0; i < n; i++)
	{
		FileEntry  *e = &list->entries[from + i];

		paths[i] = CStringGetTextDatum(e->path);
		sizes[i] = Int64GetDatum(e->size);
		mtimes[i] = TimestampTzGetDatum(e->mtime);
		ctimes[i] = TimestampTzGetDatum(e->ctime);
		keep[i] = false;
	}
	values[0] = PointerGetDatum(construct_array(paths, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(sizes, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(mtimes, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_array(ctimes, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	ret = SPI_execute_plan(plan, values, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the file ledger: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int			i = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
													SPI_tuptable->tupdesc, 1, &isnull));
		FileEntry  *e = &list->entries[from + i - 1];

		keep[i - 1] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[r],
												 SPI_tuptable->tupdesc, 2, &isnull));
		if (e->dir != NULL)
			e->dir->may_complete = false;
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Writes (or rewrites) the ledger row of a file. */
static void
record_ledger(FileEntry *e, FileOutcome *outcome)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[11];
	char		nulls[11];
	int			ret;

	if (plan == NULL)
	{
		Oid			argtypes[11] = {TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
			TEXTOID, INT4OID, INT4OID, INT4OID, INT4OID, INT4OID, TEXTOID};

		plan = SPI_prepare("INSERT INTO lambda_detect.ingested_files AS l"
						   " (path, size, mtime, ctime, status, documents, events, duplicates,"
						   "  skipped, errors, note)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
						   " ON CONFLICT (path) DO UPDATE SET size = EXCLUDED.size,"
						   "  mtime = EXCLUDED.mtime, ctime = EXCLUDED.ctime,"
						   "  ingested_at = now(), status = EXCLUDED.status,"
						   "  documents = EXCLUDED.documents, events = EXCLUDED.events,"
						   "  duplicates = EXCLUDED.duplicates, skipped = EXCLUDED.skipped,"
						   "  errors = EXCLUDED.errors, note = EXCLUDED.note",
						   11, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
	}

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(e->path);
	values[1] = Int64GetDatum(e->size);
	values[2] = TimestampTzGetDatum(e->mtime);
	values[3] = TimestampTzGetDatum(e->ctime);
	values[4] = CStringGetTextDatum(outcome->status);
	values[5] = Int32GetDatum(outcome->documents);
	values[6] = Int32GetDatum((int32) outcome->counts.events);
	values[7] = Int32GetDatum((int32) outcome->counts.duplicates);
	values[8] = Int32GetDatum((int32) outcome->counts.skipped);
	values[9] = Int32GetDatum((int32) outcome->counts.errors);
	if (outcome->note)
		values[10] = CStringGetTextDatum(outcome->note);
	else
		nulls[10] = 'n';

	ret = SPI_execute_plan(plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT && ret != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not write the file ledger: %s", SPI_result_code_string(ret));
}

/* Dead-letters a whole file (kept by path) and marks it failed. */
static void
fail_file(FileEntry *e, FileOutcome *outcome, const char *sqlstate,
		  const char *reason, const char *message, const char *raw, int rawlen)
{
	RecordIngestError(sqlstate, reason, message, e->path, NULL, NULL, raw, rawlen);
	outcome->status = "error";
	outcome->counts.errors++;
	outcome->note = pstrdup(message);
}

/*
 * gunzip inflates a gzip (or zlib) stream of one or more members, refusing
 * to produce more than limit bytes: a gzip bomb is stopped at the limit, not
 * after it has filled memory.  Returns NULL and sets *errmsg on failure.
 */
static char *
gunzip(const char *in, size_t inlen, size_t limit, size_t *outlen, char **errmsg)
{
	z_stream	zs;
	size_t		cap = Min(Max(inlen * 4, (size_t) 65536), limit + 1);
	char	   *out = palloc_extended(cap + 1, MCXT_ALLOC_HUGE);
	int			rc;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
	{
		*errmsg = pstrdup("could not initialise zlib");
		return NULL;
	}
	zs.next_in = (Bytef *) in;
	zs.avail_in = inlen;
	*outlen = 0;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (*outlen == cap)
		{
			if (cap > limit)
			{
				inflateEnd(&zs);
				*errmsg = psprintf("decompressed size exceeds lambda_detect.max_payload_size (%zu bytes)",
								   limit);
				return NULL;
			}
			cap = Min(cap * 2, limit + 1);
			out = repalloc_huge(out, cap + 1);
		}
		zs.next_out = (Bytef *) out + *outlen;
		zs.avail_out = cap - *outlen;
		rc = inflate(&zs, Z_NO_FLUSH);
		*outlen = cap - zs.avail_out;

		if (rc == Z_STREAM_END)
		{
			/* another gzip member may follow */
			if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b)
			{
				inflateReset(&zs);
				continue;
			}
			/* some writers pad with zero bytes, which gzip itself ignores */
			while (zs.avail_in > 0 && *zs.next_in == 0)
			{
				zs.next_in++;
				zs.avail_in--;
			}
			if (zs.avail_in > 0)
			{
				inflateEnd(&zs);
				*errmsg = psprintf("%u bytes of trailing data after the gzip stream",
								   zs.avail_in);
				return NULL;
			}
			break;
		}
		if (rc == Z_OK)
			continue;
		if (rc == Z_BUF_ERROR && zs.avail_out > 0)
		{
			inflateEnd(&zs);
			*errmsg = pstrdup("gzip stream is truncated");
			return NULL;
		}
		if (rc != Z_BUF_ERROR)
		{
			inflateEnd(&zs);
			*errmsg = psprintf("corrupt gzip stream: %s", zs.msg ? zs.msg : "unknown error");
			return NULL;
		}
	}
	inflateEnd(&zs);
	if (*outlen > limit)
	{
		*errmsg = psprintf("decompressed size exceeds lambda_detect.max_payload_size (%zu bytes)",
						   limit);
		return NULL;
	}
	out[*outlen] = '\0';
	return out;
}

/*
 * json_depth_exceeds tells whether text nests deeper than max_depth.  The
 * parser recurses per level, so the limit is checked before parsing.
 */
static bool
json_depth_exceeds(const char *s, size_t len, int max_depth)
{
	int			depth = 0;
	bool		in_string = false;

	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[')
		{
			if (++depth > max_depth)
				return true;
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	return false;
}

typedef struct ParseWork
{
	char	   *text;			/* NUL-terminated */
	Datum		result;
} ParseWork;

static void
parse_work(void *arg)
{
	ParseWork  *work = (ParseWork *) arg;

	work->result = DirectFunctionCall1(jsonb_in, CStringGetDatum(work->text));
}

/*
 * parse_json parses NUL-terminated text into jsonb.  Returns NULL and sets
 * *edata when the text is not valid JSON (or nests too deep).
 */
static Jsonb *
parse_json(char *text, size_t len, ErrorData **edata)
{
	ParseWork	work;

	*edata = NULL;
	if (json_depth_exceeds(text, len, ld_max_depth))
	{
		*edata = palloc0(sizeof(ErrorData));
		(*edata)->sqlerrcode = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		(*edata)->message = psprintf(TOO_DEEP_MESSAGE " (%d)", ld_max_depth);
		return NULL;
	}
	work.text = text;
	*edata = RunGuarded(parse_work, &work);
	if (*edata != NULL)
	{
		if (IsTransientError(*edata))
			ReThrowError(*edata);
		return NULL;
	}
	return DatumGetJsonbP(work.result);
}

static char *
edata_text(ErrorData *edata)
{
	if (edata->detail)
		return psprintf("%s: %s", edata->message, edata->detail);
	return pstrdup(edata->message);
}

/* The reason keyword of a parse failure. */
static const char *
parse_reason(ErrorData *edata)
{
	if (edata->sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		return "invalid_json";
	if (strncmp(edata->message, TOO_DEEP_MESSAGE, strlen(TOO_DEEP_MESSAGE)) == 0)
		return "too_deep";
	return "too_large";			/* e.g. past jsonb's own size limits */
}

/* the message of a file, or a JSON line, that is not valid in the encoding */
#define BAD_ENCODING_MESSAGE	"not valid in the database encoding (or holds NUL bytes)"

/*
 * ingest_text stores the JSON in a file's decompressed text: one document,
 * or JSON lines when the whole does not parse but its first line does.
 *
 * encoding_ok says whether the whole text is valid in the database
 * encoding.  When it is not, the text cannot be one document, but it may
 * still be JSON lines of which only some are bad (one line of a CloudWatch
 * export written in Latin-1): each line is then checked before it is
 * parsed, and a bad one is dead-lettered alone, like a line that is not
 * JSON, so that the good lines beside it are kept.
 */
static void
ingest_text(FileEntry *e, char *text, size_t len, bool encoding_ok,
			FileOutcome *outcome)
{
	ErrorData  *edata;
	Jsonb	   *doc;
	char	   *p;
	char	   *end = text + len;
	char	   *first_nl;
	Datum	   *docs;
	Datum	   *locs;
	int			ndocs = 0;
	int			cap = 64;
	int			lineno = 0;
	MemoryContext slicecxt;
	MemoryContext oldcxt;

	/* a UTF-8 byte order mark is not JSON */
	if (len >= 3 && (unsigned char) text[0] == 0xEF &&
		(unsigned char) text[1] == 0xBB && (unsigned char) text[2] == 0xBF)
	{
		text += 3;
		len -= 3;
	}

	doc = encoding_ok ? parse_json(text, len, &edata) : NULL;
	if (doc != NULL)
	{
		Datum		d = JsonbPGetDatum(doc);
		Datum		loc = (Datum) 0;

		outcome->documents = 1;
		docs = &d;
		/* a NULL location is represented by an empty string, folded later */
		loc = CStringGetTextDatum("");
		IngestDocuments(docs, &loc, 1, e->path, &outcome->counts);
		return;
	}

	/* JSON lines?  Only if the first non-blank line is a document by itself. */
	p = text;
	while (p < end && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t'))
		p++;
	first_nl = memchr(p, '\n', end - p);
	{
		ErrorData  *line_error;
		Jsonb	   *first = NULL;

		if (first_nl != NULL &&
			(encoding_ok || pg_verifymbstr(p, (int) Min(first_nl - p, PG_INT32_MAX), true)))
		{
			*first_nl = '\0';
			first = parse_json(p, first_nl - p, &line_error);
			*first_nl = '\n';
		}
		if (first == NULL)
		{
			/* not JSON lines: the whole file is what is wrong */
			if (!encoding_ok)
				fail_file(e, outcome, "22021", "bad_encoding",
						  "file is " BAD_ENCODING_MESSAGE, NULL, 0);
			else
				fail_file(e, outcome, unpack_sql_state(edata->sqlerrcode),
						  parse_reason(edata), edata_text(edata), text,
						  (int) Min(len, (size_t) PG_INT32_MAX));
			return;
		}
	}

	docs = palloc(sizeof(Datum) * cap);
	locs = palloc(sizeof(Datum) * cap);
	slicecxt = AllocSetContextCreate(CurrentMemoryContext, "lambda_detect lines",
									 ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(slicecxt);
	p = text;
	while (p < end)
	{
		char	   *nl = memchr(p, '\n', end - p);
		char	   *line_end = nl ? nl : end;
		char	   *stop = line_end;
		char	   *location;

		lineno++;
		CHECK_FOR_INTERRUPTS();
		if (stop > p && stop[-1] == '\r')
			stop--;
		/* skip blank lines */
		{
			char	   *q = p;

			while (q < stop && (*q == ' ' || *q == '\t'))
				q++;
			if (q == stop)
			{
				p = line_end + 1;
				continue;
			}
		}

		location = psprintf("line %d", lineno);
		if (!encoding_ok && !pg_verifymbstr(p, (int) Min(stop - p, PG_INT32_MAX), true))
		{
			/* its bytes cannot be kept as text: the path and line locate them */
			RecordIngestError("22021", "bad_encoding", "line is " BAD_ENCODING_MESSAGE,
							  e->path, location, NULL, NULL, 0);
			outcome->counts.errors++;
			p = line_end + 1;
			continue;
		}
		{
			char		saved = *stop;
			ErrorData  *line_error;

			*stop = '\0';
			doc = parse_json(p, stop - p, &line_error);
			if (doc == NULL)
				RecordIngestError(unpack_sql_state(line_error->sqlerrcode),
								  parse_reason(line_error), edata_text(line_error),
								  e->path, location, NULL, p, (int) Min(stop - p, PG_INT32_MAX));
			if (stop < end)
				*stop = saved;
			if (doc == NULL)
			{
				outcome->counts.errors++;
				p = line_end + 1;
				continue;
			}
		}

		if (ndocs == cap)
		{
			cap *= 2;
			docs = repalloc_huge(docs, sizeof(Datum) * cap);
			locs = repalloc_huge(locs, sizeof(Datum) * cap);
		}
		docs[ndocs] = JsonbPGetDatum(doc);
		locs[ndocs] = CStringGetTextDatum(location);
		ndocs++;
		p = line_end + 1;

		/* store in slices so that a large file's documents need not all be in memory */
		if (ndocs >= ld_batch_size)
		{
			MemoryContextSwitchTo(oldcxt);
			IngestDocuments(docs, locs, ndocs, e->path, &outcome->counts);
			outcome->documents += ndocs;
			ndocs = 0;
			MemoryContextReset(slicecxt);
			MemoryContextSwitchTo(slicecxt);
		}
	}
	MemoryContextSwitchTo(oldcxt);
	if (ndocs > 0)
	{
		IngestDocuments(docs, locs, ndocs, e->path, &outcome->counts);
		outcome->documents += ndocs;
	}
	MemoryContextDelete(slicecxt);
}

/*
 * read_file reads one settled regular file and stores what it holds.  The
 * file is opened without following links, checked to be the file that was
 * listed, and checked again after reading: a file that changed meanwhile
 * is left for a later scan (outcome->status NULL).
 */
static void
read_file(FileEntry *e, FileOutcome *outcome)
{
	size_t		limit = (size_t) ld_max_payload_kb * 1024;
	struct stat before,
				after;
	int			fd;
	char	   *raw;
	size_t		rawlen = 0;
	char	   *text;
	size_t		textlen;

	fd = OpenTransientFile(e->path, O_RDONLY | O_NOFOLLOW | PG_BINARY);
	if (fd < 0)
	{
		int			save_errno = errno;

		if (save_errno == EACCES || save_errno == EPERM || save_errno == ELOOP)
		{
			errno = save_errno;
			fail_file(e, outcome, save_errno == ELOOP ? "58030" : "42501",
					  "unreadable_file", psprintf("could not open file: %m"), NULL, 0);
		}
		else
		{
			/* out of descriptors, a network file system hiccup: try again later */
			errno = save_errno;
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("lambda_detect: could not open file \"%s\", will retry: %m", e->path)));
			outcome->status = NULL;
		}
		return;
	}
	/* the file must be the one listed, not something swapped in since */
	if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode) ||
		(int64) before.st_size != e->size ||
		before.st_dev != e->dev || before.st_ino != e->ino)
	{
		CloseTransientFile(fd);
		outcome->status = NULL;
		return;
	}
	if ((size_t) before.st_size > limit)
	{
		CloseTransientFile(fd);
		fail_file(e, outcome, "54000", "too_large",
				  psprintf("file is %lld bytes, more than lambda_detect.max_payload_size (%zu bytes)",
						   (long long) before.st_size, limit),
				  NULL, 0);
		return;
	}

	raw = palloc_extended((size_t) before.st_size + 1, MCXT_ALLOC_HUGE);
	while (rawlen < (size_t) before.st_size)
	{
		ssize_t		r = read(fd, raw + rawlen, (size_t) before.st_size - rawlen);

		CHECK_FOR_INTERRUPTS();
		if (r < 0)
		{
			int			save_errno = errno;

			CloseTransientFile(fd);
			errno = save_errno;
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("lambda_detect: could not read file \"%s\", will retry: %m", e->path)));
			outcome->status = NULL;
			return;
		}
		if (r == 0)
			break;
		rawlen += r;
	}
	if (fstat(fd, &after) != 0 || after.st_size != before.st_size ||
		after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
		after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
		rawlen != (size_t) before.st_size)
	{
		CloseTransientFile(fd);
		outcome->status = NULL;
		return;
	}
	CloseTransientFile(fd);
	raw[rawlen] = '\0';

	if (rawlen == 0)
	{
		fail_file(e, outcome, "22P02", "empty_file", "file is empty", NULL, 0);
		return;
	}

	if (rawlen >= 2 && (unsigned char) raw[0] == 0x1f && (unsigned char) raw[1] == 0x8b)
	{
		char	   *errmsg = NULL;

		text = gunzip(raw, rawlen, limit, &textlen, &errmsg);
		pfree(raw);
		if (text == NULL)
		{
			fail_file(e, outcome, strstr(errmsg, "exceeds") ? "54000" : "22P02",
					  strstr(errmsg, "exceeds") ? "too_large" : "bad_gzip",
					  errmsg, NULL, 0);
			return;
		}
	}
	else
	{
		text = raw;
		textlen = rawlen;
	}

	if (textlen > (size_t) PG_INT32_MAX)
	{
		fail_file(e, outcome, "22021", "bad_encoding",
				  "file is " BAD_ENCODING_MESSAGE, NULL, 0);
		return;
	}

	outcome->status = "ingested";
	ingest_text(e, text, textlen, pg_verifymbstr(text, (int) textlen, true), outcome);
	if (outcome->counts.events == 0 && outcome->counts.duplicates == 0)
		outcome->status = outcome->counts.errors > 0 ? "error" : "skipped";
}

/*
 * ingest_entry handles one listed entry and writes its ledger row.  The
 * file's own work runs in a subtransaction, so an unexpected error in it
 * costs only that file (dead-lettered by path), not the scan.
 */
typedef struct EntryWork
{
	FileEntry  *entry;
	FileOutcome *outcome;
} EntryWork;

static void
entry_work(void *arg)
{
	EntryWork  *work = (EntryWork *) arg;

	read_file(work->entry, work->outcome);
}

static int64
ingest_entry(FileEntry *e, IngestCounts *counts)
{
	FileOutcome outcome;
	EntryWork	work = {e, &outcome};
	ErrorData  *edata;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "lambda_detect file",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	memset(&outcome, 0, sizeof(outcome));
	if (e->kind == FILE_NOT_REGULAR)
	{
		Datum		reason = CStringGetTextDatum("not_regular_file");

		outcome.status = "skipped";
		outcome.counts.skipped = 1;
		outcome.counts.skip_reasons =
			PointerGetDatum(construct_array(&reason, 1, TEXTOID, -1, false, TYPALIGN_INT));
		outcome.note = e->note;
	}
	else if (e->kind == FILE_UNREADABLE_DIR)
		fail_file(e, &outcome, "58030", "unreadable_directory", e->note, NULL, 0);
	else
	{
		edata = RunGuarded(entry_work, &work);
		if (edata != NULL)
		{
			if (IsTransientError(edata))
				ReThrowError(edata);
			memset(&outcome, 0, sizeof(outcome));
			fail_file(e, &outcome, unpack_sql_state(edata->sqlerrcode), "read_failed",
					  edata_text(edata), NULL, 0);
		}
	}

	if (outcome.status != NULL)
	{
		record_ledger(e, &outcome);
		outcome.counts.files = 1;
	}
	MemoryContextSwitchTo(old);
	AddIngestCounts(counts, &outcome.counts);
	if (outcome.counts.skip_reasons != (Datum) 0)
		AddSkipReasons(counts, datumCopy(outcome.counts.skip_reasons, false, -1));
	MemoryContextDelete(cxt);
	return e->kind == FILE_TO_READ ? e->size : 0;
}

/*
 * list_inbox_files walks dir and returns the settled log files and the
 * entries to report, sorted by path (so, in an AWS tree, oldest day first).
 */
static FileList *
list_inbox_files(const char *dir, WalkState *ws)
{
	FileList   *list = palloc0(sizeof(FileList));

	walk_directory(dir, list, ws);
	if (list->n > 1)
		qsort(list->entries, list->n, sizeof(FileEntry), entry_cmp);
	return list;
}

/*
 * Takes the database's scan lock for this transaction, if it is free.  A
 * scan in chunks (the worker's and its helpers') takes it shared, and then
 * each file it reads (try_file_lock); a scan in one transaction
 * (ingest_now()) takes it exclusively, since it would otherwise hold one
 * lock per file of a directory of any size until it commits.
 */
static bool
try_scan_lock(bool shared)
{
	bool		isnull;
	int			ret;

	ret = SPI_execute(shared ?
					  "SELECT pg_try_advisory_xact_lock_shared(hashtext('lambda_detect.inbox_dir'))" :
					  "SELECT pg_try_advisory_xact_lock(hashtext('lambda_detect.inbox_dir'))",
					  false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not take the scan lock: %s", SPI_result_code_string(ret));
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									  1, &isnull));
}

/*
 * try_file_lock claims a file for this transaction among scans in chunks
 * running at once: false when another scan is reading it (a hash collision
 * of two paths only defers one of them to a later scan), or has read it
 * since this scan's look-up.  The lock and the second look-up are two
 * statements: a statement's snapshot is taken before it runs, so a look-up
 * in the statement that waited for the lock would not see the ledger row
 * that the scan holding it committed on releasing it.  A file found read
 * stays claimed until this transaction ends (a transaction's advisory lock
 * cannot be released earlier), which only makes other scans skip it too.
 */
static bool
try_file_lock(FileEntry *e)
{
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr ledger_plan = NULL;
	Oid			argtypes[4] = {TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[4];
	bool		isnull;
	bool		result;
	int			ret;

	PrepareKeptPlan(&lock_plan,
					"SELECT pg_try_advisory_xact_lock(hashtext('lambda_detect.inbox_dir'),"
					"                                 hashtext($1))",
					1, argtypes, 0);
	PrepareKeptPlan(&ledger_plan,
					"SELECT NOT EXISTS (SELECT FROM lambda_detect.ingested_files l"
					"  WHERE l.path = $1 AND l.size = $2 AND l.mtime = $3"
					"    AND NOT (l.status = 'error' AND l.ctime <> $4))",
					4, argtypes, 0);

	values[0] = CStringGetTextDatum(e->path);
	ret = SPI_execute_plan(lock_plan, values, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not claim a file: %s", SPI_result_code_string(ret));
	result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (!result)
		return false;

	values[1] = Int64GetDatum(e->size);
	values[2] = TimestampTzGetDatum(e->mtime);
	values[3] = TimestampTzGetDatum(e->ctime);
	ret = SPI_execute_plan(ledger_plan, values, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the file ledger: %s", SPI_result_code_string(ret));
	result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/*
 * ScanInboxDirectory ingests every new or changed file below
 * lambda_detect.inbox_dir.
 *
 * The file list is kept in listcxt.  With a boundary callback (the worker
 * and its ingest helpers), the scan commits every SCAN_CHUNK_BYTES read or
 * SCAN_CHUNK_FILES files, by calling boundary(), which must commit and open
 * a new transaction and SPI connection; each chunk gets its own ingest_runs
 * row, so a large backlog makes progress that a crash does not undo.  Such
 * scans run side by side, each reading the files no other has claimed
 * (try_file_lock), so a helper scanning beside the worker shares a backlog
 * of files with it.  Without a boundary (ingest_now()), everything happens
 * in the caller's transaction, and the scan runs alone: a caller that finds
 * another scan running returns at once, as does a scan in chunks that finds
 * ingest_now() scanning.  A scan in chunks that finds more new files than
 * one chunk takes calls backlog() (when given) once, before it reads any.
 *
 * With use_dir_cache (the worker's own scans), directories that an earlier
 * scan read complete and that have not changed since are skipped
 * (dir_cache.c), except at a full scan, every full_scan_interval; a scan
 * that finishes marks complete the directories it read with nothing new.
 *
 * Returns false, with errno set, when inbox_dir itself cannot be opened, so
 * that the caller can say so; true otherwise (even if the lock was taken).
 */
bool
ScanInboxDirectory(const char *origin, IngestCounts *counts,
				   MemoryContext listcxt, void (*boundary) (void),
				   void (*backlog) (void), bool use_dir_cache)
{
	static uint64 scans = 0;
	static TimestampTz last_full_scan = 0;
	FileList   *list;
	bool	   *keep;
	IngestCounts chunk;
	int64		chunk_bytes = 0;
	TimestampTz started_at = GetCurrentTimestamp();
	TimestampTz scan_start = started_at;
	MemoryContext old;
	char	   *dir;
	WalkState	ws;
	bool		full;

	if (!try_scan_lock(boundary != NULL))
		return true;

	{
		DIR		   *top = AllocateDir(ld_inbox_dir);

		if (top == NULL)
			return false;
		FreeDir(top);
	}

	old = MemoryContextSwitchTo(listcxt);
	/* one spelling of the directory, so that ledger paths do not change */
	dir = pstrdup(ld_inbox_dir);
	canonicalize_path(dir);

	memset(&ws, 0, sizeof(ws));
	ws.settled_before = scan_start - (TimestampTz) ld_file_settle_ms * 1000;
	ws.stable_before = scan_start - (TimestampTz) Max(ld_file_settle_ms, 1000) * 1000;
	ws.use_cache = use_dir_cache;
	ws.scan = ++scans;
	full = !use_dir_cache || ld_full_scan_interval_ms == 0 ||
		scan_start - last_full_scan >= (TimestampTz) ld_full_scan_interval_ms * 1000;
	if (use_dir_cache)
	{
		if (full)
		{
			DirCacheReset();
			last_full_scan = scan_start;
		}
		DirCacheBeginScan(dir);
	}

	list = list_inbox_files(dir, &ws);
	keep = palloc(sizeof(bool) * SCAN_LOOKUP_ENTRIES);
	MemoryContextSwitchTo(old);

	memset(&chunk, 0, sizeof(chunk));
	for (int from = 0; from < list->n; from += SCAN_LOOKUP_ENTRIES)
	{
		int			to = Min(from + SCAN_LOOKUP_ENTRIES, list->n);

		select_new_entries(list, from, to, keep);
		if (backlog != NULL && boundary != NULL)
		{
			int			files = 0;
			int64		bytes = 0;

			for (int i = from; i < to; i++)
				if (keep[i - from])
				{
					files++;
					bytes += list->entries[i].size;
				}
			if (files > SCAN_CHUNK_FILES || bytes > SCAN_CHUNK_BYTES)
				backlog();
			backlog = NULL;
		}
		for (int i = from; i < to; i++)
		{
			if (!keep[i - from])
				continue;
			if (boundary != NULL && !try_file_lock(&list->entries[i]))
				continue;
			chunk_bytes += ingest_entry(&list->entries[i], &chunk);

			if (boundary != NULL &&
				(chunk_bytes >= SCAN_CHUNK_BYTES || chunk.files >= SCAN_CHUNK_FILES))
			{
				RecordIngestRun(origin, "files", started_at, &chunk);
				AddIngestCounts(counts, &chunk);
				memset(&chunk, 0, sizeof(chunk));
				chunk_bytes = 0;
				boundary();
				started_at = GetCurrentTimestamp();
				if (!try_scan_lock(true))
					return true;
			}
		}
	}
	RecordIngestRun(origin, "files", started_at, &chunk);
	AddIngestCounts(counts, &chunk);

	/* every entry was looked up: what had nothing new is complete */
	if (use_dir_cache)
	{
		ListCell   *lc;
		int			completed = 0;

		foreach(lc, ws.read_dirs)
		{
			DirState   *d = (DirState *) lfirst(lc);

			d->complete = d->may_complete;
			completed += d->complete ? 1 : 0;
		}
		DirCachePrune(ws.scan);
		ereport(DEBUG1,
				(errmsg_internal("lambda_detect: %s scan of inbox_dir: %d directories read (%d now complete), %d skipped unchanged, %d files listed, %.1f ms",
								 full ? "full" : "quick", list_length(ws.read_dirs),
								 completed, ws.dirs_skipped, list->n,
								 (double) (GetCurrentTimestamp() - scan_start) / 1000.0)));
	}
	return true;
}
