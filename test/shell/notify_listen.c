/*
 * test/shell/notify_listen.c - the LISTEN client of 070_notify_worker.sh.
 *
 * Usage: notify_listen [-d CONNINFO] [-r READY_FILE] [-x STOP_FILE] [-R]
 *                      [-t SECONDS] [-s STREAM,STREAM,...] CHANNEL...
 *
 *   -d CONNINFO    libpq connection string (default "": PGHOST, PGPORT, ...)
 *   -r READY_FILE  created once the first LISTEN (and catch-up) is done
 *   -x STOP_FILE   exit once this file exists (after a last round trip that
 *                  collects what the server has sent so far)
 *   -R             reconnect when the connection is lost (retrying every
 *                  200 ms for at most -t seconds, default 60); without -R a
 *                  lost connection ends the program with status 2
 *   -s STREAMS     be a subscriber of these streams (comma separated): after
 *                  every LISTEN, catch up each stream with es_sync from the
 *                  last sequence number applied, then apply live
 *                  notifications in sequence order, dropping those already
 *                  applied; a notification above the next expected number is
 *                  a gap: it is reported, then the stream is caught up
 *
 * Output on stdout, one line per fact, fields separated by tabs, flushed:
 *
 *   C  conn                          connection conn (1, 2, ...) is listening
 *   L  conn  message                 connection conn was lost
 *   N  conn  channel  payload        a notification, as received
 *   A  stream  seq  position  how    applied (subscriber; how = sync|live)
 *   D  stream  seq  applied          dropped: already applied (subscriber)
 *   G  stream  seq  applied          gap: seq > applied + 1 (subscriber)
 *   U  payload                       a payload without stream/sequence_number
 *   E  message                       an error (then exit status 1)
 *
 * The payload is parsed only for the subscriber: "stream", "sequence_number"
 * and "global_position" are the first members after "type" in an event
 * message, before "data", so their first occurrence is the event's own.
 *
 * Build: cc -O2 -Wall -I"$(pg_config --includedir)" -o notify_listen
 *           notify_listen.c -L"$(pg_config --libdir)" -lpq
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_STREAMS 256

typedef struct Stream
{
	char	   *name;
	long long	applied;
} Stream;

static Stream streams[MAX_STREAMS];
static int	nstreams = 0;
static int	subscriber = 0;
static int	conn_no = 0;

static void
out(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
file_exists(const char *path)
{
	return path != NULL && access(path, F_OK) == 0;
}

static Stream *
find_stream(const char *name)
{
	int			i;

	for (i = 0; i < nstreams; i++)
		if (strcmp(streams[i].name, name) == 0)
			return &streams[i];
	return NULL;
}

/*
 * Catch stream s up with es_sync from its last applied sequence number.
 * Returns 0, or -1 if the query failed (connection lost).
 */
static int
catch_up(PGconn *conn, Stream *s)
{
	char		last[32];
	const char *params[2];
	PGresult   *res;
	int			i;

	snprintf(last, sizeof(last), "%lld", s->applied);
	params[0] = s->name;
	params[1] = last;
	res = PQexecParams(conn,
					   "SELECT (e->>'sequence_number')::bigint, (e->>'global_position')::bigint"
					   "  FROM jsonb_array_elements(es_sync($1, $2::bigint)->'events')"
					   "       WITH ORDINALITY AS x(e, n) ORDER BY n",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		PQclear(res);
		return -1;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		long long	seq = atoll(PQgetvalue(res, i, 0));

		if (seq <= s->applied)
			out("D\t%s\t%lld\t%lld\n", s->name, seq, s->applied);
		else
		{
			if (seq != s->applied + 1)
				out("G\t%s\t%lld\t%lld\n", s->name, seq, s->applied);
			out("A\t%s\t%lld\t%s\tsync\n", s->name, seq, PQgetvalue(res, i, 1));
			s->applied = seq;
		}
	}
	PQclear(res);
	return 0;
}

/* the value after "key": in payload, or NULL */
static const char *
member(const char *payload, const char *key)
{
	const char *p = strstr(payload, key);

	return p == NULL ? NULL : p + strlen(key);
}

/* one live notification; -1 if a catch-up query failed */
static int
handle_notification(PGconn *conn, const PGnotify *n)
{
	const char *sp,
			   *qp,
			   *gp,
			   *end;
	char		name[256];
	long long	seq;
	Stream	   *s;

	out("N\t%d\t%s\t%s\n", conn_no, n->relname, n->extra);
	if (!subscriber)
		return 0;

	sp = member(n->extra, "\"stream\":\"");
	qp = member(n->extra, "\"sequence_number\":");
	gp = member(n->extra, "\"global_position\":");
	end = sp == NULL ? NULL : strchr(sp, '"');
	if (sp == NULL || qp == NULL || gp == NULL || end == NULL ||
		(size_t) (end - sp) >= sizeof(name))
	{
		out("U\t%s\n", n->extra);
		return 0;
	}
	memcpy(name, sp, end - sp);
	name[end - sp] = '\0';
	seq = atoll(qp);
	s = find_stream(name);
	if (s == NULL)
		return 0;				/* not one of ours */
	if (seq <= s->applied)
	{
		out("D\t%s\t%lld\t%lld\n", s->name, seq, s->applied);
		return 0;
	}
	if (seq != s->applied + 1)
	{
		/* a notification is missing: say so, then read what was missed */
		out("G\t%s\t%lld\t%lld\n", s->name, seq, s->applied);
		if (catch_up(conn, s) < 0)
			return -1;
		if (seq <= s->applied)
		{
			out("D\t%s\t%lld\t%lld\n", s->name, seq, s->applied);
			return 0;
		}
	}
	out("A\t%s\t%lld\t%lld\tlive\n", s->name, seq, atoll(gp));
	s->applied = seq;
	return 0;
}

