/*-------------------------------------------------------------------------
 *
 * fuzz.c
 *	  The fuzz driver: pushes mutated CloudTrail payloads through
 *	  lambda_detect.normalize(), the inbox, ingest_now() and every rule of
 *	  lambda_detect.rules in a real server, and fails on a crash or an
 *	  error of an unexpected class.
 *
 * Payloads start from realistic records (the regression tests' attack
 * record, companion-rule matches, a log file body, an EventBridge event, a
 * digest and an Insight record, and the JSON files of a samples directory),
 * parsed into a small tree and mutated: fields deleted, types swapped
 * (string, number, object, array, null, boolean), huge and empty strings,
 * deep nesting, odd Unicode escapes and characters, duplicate keys,
 * renamed keys, values from a dictionary of what the rules look at; then,
 * for some, bytes flipped, inserted or the text truncated.  The driver is
 * deterministic for a given --seed.
 *
 * Each payload is sent as text to fuzz_stage() (created by tools/fuzz.sh
 * in the fuzz database), which casts it to jsonb, runs normalize() over it,
 * checks its rows and queues it in the inbox.  Every --round payloads the
 * driver calls ingest_now(), checks that it stored, skipped and
 * dead-lettered exactly what normalize() said, runs every rule, tallies,
 * and empties the tables so that each round costs the same.
 *
 * Expected: input the server refuses before lambda_detect sees it
 * (SQLSTATE class 22, invalid text or JSON; 54001, nesting past the stack;
 * 54000, past a size limit) is counted as rejected at the jsonb cast.
 * Anything else is a failure: a lost connection (a crash), any error from
 * normalize(), ingest_now() or run_rule(), a failed rule run, a dead letter
 * normalize() did not predict (store_failed), counts that disagree.  The
 * payload of a failure is written to --out.
 *
 * Usage: fuzz [--count N] [--seed S] [--round R] [--samples DIR] [--out DIR]
 *        (libpq environment variables say where the server is)
 *
 * tools/fuzz/fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "libpq-fe.h"

/* --- random numbers (xorshift64*), so that a seed replays a run --- */

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* a number in [0, n) */
static size_t
below(size_t n)
{
	return n == 0 ? 0 : (size_t) (rnd() % n);
}

/* true with probability 1/n */
static bool
one_in(size_t n)
{
	return below(n) == 0;
}

/* --- memory: one arena per payload, reset after it is sent --- */

typedef struct Chunk
{
	struct Chunk *next;
	size_t		used;
	size_t		size;
	char		data[];
} Chunk;

static Chunk *arena = NULL;

static void *
alloc(size_t n)
{
	n = (n + 15) & ~(size_t) 15;
	if (arena == NULL || arena->used + n > arena->size)
	{
		size_t		size = n > (1 << 20) ? n : (1 << 20);
		Chunk	   *c = malloc(sizeof(Chunk) + size);

		if (c == NULL)
		{
			fprintf(stderr, "fuzz: out of memory\n");
			exit(2);
		}
		c->next = arena;
		c->used = 0;
		c->size = size;
		arena = c;
	}
	arena->used += n;
	return arena->data + arena->used - n;
}

/* frees every chunk but the seeds' (allocated before mark) */
static void
arena_reset(Chunk *mark)
{
	while (arena != mark)
	{
		Chunk	   *next = arena->next;

		free(arena);
		arena = next;
	}
}

