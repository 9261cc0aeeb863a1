/*
 * test/bench/listener.c - a LISTEN client that measures how long event
 * notifications take to arrive (used by test/bench/notify.sh).
 *
 * Usage: listener [-d CONNINFO] [-s SILENCE] [-e END_CHANNEL] [-o FILE]
 *                 [-r READY_FILE] CHANNEL...
 *
 *   -d CONNINFO     libpq connection string (default "": PGHOST, PGPORT, ...)
 *   -s SILENCE      stop after SILENCE seconds without a notification
 *                   (default 10; 0: never)
 *   -e END_CHANNEL  LISTEN on this channel too and stop at its first
 *                   notification (a NOTIFY sent after the last event's one
 *                   arrives after it: the queue is ordered)
 *   -o FILE         write "stream sequence_number" of every event received,
 *                   one line each
 *   -r READY_FILE   create this file once every LISTEN is in effect
 *
 * It also stops on SIGTERM or SIGINT.  Each notification on a CHANNEL is an
 * event message of eventsourcing: JSON with "stream", "sequence_number" and
 * "timestamp" (the event's created_at in UTC, "2026-01-19T12:00:00.123456Z",
 * trailing zeros of the fraction omitted).  Its latency is the receive time
 * (CLOCK_REALTIME once the bytes are read from the socket) minus that
 * timestamp, so the client must run on the server's machine (same clock).
 *
 * At the end it prints one line on stdout:
 *
 *   count=N distinct=N duplicates=N out_of_order=N gaps=N unparsed=N
 *   min_ms=X p50_ms=X p90_ms=X p99_ms=X max_ms=X end=signal|silence|channel|error
 *
 * duplicates: the same (stream, sequence_number) received again;
 * out_of_order: a sequence number lower than one received before on its
 * stream (not a duplicate); gaps: a sequence number more than one above the
 * highest received before on its stream (a notification missing, or still
 * to come out of order).  Exit status 0, or 1 on a connection or usage error.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" \
 *           -o listener listener.c -L"$(pg_config --libdir)" -lpq
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static volatile sig_atomic_t got_signal = 0;

static void
on_signal(int signo)
{
	(void) signo;
	got_signal = 1;
}

static void *
xrealloc(void *p, size_t size)
{
	void	   *q = realloc(p, size);

	if (q == NULL)
	{
		fprintf(stderr, "listener: out of memory\n");
		exit(1);
	}
	return q;
}

static uint64_t
hash_bytes(const char *s, size_t len)
{
	uint64_t	h = 14695981039346656037ULL;	/* FNV-1a */

	while (len-- > 0)
		h = (h ^ (unsigned char) *s++) * 1099511628211ULL;
	return h;
}

/* ---- streams: name -> highest sequence number received ---- */

typedef struct Stream
{
	char	   *name;			/* NULL: free slot */
	int64_t		max_seq;
} Stream;

static Stream *streams;
static size_t nstreams_slots, nstreams;

static Stream *
stream_lookup(const char *name)
{
	size_t		i;

	if (2 * (nstreams + 1) > nstreams_slots)
	{
		Stream	   *old = streams;
		size_t		oldn = nstreams_slots;

		nstreams_slots = oldn ? 2 * oldn : 1024;
		streams = xrealloc(NULL, nstreams_slots * sizeof(Stream));
		memset(streams, 0, nstreams_slots * sizeof(Stream));
		for (i = 0; i < oldn; i++)
		{
			size_t		j;

			if (old[i].name == NULL)
				continue;
			j = hash_bytes(old[i].name, strlen(old[i].name)) & (nstreams_slots - 1);
			while (streams[j].name != NULL)
				j = (j + 1) & (nstreams_slots - 1);
			streams[j] = old[i];
		}
		free(old);
	}
	i = hash_bytes(name, strlen(name)) & (nstreams_slots - 1);
	while (streams[i].name != NULL && strcmp(streams[i].name, name) != 0)
		i = (i + 1) & (nstreams_slots - 1);
	if (streams[i].name == NULL)
	{
		streams[i].name = strdup(name);
		if (streams[i].name == NULL)
		{
			fprintf(stderr, "listener: out of memory\n");
			exit(1);
		}
		streams[i].max_seq = -1;
		nstreams++;
	}
	return &streams[i];
}

/* ---- events received: set of (stream, sequence_number) ---- */

typedef struct Seen
{
	const char *name;			/* the Stream's name (its own copy, never
								 * moved); NULL: free slot */
	int64_t		seq;
} Seen;

static Seen *seen;
static size_t nseen_slots, nseen;