/* connect, LISTEN, catch up; NULL if any of it failed */
static PGconn *
start(const char *conninfo, char **channels, int nchannels)
{
	PGconn	   *conn = PQconnectdb(conninfo);
	int			i;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		PQfinish(conn);
		return NULL;
	}
	for (i = 0; i < nchannels; i++)
	{
		char	   *ident = PQescapeIdentifier(conn, channels[i], strlen(channels[i]));
		char		sql[512];
		PGresult   *res;

		snprintf(sql, sizeof(sql), "LISTEN %s", ident);
		PQfreemem(ident);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}
	conn_no++;
	out("C\t%d\n", conn_no);
	for (i = 0; i < nstreams; i++)
		if (catch_up(conn, &streams[i]) < 0)
		{
			out("L\t%d\tcatch-up failed: %s", conn_no, PQerrorMessage(conn));
			PQfinish(conn);
			return NULL;
		}
	return conn;
}

/* collect and handle what has arrived; -1 if the connection is gone */
static int
drain(PGconn *conn)
{
	PGnotify   *n;

	if (!PQconsumeInput(conn))
		return -1;
	while ((n = PQnotifies(conn)) != NULL)
	{
		int			rc = handle_notification(conn, n);

		PQfreemem(n);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *conninfo = "";
	const char *ready = NULL;
	const char *stop = NULL;
	int			reconnect = 0;
	double		retry_limit = 60;
	int			opt;
	PGconn	   *conn;

	while ((opt = getopt(argc, argv, "d:r:x:Rt:s:")) != -1)
	{
		switch (opt)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'r':
				ready = optarg;
				break;
			case 'x':
				stop = optarg;
				break;
			case 'R':
				reconnect = 1;
				break;
			case 't':
				retry_limit = atof(optarg);
				break;
			case 's':
				{
					char	   *list = strdup(optarg);
					char	   *tok;

					subscriber = 1;
					for (tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ","))
					{
						if (nstreams == MAX_STREAMS)
						{
							fprintf(stderr, "notify_listen: too many streams\n");
							return 1;
						}
						streams[nstreams].name = tok;
						streams[nstreams].applied = 0;
						nstreams++;
					}
				}
				break;
			default:
				fprintf(stderr, "usage: notify_listen [-d CONNINFO] [-r READY] [-x STOP] [-R] [-t SECONDS] [-s STREAMS] CHANNEL...\n");
				return 1;
		}
	}
	if (optind >= argc)
	{
		fprintf(stderr, "notify_listen: no channel\n");
		return 1;
	}

	conn = start(conninfo, argv + optind, argc - optind);
	if (conn == NULL)
	{
		out("E\tcould not connect and listen\n");
		return 1;
	}
	if (ready != NULL)
	{
		FILE	   *f = fopen(ready, "w");

		if (f != NULL)
			fclose(f);
	}

	for (;;)
	{
		fd_set		rfds;
		struct timeval tv = {0, 100000};
		int			sock = PQsocket(conn);
		int			lost = 0;

		if (file_exists(stop))
		{
			/* a last round trip: whatever was sent before it is read */
			PGresult   *res = PQexec(conn, "SELECT 1");

			PQclear(res);
			(void) drain(conn);
			PQfinish(conn);
			return 0;
		}
		FD_ZERO(&rfds);
		FD_SET(sock, &rfds);
		if (select(sock + 1, &rfds, NULL, NULL, &tv) < 0 && errno != EINTR)
		{
			out("E\tselect: %s\n", strerror(errno));
			return 1;
		}
		if (drain(conn) < 0 || PQstatus(conn) != CONNECTION_OK)
			lost = 1;
		if (!lost)
			continue;

		{
			char	   *msg = PQerrorMessage(conn);
			char	   *nl;
			double		since = now_s();
			struct timespec pause = {0, 200000000};

			msg = strdup(msg);
			while ((nl = strchr(msg, '\n')) != NULL)
				*nl = ' ';
			out("L\t%d\t%s\n", conn_no, msg);
			free(msg);
			PQfinish(conn);
			if (!reconnect)
				return 2;
			for (conn = NULL; conn == NULL;)
			{
				if (file_exists(stop))
					return 0;
				if (now_s() - since > retry_limit)
				{
					out("E\tcould not reconnect within %.0f s\n", retry_limit);
					return 1;
				}
				nanosleep(&pause, NULL);
				conn = start(conninfo, argv + optind, argc - optind);
			}
		}
	}
}
