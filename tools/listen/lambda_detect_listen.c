/*-------------------------------------------------------------------------
 *
 * lambda_detect_listen.c
 *	  lambda-detect-listen: deliver lambda_detect alerts to a terminal or a
 *	  command, at least once, in order, across restarts and reconnects.
 *
 * NOTIFY is not durable; the alerts table is.  So the client treats a
 * notification only as a wake-up: after connecting it LISTENs first, then
 * reads every alert newer than the last one it delivered (kept in a state
 * file), and reads again each time it is woken.  An alert is delivered at
 * least once; with the same state file, never twice in a row of restarts,
 * and always in alert_id order.
 *
 * tools/listen/lambda_detect_listen.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define CHANNEL				"lambda_detect_alerts"
#define FETCH_LIMIT			"1000"
#define BACKOFF_MAX_SECONDS	30

/* exit codes */
#define EXIT_USAGE			64
#define EXIT_SETUP			1
#define EXIT_EXEC_FAILED	3
#define EXIT_IDLE			4

static const char *progname = "lambda-detect-listen";
static volatile sig_atomic_t stop_requested = 0;

typedef struct Options
{
	const char *conninfo;
	const char *state_file;
	const char *exec_cmd;
	bool		from_now;
	long		count;			/* exit after this many alerts; 0 = never */
	int			idle_timeout;	/* exit after this many quiet seconds; 0 = never */
	int			max_retries;	/* --exec attempts beyond the first */
	bool		quiet;
} Options;

static void
usage(FILE *out)
{
	fprintf(out,
			"NAME\n"
			"    lambda-detect-listen - deliver lambda_detect alerts as JSON lines\n"
			"\n"
			"SYNOPSIS\n"
			"    lambda-detect-listen [OPTION]... [CONNINFO]\n"
			"\n"
			"DESCRIPTION\n"
			"    Connects to the database that holds the lambda_detect extension (CONNINFO is a\n"
			"    libpq connection string or URI; the usual PG* environment variables apply),\n"
			"    listens on channel " CHANNEL " and delivers every new alert, the whole\n"
			"    row of lambda_detect.alerts as one JSON object, to standard output or, with\n"
			"    --exec, to a command.\n"
			"\n"
			"    Notifications only wake the client: alerts are read from the table, so none is\n"
			"    lost while the client is away.  With --state-file, the id of the last delivered\n"
			"    alert survives restarts: delivery resumes after it, in order, without repeats.\n"
			"    A lost connection is retried with backoff (1 s doubling to %d s).\n"
			"\n"
			"OPTIONS\n"
			"    -s, --state-file=PATH   remember the last delivered alert id in PATH. A new state\n"
			"                            file starts from the first alert in the table.\n"
			"    -n, --from-now          with no state yet, start after the newest existing alert\n"
			"    -e, --exec=CMD          run CMD (with /bin/sh -c) once per alert, the JSON on its\n"
			"                            standard input, and LAMBDA_DETECT_ALERT_ID set. A non-zero\n"
			"                            exit is retried with backoff; after --max-retries the client\n"
			"                            stops (exit 3) without marking the alert delivered.\n"
			"    -r, --max-retries=N     retries of a failing --exec command (default 5)\n"
			"    -c, --count=N           exit 0 after delivering N alerts\n"
			"    -t, --idle-timeout=SEC  exit 4 after SEC seconds without a new alert\n"
			"    -q, --quiet             no progress messages on standard error\n"
			"    -h, --help              show this help\n"
			"\n"
			"EXIT STATUS\n"
			"    0 on SIGINT, SIGTERM or --count reached; 1 on a setup error (bad connection\n"
			"    string, extension missing, permission denied, unusable state file); 3 when\n"
			"    --exec keeps failing; 4 on --idle-timeout; 64 on bad usage.\n"
			"\n"
			"EXAMPLES\n"
			"    lambda-detect-listen -s /var/lib/lambda_detect/listen.state 'dbname=postgres'\n"
			"    lambda-detect-listen -s state -e 'curl -sf -H \"Content-Type: application/json\" \\\n"
			"        --data-binary @- https://chat.example/hooks/T000/B000'\n",
			BACKOFF_MAX_SECONDS);
}