static uint64_t
seen_hash(const char *name, int64_t seq)
{
	return hash_bytes(name, strlen(name)) ^ ((uint64_t) seq * 0x9E3779B97F4A7C15ULL);
}

/* add (stream, seq); false if it was there already */
static int
seen_add(const char *name, int64_t seq)
{
	size_t		i;

	if (2 * (nseen + 1) > nseen_slots)
	{
		Seen	   *old = seen;
		size_t		oldn = nseen_slots;

		nseen_slots = oldn ? 2 * oldn : 65536;
		seen = xrealloc(NULL, nseen_slots * sizeof(Seen));
		memset(seen, 0, nseen_slots * sizeof(Seen));
		for (i = 0; i < oldn; i++)
		{
			size_t		j;

			if (old[i].name == NULL)
				continue;
			j = seen_hash(old[i].name, old[i].seq) & (nseen_slots - 1);
			while (seen[j].name != NULL)
				j = (j + 1) & (nseen_slots - 1);
			seen[j] = old[i];
		}
		free(old);
	}
	i = seen_hash(name, seq) & (nseen_slots - 1);
	while (seen[i].name != NULL)
	{
		if (seen[i].name == name && seen[i].seq == seq)
			return 0;
		i = (i + 1) & (nseen_slots - 1);
	}
	seen[i].name = name;
	seen[i].seq = seq;
	nseen++;
	return 1;
}

/* ---- payload parsing ---- */

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant) */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era,
				yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" -> microseconds since the epoch */
static int
parse_utc_timestamp(const char *s, int64_t *usec)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				n = 0;
	int64_t		frac = 0,
				scale = 1000000;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return 0;
	s += n;
	if (*s == '.')
	{
		for (s++; *s >= '0' && *s <= '9'; s++)
		{
			if (scale > 1)
			{
				scale /= 10;
				frac += (*s - '0') * scale;
			}
		}
	}
	if (*s != 'Z')
		return 0;
	*usec = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * INT64_C(60000000)
		+ (int64_t) sec * 1000000 + frac;
	return 1;
}

/*
 * The members we need.  "stream" and "sequence_number" come before "data"
 * (so their first occurrence is the event's); "timestamp" comes after it,
 * without the blank JSONB output puts after the colons of "data"'s keys.
 */
static int
parse_payload(const char *p, char *stream, size_t streamsize, int64_t *seq,
			  int64_t *ts)
{
	const char *s,
			   *t;
	size_t		len;
	char	   *end;

	if ((s = strstr(p, "\"stream\":\"")) == NULL)
		return 0;
	s += strlen("\"stream\":\"");
	if ((t = strchr(s, '"')) == NULL || (len = (size_t) (t - s)) >= streamsize ||
		memchr(s, '\\', len) != NULL)
		return 0;				/* escaped names are not used here */
	memcpy(stream, s, len);
	stream[len] = '\0';

	if ((s = strstr(p, "\"sequence_number\":")) == NULL)
		return 0;
	errno = 0;
	*seq = strtoll(s + strlen("\"sequence_number\":"), &end, 10);
	if (errno != 0 || end == s + strlen("\"sequence_number\":"))
		return 0;

	if ((s = strstr(p, ",\"timestamp\":\"")) == NULL)
		return 0;
	while ((t = strstr(s + 1, ",\"timestamp\":\"")) != NULL)
		s = t;					/* the last one: the event's */
	return parse_utc_timestamp(s + strlen(",\"timestamp\":\""), ts);
}

