/*-------------------------------------------------------------------------
 *
 * dir_cache.c
 *	  What the worker's last scans learnt about each directory below
 *	  lambda_detect.inbox_dir, so that an unchanged directory is not read
 *	  again.
 *
 * A CloudTrail tree grows by one directory per account, region and day, and
 * every file in it stays: after a month of an organization trail it holds
 * millions of files, nearly all read long ago.  Listing and stat-ing each of
 * them and asking the ledger about each, at every scan, costs time in
 * proportion to the whole tree (measured: 0.5 s for 99,000 files), so the
 * worker would end up scanning without pause.
 *
 * A directory's modification time changes whenever a name is added to it,
 * removed from it or renamed in it, which is how files arrive (s3 sync, the
 * AWS CLI and rsync write a temporary name and rename it).  So a directory
 * read at one scan with nothing new in it -- every file settled and in the
 * ledger as it is, none failed -- and whose mtime is the same at the next
 * scan holds the same names: that scan skips its files and descends into
 * the subdirectories it had, without reading it.  What this cannot see is a
 * file rewritten in place under the same name; lambda_detect.
 * full_scan_interval bounds how long that goes unnoticed, by reading every
 * directory from time to time.
 *
 * A directory changed too recently is not trusted (a change within the same
 * tick of the file system's clock leaves the mtime as it was): it counts as
 * complete only when its mtime is older than the scan's start by
 * file_settle_time, and at least a second.
 *
 * The cache lives in the worker's memory only; it starts empty (a full scan)
 * whenever the worker starts and when inbox_dir changes.  Entries are keyed
 * by a 64-bit hash of the path; a collision could only make a directory
 * look unchanged until the next full scan.
 *
 * src/dir_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "lambda_detect.h"

static MemoryContext dir_cache_cxt = NULL;
static HTAB *dir_cache = NULL;
static char *dir_cache_root = NULL;

/* Empties the cache: the next scan reads every directory. */
void
DirCacheReset(void)
{
	if (dir_cache_cxt != NULL)
		MemoryContextDelete(dir_cache_cxt);
	dir_cache_cxt = NULL;
	dir_cache = NULL;
	dir_cache_root = NULL;
}

/*
 * Makes the cache ready for a scan of root, emptying it when it was kept
 * for another directory.
 */
void
DirCacheBeginScan(const char *root)
{
	HASHCTL		ctl;

	if (dir_cache != NULL && strcmp(dir_cache_root, root) == 0)
		return;
	DirCacheReset();
	dir_cache_cxt = AllocSetContextCreate(TopMemoryContext,
										  "lambda_detect directory cache",
										  ALLOCSET_DEFAULT_SIZES);
	dir_cache_root = MemoryContextStrdup(dir_cache_cxt, root);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(DirState);
	ctl.hcxt = dir_cache_cxt;
	dir_cache = hash_create("lambda_detect directory cache", 1024, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static uint64
path_key(const char *path)
{
	return hash_bytes_extended((const unsigned char *) path, strlen(path), 0);
}

/*
 * The state of directory path, or NULL if it is not cached (or, without
 * create, is not); a new entry is incomplete and has no subdirectories.
 */
DirState *
DirCacheLookup(const char *path, bool create)
{
	uint64		key = path_key(path);
	bool		found;
	DirState   *d;

	Assert(dir_cache != NULL);
	d = hash_search(dir_cache, &key, create ? HASH_ENTER : HASH_FIND, &found);
	if (d != NULL && !found)
	{
		d->complete = false;
		d->mtime = 0;
		d->dev = 0;
		d->ino = 0;
		d->nsubdirs = 0;
		d->subdirs = NULL;
		d->last_scan = 0;
	}
	return d;
}

/* Frees the subdirectory names of d. */
static void
free_subdirs(DirState *d)
{
	for (int j = 0; j < d->nsubdirs; j++)
		pfree(d->subdirs[j]);
	if (d->subdirs != NULL)
		pfree(d->subdirs);
	d->subdirs = NULL;
	d->nsubdirs = 0;
}

/* Replaces the subdirectory names of d by those in names (a List of char *). */
void
DirCacheSetSubdirs(DirState *d, List *names)
{
	ListCell   *lc;
	int			i = 0;

	free_subdirs(d);
	d->nsubdirs = list_length(names);
	d->subdirs = d->nsubdirs == 0 ? NULL :
		MemoryContextAlloc(dir_cache_cxt, sizeof(char *) * d->nsubdirs);
	foreach(lc, names)
		d->subdirs[i++] = MemoryContextStrdup(dir_cache_cxt, (char *) lfirst(lc));
}

/*
 * Forgets the directories not visited by the scan numbered scan (removed
 * from the tree, or below a directory that was), so that the cache follows
 * the tree rather than its history.
 */
void
DirCachePrune(uint64 scan)
{
	HASH_SEQ_STATUS status;
	DirState   *d;

	hash_seq_init(&status, dir_cache);
	while ((d = hash_seq_search(&status)) != NULL)
	{
		if (d->last_scan == scan)
			continue;
		free_subdirs(d);
		(void) hash_search(dir_cache, &d->key, HASH_REMOVE, NULL);
	}
}