static void note(const Options *opts, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
note(const Options *opts, const char *fmt,...)
{
	va_list		args;

	if (opts->quiet)
		return;
	fprintf(stderr, "%s: ", progname);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
}

static void
handle_stop(int signo)
{
	(void) signo;
	stop_requested = 1;
}

/* Reads the last delivered id from the state file; -1 when there is none yet. */
static int64_t
read_state(const char *path)
{
	FILE	   *f;
	int64_t		id;

	if (path == NULL)
		return -1;
	f = fopen(path, "r");
	if (f == NULL)
	{
		if (errno == ENOENT)
			return -1;
		fprintf(stderr, "%s: could not read state file \"%s\": %s\n",
				progname, path, strerror(errno));
		exit(EXIT_SETUP);
	}
	if (fscanf(f, "%" SCNd64, &id) != 1 || id < 0)
	{
		fprintf(stderr, "%s: state file \"%s\" does not hold an alert id\n", progname, path);
		fclose(f);
		exit(EXIT_SETUP);
	}
	fclose(f);
	return id;
}

/*
 * Writes the state file atomically (temporary file, fsync, rename), so a
 * crash leaves either the old or the new id, never a torn one.
 */
static void
write_state(const char *path, int64_t id)
{
	char		tmp[4096];
	FILE	   *f;

	if (path == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%" PRId64 "\n", id) < 0 || fflush(f) != 0 ||
		fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0)
	{
		fprintf(stderr, "%s: could not write state file \"%s\": %s\n",
				progname, path, strerror(errno));
		exit(EXIT_SETUP);
	}
}

/* Runs the --exec command with json on its standard input; returns its exit status. */
static int
run_command(const char *cmd, const char *json, int64_t id)
{
	int			fds[2];
	pid_t		pid;
	int			status;
	size_t		len = strlen(json);
	size_t		off = 0;
	char		idbuf[32];

	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
	{
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0)
	{
		dup2(fds[0], STDIN_FILENO);
		close(fds[0]);
		close(fds[1]);
		snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
		setenv("LAMBDA_DETECT_ALERT_ID", idbuf, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
		_exit(127);
	}
	close(fds[0]);
	signal(SIGPIPE, SIG_IGN);
	while (off < len)
	{
		ssize_t		w = write(fds[1], json + off, len - off);

		if (w <= 0)
			break;				/* the command need not read it all */
		off += w;
	}
	(void) !write(fds[1], "\n", 1);	/* the command need not read it */
	close(fds[1]);
	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * deliver hands one alert to its destination; false when --exec failed
 * every retry (the alert is then not marked delivered).
 */
static bool
deliver(const Options *opts, int64_t id, const char *json)
{
	if (opts->exec_cmd == NULL)
	{
		fputs(json, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		return true;
	}
	for (int attempt = 0; attempt <= opts->max_retries && !stop_requested; attempt++)
	{
		int			rc;

		if (attempt > 0)
		{
			int			delay = 1 << (attempt - 1 < 5 ? attempt - 1 : 5);

			note(opts, "alert %" PRId64 ": command failed, retry %d of %d in %d s",
				 id, attempt, opts->max_retries, delay);
			sleep(delay);
		}
		rc = run_command(opts->exec_cmd, json, id);
		if (rc == 0)
			return true;
		note(opts, "alert %" PRId64 ": command exited with status %d", id, rc);
	}
	return false;
}

/* Explains a setup failure and exits; transient failures return instead. */
static void
fail_if_permanent(PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state == NULL)
		return;
	if (strcmp(state, "42501") == 0)
	{
		fprintf(stderr, "%s: permission denied: %s"
				"hint: grant this role USAGE on schema lambda_detect and SELECT on lambda_detect.alerts\n",
				progname, PQresultErrorMessage(res));
		exit(EXIT_SETUP);
	}
	if (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0)
	{
		fprintf(stderr, "%s: the lambda_detect extension is not installed in this database\n"
				"hint: run CREATE EXTENSION lambda_detect, or connect to the database that has it\n",
				progname);
		exit(EXIT_SETUP);
	}
}

/*
 * catch_up delivers every alert after *last_id, in order, updating the
 * state after each.  Returns the number delivered, or -1 on a lost
 * connection.
 */
static long
catch_up(PGconn *conn, const Options *opts, int64_t *last_id, long delivered_so_far)
{
	long		delivered = 0;

	for (;;)
	{
		char		idbuf[32];
		const char *params[1] = {idbuf};
		PGresult   *res;
		int			n;

		snprintf(idbuf, sizeof(idbuf), "%" PRId64, *last_id);
		res = PQexecParams(conn,
						   "SELECT a.alert_id, pg_catalog.row_to_json(a)::text"
						   "  FROM lambda_detect.alerts a WHERE a.alert_id > $1::int8"
						   " ORDER BY a.alert_id LIMIT " FETCH_LIMIT,
						   1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fail_if_permanent(res);
			note(opts, "reading alerts failed: %s", PQerrorMessage(conn));
			PQclear(res);
			return -1;
		}
		n = PQntuples(res);
		for (int i = 0; i < n && !stop_requested; i++)
		{
			int64_t		id = strtoll(PQgetvalue(res, i, 0), NULL, 10);

			if (!deliver(opts, id, PQgetvalue(res, i, 1)))
			{
				fprintf(stderr, "%s: alert %" PRId64 " could not be delivered: --exec failed %d times; stopping\n",
						progname, id, opts->max_retries + 1);
				PQclear(res);
				exit(EXIT_EXEC_FAILED);
			}
			*last_id = id;
			write_state(opts->state_file, id);
			delivered++;
			if (opts->count > 0 && delivered_so_far + delivered >= opts->count)
			{
				PQclear(res);
				return delivered;
			}
		}
		PQclear(res);
		if (n < atoi(FETCH_LIMIT) || stop_requested)
			return delivered;
	}
}

/* With --quiet, libpq's own notices (a terminated connection) stay quiet too. */
static void
quiet_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/*
 * Connects and LISTENs; NULL (after a message) when the server is
 * unreachable.  A server that answers with a refusal before the client has
 * ever connected (no such database, authentication failed) will go on
 * refusing: that is a setup error, and the client exits.
 */
static PGconn *
connect_and_listen(const Options *opts, int64_t *last_id, bool ever_connected)
{
	PGconn	   *conn = PQconnectdb(opts->conninfo);
	PGresult   *res;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		if (!ever_connected && strstr(PQerrorMessage(conn), "FATAL") != NULL)
		{
			fprintf(stderr, "%s: the server refused the connection: %s",
					progname, PQerrorMessage(conn));
			PQfinish(conn);
			exit(EXIT_SETUP);
		}
		note(opts, "could not connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	if (opts->quiet)
		PQsetNoticeProcessor(conn, quiet_notice, NULL);
	res = PQexec(conn, "SET search_path = pg_catalog, pg_temp; LISTEN " CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		note(opts, "LISTEN failed: %s", PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);

	/* first start without state: from the beginning, or from now */
	if (*last_id < 0)
	{
		res = PQexec(conn, opts->from_now ?
					 "SELECT coalesce(max(alert_id), 0) FROM lambda_detect.alerts" :
					 "SELECT 0");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fail_if_permanent(res);
			note(opts, "reading alerts failed: %s", PQerrorMessage(conn));
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		*last_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		write_state(opts->state_file, *last_id);
	}
	note(opts, "listening on %s in database \"%s\", delivering alerts after id %" PRId64,
		 CHANNEL, PQdb(conn), *last_id);
	return conn;
}

static void
parse_options(int argc, char **argv, Options *opts)
{
	static struct option long_options[] = {
		{"state-file", required_argument, NULL, 's'},
		{"from-now", no_argument, NULL, 'n'},
		{"exec", required_argument, NULL, 'e'},
		{"max-retries", required_argument, NULL, 'r'},
		{"count", required_argument, NULL, 'c'},
		{"idle-timeout", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	char	   *end;

	memset(opts, 0, sizeof(*opts));
	opts->max_retries = 5;
	opts->conninfo = "";
	while ((c = getopt_long(argc, argv, "s:ne:r:c:t:qh", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 's':
				opts->state_file = optarg;
				break;
			case 'n':
				opts->from_now = true;
				break;
			case 'e':
				opts->exec_cmd = optarg;
				break;
			case 'r':
				opts->max_retries = (int) strtol(optarg, &end, 10);
				if (*end != '\0' || opts->max_retries < 0)
					goto bad;
				break;
			case 'c':
				opts->count = strtol(optarg, &end, 10);
				if (*end != '\0' || opts->count < 1)
					goto bad;
				break;
			case 't':
				opts->idle_timeout = (int) strtol(optarg, &end, 10);
				if (*end != '\0' || opts->idle_timeout < 1)
					goto bad;
				break;
			case 'q':
				opts->quiet = true;
				break;
			case 'h':
				usage(stdout);
				exit(0);
			default:
				goto bad;
		}
	}
	if (optind < argc)
		opts->conninfo = argv[optind++];
	if (optind < argc)
		goto bad;
	return;

bad:
	fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
	exit(EXIT_USAGE);
}

int
main(int argc, char **argv)
{
	Options		opts;
	int64_t		last_id;
	int			backoff = 1;
	bool		ever_connected = false;
	long		delivered = 0;
	time_t		last_alert_at = time(NULL);
	struct sigaction sa;
	char	   *errmsg = NULL;
	PQconninfoOption *parsed;

	parse_options(argc, argv, &opts);

	/* a connection string that cannot be parsed will never work: say so now */
	parsed = PQconninfoParse(opts.conninfo, &errmsg);
	if (parsed == NULL)
	{
		fprintf(stderr, "%s: invalid connection string: %s", progname,
				errmsg ? errmsg : "out of memory\n");
		exit(EXIT_SETUP);
	}
	PQconninfoFree(parsed);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	last_id = read_state(opts.state_file);

	while (!stop_requested)
	{
		PGconn	   *conn = connect_and_listen(&opts, &last_id, ever_connected);
		long		n;

		if (conn == NULL)
		{
			note(&opts, "retrying in %d s", backoff);
			sleep(backoff);
			backoff = backoff * 2 > BACKOFF_MAX_SECONDS ? BACKOFF_MAX_SECONDS : backoff * 2;
			continue;
		}
		backoff = 1;
		ever_connected = true;

		/* catch up, then wait for wake-ups; each wake-up reads the table again */
		n = catch_up(conn, &opts, &last_id, delivered);
		while (n >= 0 && !stop_requested)
		{
			PGnotify   *notify;
			fd_set		readable;
			struct timeval tv = {1, 0};
			int			sock = PQsocket(conn);
			bool		woken = false;

			if (n > 0)
				last_alert_at = time(NULL);
			delivered += n;
			if (opts.count > 0 && delivered >= opts.count)
			{
				PQfinish(conn);
				return 0;
			}
			if (opts.idle_timeout > 0 && time(NULL) - last_alert_at >= opts.idle_timeout)
			{
				note(&opts, "no new alert for %d s; exiting", opts.idle_timeout);
				PQfinish(conn);
				return EXIT_IDLE;
			}

			FD_ZERO(&readable);
			FD_SET(sock, &readable);
			if (select(sock + 1, &readable, NULL, NULL, &tv) < 0)
			{
				if (errno == EINTR)
					continue;
				break;
			}
			if (!PQconsumeInput(conn))
			{
				note(&opts, "connection lost: %s", PQerrorMessage(conn));
				n = -1;
				break;
			}
			while ((notify = PQnotifies(conn)) != NULL)
			{
				woken = true;
				PQfreemem(notify);
			}
			n = woken ? catch_up(conn, &opts, &last_id, delivered) : 0;
		}
		PQfinish(conn);
		if (n < 0 && !stop_requested)
		{
			note(&opts, "reconnecting in %d s", backoff);
			sleep(backoff);
		}
	}
	note(&opts, "stopped after delivering %ld alerts", delivered);
	return 0;
}