/* ---- results ---- */

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array */
static double
percentile(const double *v, size_t n, double p)
{
	size_t		rank;

	if (n == 0)
		return 0;
	rank = (size_t) (p / 100.0 * (double) n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static int64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
usage(void)
{
	fprintf(stderr, "usage: listener [-d CONNINFO] [-s SILENCE] [-e END_CHANNEL] [-o FILE] [-r READY_FILE] CHANNEL...\n");
	exit(1);
}

/* LISTEN on a channel (quoted as an identifier) */
static int
listen_on(PGconn *conn, const char *channel)
{
	char	   *ident = PQescapeIdentifier(conn, channel, strlen(channel));
	char	   *sql;
	PGresult   *res;
	int			ok;

	if (ident == NULL)
		return 0;
	sql = xrealloc(NULL, strlen(ident) + 8);
	sprintf(sql, "LISTEN %s", ident);
	res = PQexec(conn, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "listener: %s: %s", sql, PQerrorMessage(conn));
	PQclear(res);
	free(sql);
	PQfreemem(ident);
	return ok;
}

int
main(int argc, char **argv)
{
	const char *conninfo = "";
	const char *end_channel = NULL;
	const char *out_path = NULL;
	const char *ready_path = NULL;
	double		silence = 10;
	FILE	   *out = NULL;
	PGconn	   *conn;
	struct sigaction sa;
	double	   *lat = NULL;
	size_t		nlat = 0,
				lat_slots = 0;
	long long	count = 0,
				duplicates = 0,
				out_of_order = 0,
				gaps = 0,
				unparsed = 0;
	int64_t		last_activity;
	const char *end = "signal";
	int			opt,
				i,
				rc = 0;

	while ((opt = getopt(argc, argv, "d:s:e:o:r:")) != -1)
	{
		switch (opt)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 's':
				silence = atof(optarg);
				break;
			case 'e':
				end_channel = optarg;
				break;
			case 'o':
				out_path = optarg;
				break;
			case 'r':
				ready_path = optarg;
				break;
			default:
				usage();
		}
	}
	if (optind >= argc)
		usage();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: select() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "listener: connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	for (i = optind; i < argc; i++)
		if (!listen_on(conn, argv[i]))
			return 1;
	if (end_channel != NULL && !listen_on(conn, end_channel))
		return 1;
	if (out_path != NULL && (out = fopen(out_path, "w")) == NULL)
	{
		perror(out_path);
		return 1;
	}
	if (ready_path != NULL)
	{
		FILE	   *f = fopen(ready_path, "w");

		if (f == NULL)
		{
			perror(ready_path);
			return 1;
		}
		fclose(f);
	}

	last_activity = now_usec();
	for (;;)
	{
		int			sock = PQsocket(conn);
		fd_set		rfds;
		struct timeval tv = {0, 100000};
		int64_t		received;
		PGnotify   *n;
		int			done = 0;

		if (got_signal)
			break;
		if (sock < 0)
		{
			fprintf(stderr, "listener: connection lost\n");
			end = "error";
			rc = 1;
			break;
		}
		if (silence > 0 && (double) (now_usec() - last_activity) >= silence * 1e6)
		{
			end = "silence";
			break;
		}
		FD_ZERO(&rfds);
		FD_SET(sock, &rfds);
		if (select(sock + 1, &rfds, NULL, NULL, &tv) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("select");
			end = "error";
			rc = 1;
			break;
		}
		if (!FD_ISSET(sock, &rfds))
			continue;
		if (!PQconsumeInput(conn))
		{
			fprintf(stderr, "listener: %s", PQerrorMessage(conn));
			end = "error";
			rc = 1;
			break;
		}
		received = now_usec();
		while ((n = PQnotifies(conn)) != NULL)
		{
			char		name[256];
			int64_t		seq,
						ts;
			Stream	   *st;

			last_activity = received;
			if (end_channel != NULL && strcmp(n->relname, end_channel) == 0)
			{
				end = "channel";
				done = 1;
			}
			else if (!parse_payload(n->extra, name, sizeof(name), &seq, &ts))
			{
				if (unparsed++ < 3)
					fprintf(stderr, "listener: payload not understood: %.200s\n", n->extra);
			}
			else
			{
				count++;
				if (nlat == lat_slots)
				{
					lat_slots = lat_slots ? 2 * lat_slots : 65536;
					lat = xrealloc(lat, lat_slots * sizeof(double));
				}
				lat[nlat++] = (double) (received - ts) / 1000.0;
				st = stream_lookup(name);
				if (!seen_add(st->name, seq))
					duplicates++;
				else
				{
					if (seq < st->max_seq)
						out_of_order++;
					else if (st->max_seq >= 0 && seq > st->max_seq + 1)
						gaps++;
					if (seq > st->max_seq)
						st->max_seq = seq;
					if (out != NULL)
						fprintf(out, "%s %lld\n", name, (long long) seq);
				}
			}
			PQfreemem(n);
		}
		if (done)
			break;
	}

	if (out != NULL && fclose(out) != 0)
	{
		perror(out_path);
		rc = 1;
	}
	PQfinish(conn);

	qsort(lat, nlat, sizeof(double), cmp_double);
	printf("count=%lld distinct=%zu duplicates=%lld out_of_order=%lld gaps=%lld unparsed=%lld "
		   "min_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f end=%s\n",
		   count, nseen, duplicates, out_of_order, gaps, unparsed,
		   nlat ? lat[0] : 0.0, percentile(lat, nlat, 50), percentile(lat, nlat, 90),
		   percentile(lat, nlat, 99), nlat ? lat[nlat - 1] : 0.0, end);
	free(lat);
	return rc;
}