static char *
dup_mem(const char *s, size_t len)
{
	char	   *d = alloc(len + 1);

	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

/* --- a growable byte buffer --- */

typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_reserve(Buf *b, size_t more)
{
	if (b->len + more + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 4096;

		while (b->len + more + 1 > cap)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
		{
			fprintf(stderr, "fuzz: out of memory\n");
			exit(2);
		}
		b->cap = cap;
	}
}

static void
buf_put(Buf *b, const char *s, size_t len)
{
	buf_reserve(b, len);
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void
buf_str(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* --- JSON trees --- */

typedef enum JType
{
	J_NULL, J_TRUE, J_FALSE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT
} JType;

/*
 * A node.  Strings and keys are kept as the escaped text between the
 * quotes, so that a mutation can plant any escape, valid or not.
 */
typedef struct JNode
{
	JType		type;
	char	   *key;			/* of an object member: escaped, no quotes */
	char	   *text;			/* a number's literal, a string's escaped content */
	struct JNode **kids;
	int			nkids;
	int			cap;
} JNode;

static JNode *
node_new(JType type)
{
	JNode	   *n = alloc(sizeof(JNode));

	memset(n, 0, sizeof(JNode));
	n->type = type;
	return n;
}

static void
node_add(JNode *parent, JNode *kid)
{
	if (parent->nkids == parent->cap)
	{
		int			cap = parent->cap ? parent->cap * 2 : 8;
		JNode	  **kids = alloc(sizeof(JNode *) * cap);

		if (parent->nkids > 0)
			memcpy(kids, parent->kids, sizeof(JNode *) * parent->nkids);
		parent->kids = kids;
		parent->cap = cap;
	}
	parent->kids[parent->nkids++] = kid;
}

static JNode *
node_string(const char *escaped)
{
	JNode	   *n = node_new(J_STRING);

	n->text = dup_mem(escaped, strlen(escaped));
	return n;
}

static JNode *
node_clone(const JNode *n)
{
	JNode	   *c = node_new(n->type);

	c->key = n->key;			/* keys and texts are never changed in place */
	c->text = n->text;
	for (int i = 0; i < n->nkids; i++)
		node_add(c, node_clone(n->kids[i]));
	return c;
}

/* The parser, for the seeds only: they are known to be valid JSON. */
typedef struct Parser
{
	const char *p;
	const char *end;
	const char *name;
} Parser;

static void
parse_fail(Parser *ps, const char *what)
{
	fprintf(stderr, "fuzz: seed %s is not JSON the driver can read (%s at byte %ld)\n",
			ps->name, what, (long) (ps->end - ps->p));
	exit(2);
}

static void
skip_ws(Parser *ps)
{
	while (ps->p < ps->end && isspace((unsigned char) *ps->p))
		ps->p++;
}

static char *
parse_string_raw(Parser *ps)
{
	const char *start;

	if (ps->p >= ps->end || *ps->p != '"')
		parse_fail(ps, "string expected");
	start = ++ps->p;
	while (ps->p < ps->end && *ps->p != '"')
		ps->p += (*ps->p == '\\') ? 2 : 1;
	if (ps->p >= ps->end)
		parse_fail(ps, "unterminated string");
	ps->p++;
	return dup_mem(start, ps->p - 1 - start);
}

static JNode *
parse_value(Parser *ps)
{
	JNode	   *n;

	skip_ws(ps);
	if (ps->p >= ps->end)
		parse_fail(ps, "value expected");
	switch (*ps->p)
	{
		case '{':
			n = node_new(J_OBJECT);
			ps->p++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == '}')
			{
				ps->p++;
				return n;
			}
			for (;;)
			{
				char	   *key;
				JNode	   *v;

				skip_ws(ps);
				key = parse_string_raw(ps);
				skip_ws(ps);
				if (ps->p >= ps->end || *ps->p != ':')
					parse_fail(ps, "colon expected");
				ps->p++;
				v = parse_value(ps);
				v->key = key;
				node_add(n, v);
				skip_ws(ps);
				if (ps->p < ps->end && *ps->p == ',')
				{
					ps->p++;
					continue;
				}
				if (ps->p < ps->end && *ps->p == '}')
				{
					ps->p++;
					return n;
				}
				parse_fail(ps, "comma or brace expected");
			}
		case '[':
			n = node_new(J_ARRAY);
			ps->p++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ']')
			{
				ps->p++;
				return n;
			}
			for (;;)
			{
				node_add(n, parse_value(ps));
				skip_ws(ps);
				if (ps->p < ps->end && *ps->p == ',')
				{
					ps->p++;
					continue;
				}
				if (ps->p < ps->end && *ps->p == ']')
				{
					ps->p++;
					return n;
				}
				parse_fail(ps, "comma or bracket expected");
			}
		case '"':
			n = node_new(J_STRING);
			n->text = parse_string_raw(ps);
			return n;
		case 't':
		case 'f':
		case 'n':
			{
				const char *words[] = {"true", "false", "null"};
				JType		types[] = {J_TRUE, J_FALSE, J_NULL};

				for (int i = 0; i < 3; i++)
					if ((size_t) (ps->end - ps->p) >= strlen(words[i]) &&
						strncmp(ps->p, words[i], strlen(words[i])) == 0)
					{
						ps->p += strlen(words[i]);
						return node_new(types[i]);
					}
				parse_fail(ps, "literal expected");
			}
			/* FALLTHROUGH */
		default:
			{
				const char *start = ps->p;

				while (ps->p < ps->end && strchr("+-0123456789.eE", *ps->p))
					ps->p++;
				if (ps->p == start)
					parse_fail(ps, "unexpected character");
				n = node_new(J_NUMBER);
				n->text = dup_mem(start, ps->p - start);
				return n;
			}
	}
}

static JNode *
parse_seed(const char *text, size_t len, const char *name)
{
	Parser		ps = {text, text + len, name};
	JNode	   *n = parse_value(&ps);

	skip_ws(&ps);
	if (ps.p != ps.end)
		parse_fail(&ps, "trailing text");
	return n;
}

static void
serialize(const JNode *n, Buf *b)
{
	switch (n->type)
	{
		case J_NULL:
			buf_str(b, "null");
			break;
		case J_TRUE:
			buf_str(b, "true");
			break;
		case J_FALSE:
			buf_str(b, "false");
			break;
		case J_NUMBER:
			buf_str(b, n->text);
			break;
		case J_STRING:
			buf_str(b, "\"");
			buf_str(b, n->text);
			buf_str(b, "\"");
			break;
		case J_ARRAY:
		case J_OBJECT:
			buf_str(b, n->type == J_ARRAY ? "[" : "{");
			for (int i = 0; i < n->nkids; i++)
			{
				if (i > 0)
					buf_str(b, ", ");
				if (n->type == J_OBJECT)
				{
					buf_str(b, "\"");
					buf_str(b, n->kids[i]->key ? n->kids[i]->key : "");
					buf_str(b, "\": ");
				}
				serialize(n->kids[i], b);
			}
			buf_str(b, n->type == J_ARRAY ? "]" : "}");
			break;
	}
}

/* --- the seeds --- */

#define ATTACK_FIELDS \
	"\"eventVersion\": \"1.08\", \"eventTime\": \"2026-11-01T10:00:00Z\", " \
	"\"eventSource\": \"lambda.amazonaws.com\", \"awsRegion\": \"us-east-1\", " \
	"\"recipientAccountId\": \"111122223333\", \"sourceIPAddress\": \"198.51.100.23\", " \
	"\"userAgent\": \"aws-cli/2.17.60\", \"eventType\": \"AwsApiCall\", \"readOnly\": false, " \
	"\"requestID\": \"c84f1436-60be-4ad8-a6f7-f3c44d47df3a\", " \
	"\"userIdentity\": {\"type\": \"IAMUser\", \"principalId\": \"AIDAMALLORY\", " \
	"\"arn\": \"arn:aws:iam::111122223333:user/mallory\", \"accountId\": \"111122223333\", " \
	"\"accessKeyId\": \"AKIAMALLORY\", \"userName\": \"mallory\"}"

static const char *const builtin_seeds[] = {
	/* the regression tests' attack record (sql/include/fixtures.sql) */
	"{\"eventID\": \"seed-attack\", \"eventName\": \"AddPermission20150331v2\", " ATTACK_FIELDS ", "
	"\"requestParameters\": {\"action\": \"lambda:InvokeFunction\", \"functionName\": \"payments\", "
	"\"principal\": \"*\", \"statementId\": \"open\"}, "
	"\"responseElements\": {\"statement\": \"{\\\"Sid\\\":\\\"open\\\"}\"}}",
	/* companion rules: a wildcard action, a public function URL, a cross-account grant */
	"{\"eventID\": \"seed-wildcard\", \"eventName\": \"AddPermission20150331v2\", " ATTACK_FIELDS ", "
	"\"requestParameters\": {\"action\": \"lambda:*\", \"functionName\": \"payments\", "
	"\"principal\": \"*\", \"statementId\": \"all\", \"sourceArn\": \"arn:aws:s3:::bucket\"}}",
	"{\"eventID\": \"seed-url\", \"eventName\": \"CreateFunctionUrlConfig20211031\", " ATTACK_FIELDS ", "
	"\"requestParameters\": {\"functionName\": \"payments\", \"authType\": \"NONE\", "
	"\"qualifier\": \"prod\", \"cors\": {\"allowOrigins\": [\"*\"]}}}",
	"{\"eventID\": \"seed-cross\", \"eventName\": \"AddPermission20150331v2\", " ATTACK_FIELDS ", "
	"\"requestParameters\": {\"action\": \"lambda:InvokeFunction\", \"functionName\": \"payments\", "
	"\"principal\": \"arn:aws:iam::999988887777:root\", \"statementId\": \"x\", "
	"\"principalOrgID\": \"o-a1b2c3d4e5\"}}",
	/* a log file body: a failed AddPermission and an S3 read */
	"{\"Records\": [{\"eventID\": \"seed-log-1\", \"eventName\": \"AddPermission20150331v2\", " ATTACK_FIELDS ", "
	"\"errorCode\": \"AccessDenied\", \"errorMessage\": \"not allowed\", \"requestParameters\": null}, "
	"{\"eventID\": \"seed-log-2\", \"eventTime\": \"2026-11-01T10:00:01.123Z\", \"eventSource\": \"s3.amazonaws.com\", "
	"\"eventName\": \"GetObject\", \"awsRegion\": \"eu-west-1\", \"sourceIPAddress\": \"2001:db8::1\", "
	"\"userIdentity\": {\"type\": \"AssumedRole\", \"arn\": \"arn:aws:sts::111122223333:assumed-role/r/s\", "
	"\"sessionContext\": {\"sessionIssuer\": {\"userName\": \"r\"}}}, "
	"\"requestParameters\": {\"bucketName\": \"b\", \"key\": \"k\"}}]}",
	/* an EventBridge event carrying a record */
	"{\"version\": \"0\", \"id\": \"6a7e8feb\", \"detail-type\": \"AWS API Call via CloudTrail\", "
	"\"source\": \"aws.lambda\", \"detail\": {\"eventID\": \"seed-eb\", \"eventName\": \"AddPermission\", "
	ATTACK_FIELDS ", \"requestParameters\": {\"action\": \"lambda:InvokeFunctionUrl\", "
	"\"functionName\": \"f\", \"principal\": \"*\", \"functionUrlAuthType\": \"NONE\"}}}",
	/* a digest file and an Insight record: skipped */
	"{\"awsAccountId\": \"111122223333\", \"digestStartTime\": \"2026-11-01T09:00:00Z\", "
	"\"digestEndTime\": \"2026-11-01T10:00:00Z\", \"logFiles\": [{\"s3Object\": \"x.json.gz\"}]}",
	"{\"eventVersion\": \"1.08\", \"eventTime\": \"2026-11-01T10:00:00Z\", \"eventType\": \"AwsCloudTrailInsight\", "
	"\"eventID\": \"seed-insight\", \"insightDetails\": {\"state\": \"Start\", \"eventName\": \"AddPermission\"}}",
};

#define MAX_SEEDS 64
static JNode *seeds[MAX_SEEDS];
static int	nseeds = 0;

static void
add_seed(const char *text, size_t len, const char *name)
{
	if (nseeds < MAX_SEEDS)
		seeds[nseeds++] = parse_seed(text, len, name);
}

/* Adds every *.json file of dir as a seed (a missing directory adds none). */
static void
add_sample_seeds(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
	{
		fprintf(stderr, "fuzz: no samples in %s (%s); built-in seeds only\n", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL)
	{
		size_t		nl = strlen(de->d_name);
		char		path[4096];
		FILE	   *f;
		Buf			b = {0};
		char		chunk[65536];
		size_t		r;

		if (nl < 5 || strcmp(de->d_name + nl - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_put(&b, chunk, r);
		fclose(f);
		if (b.len > 0)
			add_seed(b.data, b.len, path);
		free(b.data);
	}
	closedir(d);
}

/* --- mutations --- */

/* strings the rules and normalize() look at, and odd ones */
static const char *const dictionary[] = {
	"", "*", " *", "* ", "**", "lambda:InvokeFunction", "lambda:invokefunction", "LAMBDA:INVOKEFUNCTION",
	"lambda:*", "*:*", "lambda:InvokeFunctionUrl", "lambda:InvokeAsync", "AddPermission",
	"AddPermission20150331", "AddPermission20150331v2", "addpermission", "AddLayerVersionPermission20181031",
	"RemovePermission20150331v2", "CreateFunctionUrlConfig20211031", "UpdateFunctionUrlConfig20211031",
	"lambda.amazonaws.com", "LAMBDA.AMAZONAWS.COM", "s3.amazonaws.com", "NONE", "none", "AWS_IAM",
	"111122223333", "999988887777", "12345678901", "1234567890123", "arn:aws:iam::999988887777:root",
	"arn:aws-cn:iam::999988887777:user/x", "arn:aws:iam::999988887777:role/", "arn:aws:iam:::root",
	"arn:aws:lambda:us-east-1:111122223333:function:payments", "o-a1b2c3d4e5",
	"2026-11-01T10:00:00Z", "2026-02-30T10:00:00Z", "2024-02-29T23:59:59.999999Z", "0001-01-01T00:00:00Z",
	"9999-12-31T23:59:59+23:59", "2026-11-01T10:00:00-00:00", "2026-11-01 10:00:00z", "2026-11-01T10:00:00.Z",
	"2026-11-01T10:00:00.1234567890123Z", "294276-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "now",
	"198.51.100.23", "::1", "::ffff:10.0.0.1", "256.1.1.1", "fe80::1%eth0", "10.0.0.1/8",
	"AccessDenied", "true", "false", "null", "0", "-1", "AwsApiCall", "AwsCloudTrailInsight",
	"IAMUser", "AWSService", "Root", "%s%s%s%n", "'; DROP TABLE lambda_detect.events; --",
	"\\\\", "\\\"", "\\/", "\\b\\f\\n\\r\\t",
};

/* escapes and characters outside the ASCII comfort zone */
static const char *const odd_unicode[] = {
	"\\u0000", "\\u0001", "\\u001f", "\\u007f", "\\ud800", "\\udfff", "\\ud800\\u0041", "\\udc00\\ud800",
	"\\ud83d\\ude00", "\\uffff", "\\ufffe", "\\ufeff", "\\u202e", "\\u200b", "\\u200d", "\\u0301",
	"\\uDBFF\\uDFFF", "\\u00e9", "\\u2028\\u2029",
	"\xc3\xa9", "\xf0\x9d\x95\x8f", "\xe2\x80\xae", "\xef\xbb\xbf", "\xe3\x80\x80", "\xcc\x81",
	"\xf4\x8f\xbf\xbf", "\xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7",
};

static const char *const odd_numbers[] = {
	"0", "-0", "1", "-1", "0.0", "1e308", "-1e308", "1e-308", "1e309", "1e1000000", "-1e-1000000",
	"123456789012345678901234567890", "0.000000000000000000000000000001", "111122223333",
	"9223372036854775807", "-9223372036854775809", "1.5e3", "2E+2",
};

static const char *const field_keys[] = {
	"eventID", "eventTime", "eventSource", "eventName", "eventType", "awsRegion",
	"recipientAccountId", "sourceIPAddress", "userAgent", "errorCode", "errorMessage",
	"requestID", "readOnly", "userIdentity", "requestParameters", "responseElements",
	"Records", "detail", "detail-type", "digestStartTime", "action", "principal",
	"functionName", "statementId", "authType", "sourceArn", "principalOrgID", "arn", "type",
	"invokedBy", "sessionContext", "sessionIssuer", "userName", "accessKeyId", "accountId",
};

/* Collects every node of a tree (with its parent) for picking one. */
typedef struct NodeRef
{
	JNode	   *node;
	JNode	   *parent;
	int			index;
} NodeRef;

typedef struct NodeList
{
	NodeRef    *refs;
	int			n;
	int			cap;
} NodeList;

static void
collect(JNode *n, JNode *parent, int index, NodeList *list, int depth)
{
	if (depth > 200)
		return;					/* a deep wrap from an earlier mutation: enough */
	if (list->n == list->cap)
	{
		int			cap = list->cap ? list->cap * 2 : 256;
		NodeRef    *refs = alloc(sizeof(NodeRef) * cap);

		if (list->n > 0)
			memcpy(refs, list->refs, sizeof(NodeRef) * list->n);
		list->refs = refs;
		list->cap = cap;
	}
	list->refs[list->n].node = n;
	list->refs[list->n].parent = parent;
	list->refs[list->n].index = index;
	list->n++;
	for (int i = 0; i < n->nkids; i++)
		collect(n->kids[i], n, i, list, depth + 1);
}

static JNode *
random_string_node(size_t len)
{
	JNode	   *n = node_new(J_STRING);
	char	   *s = alloc(len + 1);
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*:/-_.";
	bool		repeat = one_in(2);		/* compressible, like a padded field */
	char		c = alphabet[below(sizeof(alphabet) - 1)];

	for (size_t i = 0; i < len; i++)
		s[i] = repeat ? c : alphabet[below(sizeof(alphabet) - 1)];
	s[len] = '\0';
	n->text = s;
	return n;
}

/* a string whose length is mostly small, sometimes large, rarely huge */
static size_t
huge_length(void)
{
	if (one_in(500))
		return (size_t) 1 << 20;	/* 1 MB */
	if (one_in(20))
		return 65536 + below(4096);
	return 512 + below(4096);
}

static JNode *random_value(int depth);

/* Wraps a node in levels of arrays or single-member objects. */
static JNode *
wrap_deep(JNode *inner, int levels)
{
	bool		arrays = one_in(2);
	JNode	   *n = inner;
	char	   *key = inner->key;

	inner->key = NULL;
	for (int i = 0; i < levels; i++)
	{
		JNode	   *w = node_new(arrays ? J_ARRAY : J_OBJECT);

		if (!arrays)
			n->key = "a";
		node_add(w, n);
		n = w;
	}
	n->key = key;
	return n;
}

static int
deep_levels(void)
{
	if (one_in(50))
		return 10000;			/* past the stack of the jsonb cast, mostly */
	if (one_in(10))
		return 1000 + (int) below(2000);
	return 2 + (int) below(150);
}

/* A random value of any type; containers are small. */
static JNode *
random_value(int depth)
{
	JNode	   *n;

	switch (below(depth > 2 ? 7 : 9))
	{
		case 0:
			return node_new(J_NULL);
		case 1:
			return node_new(one_in(2) ? J_TRUE : J_FALSE);
		case 2:
			n = node_new(J_NUMBER);
			n->text = (char *) odd_numbers[below(sizeof(odd_numbers) / sizeof(*odd_numbers))];
			return n;
		case 3:
		case 4:
			return node_string(dictionary[below(sizeof(dictionary) / sizeof(*dictionary))]);
		case 5:
			return node_string(odd_unicode[below(sizeof(odd_unicode) / sizeof(*odd_unicode))]);
		case 6:
			return random_string_node(below(40));
		case 7:
			n = node_new(J_ARRAY);
			for (int i = (int) below(4); i > 0; i--)
				node_add(n, random_value(depth + 1));
			return n;
		default:
			n = node_new(J_OBJECT);
			for (int i = (int) below(4); i > 0; i--)
			{
				JNode	   *v = random_value(depth + 1);

				v->key = (char *) field_keys[below(sizeof(field_keys) / sizeof(*field_keys))];
				node_add(n, v);
			}
			return n;
	}
}

/* A value of another type than n's (string, number, object, array, null, boolean). */
static JNode *
swap_type(const JNode *n)
{
	for (int tries = 0; tries < 20; tries++)
	{
		JNode	   *v = random_value(0);

		if (v->type != n->type &&
			!((v->type == J_TRUE || v->type == J_FALSE) && (n->type == J_TRUE || n->type == J_FALSE)))
			return v;
	}
	return node_new(n->type == J_NULL ? J_ARRAY : J_NULL);
}

/* Puts a new value in the place of the node at ref. */
static void
replace(JNode **root, NodeRef *ref, JNode *value)
{
	value->key = ref->node->key;
	if (ref->parent == NULL)
		*root = value;
	else
		ref->parent->kids[ref->index] = value;
}

/* Inserts an odd escape or character into a string's text. */
static JNode *
plant_unicode(const JNode *s)
{
	const char *odd = odd_unicode[below(sizeof(odd_unicode) / sizeof(*odd_unicode))];
	size_t		len = strlen(s->text);
	size_t		at = below(len + 1);
	JNode	   *n = node_new(J_STRING);
	char	   *t = alloc(len + strlen(odd) + 1);

	/* never split an escape: insert at the start or the end of the text then */
	if (memchr(s->text, '\\', len) != NULL)
		at = one_in(2) ? 0 : len;
	else
		while (at > 0 && at < len && ((unsigned char) s->text[at] & 0xC0) == 0x80)
			at--;
	memcpy(t, s->text, at);
	memcpy(t + at, odd, strlen(odd));
	memcpy(t + at + strlen(odd), s->text + at, len - at + 1);
	n->text = t;
	return n;
}

static const char *
mutate_key(const char *key)
{
	size_t		len = strlen(key);
	char	   *k = alloc(len + 8);

	switch (below(5))
	{
		case 0:				/* case changed */
			for (size_t i = 0; i <= len; i++)
				k[i] = (char) (isupper((unsigned char) key[i]) ? tolower((unsigned char) key[i]) : toupper((unsigned char) key[i]));
			return k;
		case 1:				/* a blank after it */
			snprintf(k, len + 8, "%s ", key);
			return k;
		case 2:				/* empty */
			return "";
		case 3:				/* an escape that names the same key */
			if (len > 0 && isalpha((unsigned char) key[0]))
			{
				snprintf(k, len + 8, "\\u%04x%s", (unsigned char) key[0], key + 1);
				return k;
			}
			return key;
		default:
			return field_keys[below(sizeof(field_keys) / sizeof(*field_keys))];
	}
}

/* Applies one structural mutation to the tree. */
static void
mutate_tree(JNode **root)
{
	NodeList	list = {0};
	NodeRef    *ref;

	collect(*root, NULL, 0, &list, 0);
	ref = &list.refs[below(list.n)];

	switch (below(12))
	{
		case 0:					/* delete a field or element */
		case 1:
			if (ref->parent != NULL)
			{
				JNode	   *p = ref->parent;

				memmove(&p->kids[ref->index], &p->kids[ref->index + 1],
						sizeof(JNode *) * (p->nkids - ref->index - 1));
				p->nkids--;
			}
			break;
		case 2:					/* swap the type */
		case 3:
			replace(root, ref, swap_type(ref->node));
			break;
		case 4:					/* a value the rules or normalize() look at */
			replace(root, ref, one_in(3) ? random_value(0) :
					node_string(dictionary[below(sizeof(dictionary) / sizeof(*dictionary))]));
			break;
		case 5:					/* huge or empty string */
			replace(root, ref, one_in(3) ? node_string("") : random_string_node(huge_length()));
			break;
		case 6:					/* deep nesting */
			{
				/* the wrapper takes the node's key and place */
				JNode	   *w = wrap_deep(ref->node, deep_levels());

				if (ref->parent == NULL)
					*root = w;
				else
					ref->parent->kids[ref->index] = w;
			}
			break;
		case 7:					/* odd Unicode */
			if (ref->node->type == J_STRING)
				replace(root, ref, plant_unicode(ref->node));
			else
				replace(root, ref, node_string(odd_unicode[below(sizeof(odd_unicode) / sizeof(*odd_unicode))]));
			break;
		case 8:					/* a duplicate key (jsonb keeps the last one) */
			{
				JNode	   *obj = ref->node->type == J_OBJECT ? ref->node : ref->parent;

				if (obj != NULL && obj->type == J_OBJECT && obj->nkids > 0)
				{
					JNode	   *dup = one_in(2) ? random_value(0) : node_clone(obj->kids[below(obj->nkids)]);

					dup->key = obj->kids[below(obj->nkids)]->key;
					node_add(obj, dup);
				}
			}
			break;
		case 9:					/* a renamed key */
			if (ref->node->key != NULL)
				ref->node->key = (char *) mutate_key(ref->node->key);
			break;
		case 10:				/* a copied element or member (duplicate records) */
			if (ref->parent != NULL)
				node_add(ref->parent, node_clone(ref->node));
			break;
		default:				/* a new member in an object */
			{
				JNode	   *obj = ref->node->type == J_OBJECT ? ref->node : ref->parent;

				if (obj != NULL && obj->type == J_OBJECT)
				{
					JNode	   *v = random_value(0);

					v->key = (char *) field_keys[below(sizeof(field_keys) / sizeof(*field_keys))];
					node_add(obj, v);
				}
			}
			break;
	}
}

/* Wraps a record the way CloudTrail delivers it, or leaves it. */
static JNode *
reshape(JNode *root)
{
	JNode	   *w;

	switch (below(8))
	{
		case 0:					/* a log file body */
			w = node_new(J_OBJECT);
			root->key = NULL;
			node_add(w, node_new(J_ARRAY));
			w->kids[0]->key = "Records";
			node_add(w->kids[0], root);
			if (one_in(2))
				node_add(w->kids[0], node_clone(root));
			return w;
		case 1:					/* a bare array */
			w = node_new(J_ARRAY);
			root->key = NULL;
			node_add(w, root);
			return w;
		case 2:					/* an EventBridge event */
			w = node_new(J_OBJECT);
			node_add(w, node_string(one_in(4) ? "AWS Console Sign In via CloudTrail" : "AWS API Call via CloudTrail"));
			w->kids[0]->key = "detail-type";
			root->key = "detail";
			node_add(w, root);
			return w;
		default:
			return root;
	}
}

/* Gives every record a fresh eventID, so that most are stored and reach the rules. */
static void
fresh_ids(JNode *n, long payload, int *k, int depth)
{
	if (depth > 4 || n->type != J_OBJECT)
	{
		if (n->type == J_ARRAY && depth <= 4)
			for (int i = 0; i < n->nkids; i++)
				fresh_ids(n->kids[i], payload, k, depth + 1);
		return;
	}
	for (int i = 0; i < n->nkids; i++)
	{
		JNode	   *kid = n->kids[i];

		if (kid->key != NULL && strcmp(kid->key, "eventID") == 0 && kid->type == J_STRING)
		{
			char		id[64];
			JNode	   *s;

			snprintf(id, sizeof(id), "fz-%ld-%d", payload, (*k)++);
			s = node_string(id);
			s->key = kid->key;
			n->kids[i] = s;
		}
		else if (kid->key != NULL &&
				 (strcmp(kid->key, "Records") == 0 || strcmp(kid->key, "detail") == 0))
			fresh_ids(kid, payload, k, depth + 1);
	}
}

/* Byte-level damage to the serialized text. */
static void
mutate_bytes(Buf *b)
{
	int			n = 1 + (int) below(4);

	for (int i = 0; i < n && b->len > 0; i++)
	{
		size_t		at = below(b->len);

		switch (below(5))
		{
			case 0:				/* flip bits of a byte */
				b->data[at] ^= (char) (1 << below(8));
				break;
			case 1:				/* any byte */
				b->data[at] = (char) below(256);
				break;
			case 2:				/* truncate */
				b->len = at;
				b->data[at] = '\0';
				break;
			case 3:				/* a JSON token in a random place */
				{
					static const char *const tokens[] = {"{", "}", "[", "]", ",", ":", "\"", "\\", "null", "\\u", "0", "\n"};
					const char *t = tokens[below(sizeof(tokens) / sizeof(*tokens))];
					size_t		tl = strlen(t);

					buf_reserve(b, tl);
					memmove(b->data + at + tl, b->data + at, b->len - at + 1);
					memcpy(b->data + at, t, tl);
					b->len += tl;
				}
				break;
			default:			/* a span removed */
				{
					size_t		span = 1 + below(16);

					if (at + span > b->len)
						span = b->len - at;
					memmove(b->data + at, b->data + at + span, b->len - at - span + 1);
					b->len -= span;
				}
				break;
		}
	}
}

/* --- talking to the server --- */

static PGconn *conn;
static const char *out_dir = ".";
static long failures = 0;

static double
now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/* Writes the payload of a failure beside the others, for replaying it. */
static void
keep_payload(const char *what, long n, const char *payload, size_t len)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/fuzz-%s-%ld.json", out_dir, what, n);
	if ((f = fopen(path, "wb")) != NULL)
	{
		fwrite(payload, 1, len, f);
		fclose(f);
		fprintf(stderr, "fuzz: payload kept in %s\n", path);
	}
}

/* A lost connection is a crashed backend or a restarting server: stop at once. */
static void
check_connection(const char *during, long n, const char *payload, size_t len)
{
	if (PQstatus(conn) == CONNECTION_OK)
		return;
	fprintf(stderr, "fuzz: CRASH: the connection was lost during %s (payload %ld): %s",
			during, n, PQerrorMessage(conn));
	if (payload != NULL)
		keep_payload("crash", n, payload, len);
	exit(3);
}

static PGresult *
run(const char *sql, int nparams, const char *const *values, const int *lengths)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, values, lengths, NULL, 0);

	check_connection(sql, -1, NULL, 0);
	return res;
}

/* Runs a statement that must succeed. */
static PGresult *
must(const char *sql)
{
	PGresult   *res = run(sql, 0, NULL, NULL);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		fprintf(stderr, "fuzz: FAILURE: %s\n  %s: %s", sql, state ? state : "?",
				PQresultErrorMessage(res));
		failures++;
	}
	return res;
}

