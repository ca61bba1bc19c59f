/*-------------------------------------------------------------------------
 *
 * latency.c
 *	  Detection latency: from a client's INSERT of one attack event into
 *	  lambda_detect.inbox to the NOTIFY of its alert reaching a libpq
 *	  client that LISTENs on lambda_detect_alerts.
 *
 * Usage: latency TRIALS [CONNINFO].  Prints one line per trial with the
 * milliseconds, then nothing else; bench/run.sh computes the percentiles.
 * Each trial uses a fresh eventID, so the rule alerts on every one.  The
 * payload names the alert, not its event (lambda_detect.notify_payload is
 * minimal by default): the alert is looked up by id, as a listener does,
 * after the time of arrival is taken.
 *
 * bench/latency.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "libpq-fe.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "latency: could not connect: %s", PQerrorMessage(conn));
		exit(1);
	}
	return conn;
}

/* Whether the alert a notification payload names is the one of event_id. */
static int
alert_of_event(PGconn *conn, const char *payload, const char *event_id)
{
	const char *key = strstr(payload, "\"alert_id\": ");
	char		alert_id[32];
	const char *values[2];
	PGresult   *res;
	int			found;

	if (key == NULL)
		return 0;
	snprintf(alert_id, sizeof(alert_id), "%lld", strtoll(key + strlen("\"alert_id\": "), NULL, 10));
	values[0] = alert_id;
	values[1] = event_id;
	res = PQexecParams(conn,
					   "SELECT 1 FROM lambda_detect.alerts WHERE alert_id = $1::bigint AND event_id = $2",
					   2, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "latency: could not read alert %s: %s", alert_id, PQerrorMessage(conn));
		exit(1);
	}
	found = PQntuples(res) == 1;
	PQclear(res);
	return found;
}

static void
exec_or_die(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "latency: %s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

int
main(int argc, char **argv)
{
	int			trials = argc > 1 ? atoi(argv[1]) : 50;
	const char *conninfo = argc > 2 ? argv[2] : "";
	PGconn	   *listener = connect_or_die(conninfo);
	PGconn	   *writer = connect_or_die(conninfo);
	long		run = (long) time(NULL);

	exec_or_die(listener, "LISTEN lambda_detect_alerts");
	for (int t = 0; t < trials; t++)
	{
		char		event_id[64];
		char		sql[1024];
		double		start;
		double		arrived = 0;
		int			found = 0;

		snprintf(event_id, sizeof(event_id), "latency-%ld-%d", run, t);
		snprintf(sql, sizeof(sql),
				 "INSERT INTO lambda_detect.inbox (source, payload) VALUES ('latency', "
				 "'{\"eventID\": \"%s\", \"eventTime\": \"2026-11-01T10:00:00Z\","
				 " \"eventSource\": \"lambda.amazonaws.com\", \"eventName\": \"AddPermission20150331v2\","
				 " \"awsRegion\": \"us-east-1\", \"recipientAccountId\": \"123456789012\","
				 " \"requestParameters\": {\"action\": \"lambda:InvokeFunction\", \"principal\": \"*\","
				 " \"functionName\": \"latency\", \"statementId\": \"s\"}}')",
				 event_id);
		start = now_ms();
		exec_or_die(writer, sql);
		while (!found)
		{
			fd_set		fds;
			struct timeval tv = {10, 0};
			int			sock = PQsocket(listener);
			PGnotify   *n;

			FD_ZERO(&fds);
			FD_SET(sock, &fds);
			if (select(sock + 1, &fds, NULL, NULL, &tv) <= 0)
			{
				fprintf(stderr, "latency: no alert for %s within 10 s\n", event_id);
				return 1;
			}
			PQconsumeInput(listener);
			arrived = now_ms();
			while ((n = PQnotifies(listener)) != NULL)
			{
				if (!found && alert_of_event(writer, n->extra, event_id))
					found = 1;
				PQfreemem(n);
			}
		}
		printf("%.3f\n", arrived - start);
	}
	PQfinish(listener);
	PQfinish(writer);
	return 0;
}