/* counts by outcome */
#define MAX_TALLY 256
typedef struct Tally
{
	char		key[96];
	long		n;
} Tally;

static void
tally(Tally *t, int *nt, const char *key, long n)
{
	for (int i = 0; i < *nt; i++)
		if (strcmp(t[i].key, key) == 0)
		{
			t[i].n += n;
			return;
		}
	if (*nt < MAX_TALLY)
	{
		snprintf(t[*nt].key, sizeof(t[*nt].key), "%s", key);
		t[*nt].n = n;
		(*nt)++;
	}
}

static Tally cast_rejects[MAX_TALLY];
static int	ncast_rejects = 0;
static Tally dead_letters[MAX_TALLY];
static int	ndead_letters = 0;
static Tally skips[MAX_TALLY];
static int	nskips = 0;

/* Is a refusal of the input before lambda_detect saw it an expected one? */
static bool
expected_cast_error(const char *state)
{
	return state != NULL &&
		(strncmp(state, "22", 2) == 0 || strcmp(state, "54001") == 0 || strcmp(state, "54000") == 0);
}

int
main(int argc, char **argv)
{
	long		count = 100000;
	long		round = 500;
	uint64_t	seed = 1;
	const char *samples = NULL;
	Buf			payload = {0};
	Chunk	   *seed_mark;
	double		started;
	long		staged = 0,
				predicted_events = 0,
				predicted_skips = 0,
				predicted_rejects = 0;
	long		total_events = 0,
				total_duplicates = 0,
				total_payloads_ok = 0,
				total_alerts = 0,
				total_rule_runs = 0,
				total_cast = 0;
	long		payload_events = 0,
				payload_skipped = 0,
				payload_rejected = 0,
				payload_mixed = 0;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count = atol(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--round") == 0 && i + 1 < argc)
			round = atol(argv[++i]);
		else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
			samples = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out_dir = argv[++i];
		else
		{
			fprintf(stderr, "usage: %s [--count N] [--seed S] [--round R] [--samples DIR] [--out DIR]\n",
					argv[0]);
			return 2;
		}
	}
	if (count < 1 || round < 1)
	{
		fprintf(stderr, "fuzz: --count and --round must be positive\n");
		return 2;
	}
	rng_state ^= seed * 0x9E3779B97F4A7C15ULL;
	if (rng_state == 0)
		rng_state = 1;

	for (size_t i = 0; i < sizeof(builtin_seeds) / sizeof(*builtin_seeds); i++)
		add_seed(builtin_seeds[i], strlen(builtin_seeds[i]), "built-in");
	if (samples != NULL)
		add_sample_seeds(samples);
	seed_mark = arena;

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "fuzz: could not connect: %s", PQerrorMessage(conn));
		return 2;
	}
	PQclear(must("SET client_min_messages = error"));
	/* ingest_now() must ingest the inbox only, whatever the server's inbox_dir */
	PQclear(must("SET lambda_detect.inbox_dir = ''"));
	PQclear(must("TRUNCATE lambda_detect.inbox, lambda_detect.events, lambda_detect.ingest_errors,"
				 " lambda_detect.ingest_runs, lambda_detect.rule_runs, lambda_detect.alerts,"
				 " lambda_detect.suppressed_matches"));
	if (failures > 0)
		return 1;

	printf("fuzz: %ld payloads from %d seeds, seed %llu, rounds of %ld\n",
		   count, nseeds, (unsigned long long) seed, round);
	fflush(stdout);
	started = now_seconds();

	for (long n = 1; n <= count; n++)
	{
		JNode	   *tree = node_clone(seeds[below(nseeds)]);
		int			k = 0;
		int			mutations = (int) below(5);
		const char *values[1];
		int			lengths[1];
		PGresult   *res;

		if (!one_in(10))
			fresh_ids(tree, n, &k, 0);
		if (one_in(4))
			tree = reshape(tree);
		for (int m = 0; m < mutations; m++)
			mutate_tree(&tree);

		payload.len = 0;
		serialize(tree, &payload);
		if (one_in(4))
			mutate_bytes(&payload);

		values[0] = payload.data;
		lengths[0] = (int) payload.len;
		res = PQexecParams(conn, "SELECT fuzz_stage($1)", 1, NULL, values, lengths, NULL, 0);
		check_connection("fuzz_stage()", n, payload.data, payload.len);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			const char *r = PQgetvalue(res, 0, 0);
			long		e,
						s,
						j;

			if (strncmp(r, "cast ", 5) == 0)
			{
				if (expected_cast_error(r + 5))
				{
					tally(cast_rejects, &ncast_rejects, r + 5, 1);
					total_cast++;
				}
				else
				{
					fprintf(stderr, "fuzz: FAILURE: the jsonb cast of payload %ld failed with %s\n", n, r + 5);
					keep_payload("cast", n, payload.data, payload.len);
					failures++;
				}
			}
			else if (sscanf(r, "ok %ld %ld %ld", &e, &s, &j) == 3)
			{
				staged++;
				total_payloads_ok++;
				predicted_events += e;
				predicted_skips += s;
				predicted_rejects += j;
				if (e > 0 && s + j == 0)
					payload_events++;
				else if (s > 0 && e + j == 0)
					payload_skipped++;
				else if (j > 0 && e + s == 0)
					payload_rejected++;
				else
					payload_mixed++;
			}
			else
			{
				fprintf(stderr, "fuzz: FAILURE: normalize() rows of payload %ld break its contract: %s\n", n, r);
				keep_payload("contract", n, payload.data, payload.len);
				failures++;
			}
		}
		else
		{
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);

			/* text the server refuses before the function runs (bad UTF-8) */
			if (expected_cast_error(state) &&
				(context == NULL || strncmp(context, "unnamed portal parameter", 24) == 0))
			{
				tally(cast_rejects, &ncast_rejects, state, 1);
				total_cast++;
			}
			else
			{
				fprintf(stderr, "fuzz: FAILURE: payload %ld: %s: %s", n, state ? state : "?",
						PQresultErrorMessage(res));
				keep_payload("error", n, payload.data, payload.len);
				failures++;
			}
		}
		PQclear(res);
		arena_reset(seed_mark);

		if (n % round == 0 || n == count)
		{
			long		stored,
						dups,
						skipped,
						errors,
						rows;

			/* store what was staged, exactly as normalize() predicted */
			res = must("SELECT inbox_rows, events, duplicates, skipped, errors FROM lambda_detect.ingest_now()");
			if (PQresultStatus(res) == PGRES_TUPLES_OK)
			{
				rows = atol(PQgetvalue(res, 0, 0));
				stored = atol(PQgetvalue(res, 0, 1));
				dups = atol(PQgetvalue(res, 0, 2));
				skipped = atol(PQgetvalue(res, 0, 3));
				errors = atol(PQgetvalue(res, 0, 4));
				total_events += stored;
				total_duplicates += dups;
				if (rows != staged || stored + dups != predicted_events ||
					skipped != predicted_skips || errors != predicted_rejects)
				{
					fprintf(stderr, "fuzz: FAILURE: round ending at payload %ld: ingest_now() took %ld rows,"
							" stored %ld + %ld duplicates, skipped %ld, dead-lettered %ld;"
							" normalize() predicted %ld rows, %ld events, %ld skips, %ld rejects\n",
							n, rows, stored, dups, skipped, errors,
							staged, predicted_events, predicted_skips, predicted_rejects);
					failures++;
				}
			}
			PQclear(res);
			staged = predicted_events = predicted_skips = predicted_rejects = 0;

			res = must("SELECT sqlstate || ' ' || reason, count(*) FROM lambda_detect.ingest_errors GROUP BY 1");
			for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
			{
				tally(dead_letters, &ndead_letters, PQgetvalue(res, i, 0), atol(PQgetvalue(res, i, 1)));
				if (strstr(PQgetvalue(res, i, 0), "store_failed") != NULL)
				{
					PGresult   *why = must("SELECT sqlstate, message, left(payload::text, 2000)"
										   " FROM lambda_detect.ingest_errors WHERE reason = 'store_failed'");

					for (int w = 0; PQresultStatus(why) == PGRES_TUPLES_OK && w < PQntuples(why); w++)
						fprintf(stderr, "fuzz: FAILURE: a record normalize() accepted could not be stored: %s %s\n  %s\n",
								PQgetvalue(why, w, 0), PQgetvalue(why, w, 1), PQgetvalue(why, w, 2));
					PQclear(why);
					failures++;
				}
			}
			PQclear(res);
			res = must("SELECT r, sum(n::int) FROM lambda_detect.ingest_runs,"
					   " jsonb_each_text(skipped_reasons) AS s(r, n) GROUP BY r");
			for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
				tally(skips, &nskips, PQgetvalue(res, i, 0), atol(PQgetvalue(res, i, 1)));
			PQclear(res);

			/* every rule, over what was just stored */
			res = must("SELECT x.rule, x.status, coalesce(x.error_sqlstate, ''), coalesce(x.error, ''),"
					   " x.alerts_created FROM lambda_detect.rules r,"
					   " LATERAL lambda_detect.run_rule(r.rule) x ORDER BY r.rule");
			for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++)
			{
				total_rule_runs++;
				total_alerts += atol(PQgetvalue(res, i, 4));
				if (strcmp(PQgetvalue(res, i, 1), "succeeded") != 0)
				{
					fprintf(stderr, "fuzz: FAILURE: run of rule %s ending at payload %ld: %s %s %s\n",
							PQgetvalue(res, i, 0), n, PQgetvalue(res, i, 1),
							PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
					failures++;
				}
			}
			PQclear(res);

			PQclear(must("TRUNCATE lambda_detect.inbox, lambda_detect.events, lambda_detect.ingest_errors,"
						 " lambda_detect.ingest_runs, lambda_detect.rule_runs, lambda_detect.alerts,"
						 " lambda_detect.suppressed_matches"));
			if (n % (round * 20) == 0)
			{
				printf("fuzz: %ld payloads, %.1f s, %ld failures\n", n, now_seconds() - started, failures);
				fflush(stdout);
			}
		}
	}

	printf("fuzz: %ld payloads in %.1f s, seed %llu: %s\n", count, now_seconds() - started,
		   (unsigned long long) seed, failures == 0 ? "no crash, no unexpected error" : "FAILED");
	printf("  rejected at the jsonb cast: %ld", total_cast);
	for (int i = 0; i < ncast_rejects; i++)
		printf("%s%s %ld", i == 0 ? " (" : ", ", cast_rejects[i].key, cast_rejects[i].n);
	printf("%s\n", ncast_rejects > 0 ? ")" : "");
	printf("  accepted into the inbox: %ld (payloads whose records all became events %ld,"
		   " all skipped %ld, all dead-lettered %ld, a mix %ld)\n",
		   total_payloads_ok, payload_events, payload_skipped, payload_rejected, payload_mixed);
	printf("  records ingested: %ld events stored, %ld duplicates\n", total_events, total_duplicates);
	printf("  records skipped:");
	for (int i = 0; i < nskips; i++)
		printf("%s %s %ld", i == 0 ? "" : ",", skips[i].key, skips[i].n);
	printf("%s\n", nskips == 0 ? " none" : "");
	printf("  dead-lettered by SQLSTATE and reason:");
	for (int i = 0; i < ndead_letters; i++)
		printf("%s %s %ld", i == 0 ? "" : ",", dead_letters[i].key, dead_letters[i].n);
	printf("%s\n", ndead_letters == 0 ? " none" : "");
	printf("  rule runs: %ld, alerts created: %ld\n", total_rule_runs, total_alerts);
	printf("  failures: %ld\n", failures);
	PQfinish(conn);
	return failures == 0 ? 0 : 1;
}
