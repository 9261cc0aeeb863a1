/*-------------------------------------------------------------------------
 *
 * es-relay.c
 *	  The reference WebSocket relay of the eventsourcing extension.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  relay/es-relay.c
 *
 *-------------------------------------------------------------------------
 *
 * Clients connect to ws://HOST:PORT/streams/<stream>?user_id=..&username=..
 * Each text frame becomes SELECT es_handle(stream, frame, user_id, username)
 * on one connection of a small pool, and a non-NULL reply goes back to the
 * sender.  One more connection LISTENs on es_<category> for the categories
 * of the connected streams; each notification goes to every client of its
 * stream, verbatim.  The database validates, orders and answers: the relay
 * only moves bytes.
 *
 * One thread, one loop: libwebsockets' loop also watches the libpq sockets,
 * adopted as raw file descriptors (dup()s: lws closes what it adopts), and
 * libpq runs with its nonblocking API only.  Timers serve the reconnection
 * backoff, never to look for data.
 *
 * Ordering:
 * - a client's frames are answered one at a time, in order (an action may
 *   need the previous one), different clients' frames concurrently;
 * - a client's frames wait until the LISTEN of its category is in effect,
 *   so that what its sync does not return is notified;
 * - after the LISTEN connection was lost (notifications may be lost with
 *   it), once it listens again every client gets {"type":"resync"}.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <libwebsockets.h>

#define MAX_FRAME		(1024 * 1024)	/* larger client frames: close 1009 */
#define MAX_QUEUE_BYTES (4 * 1024 * 1024)	/* queued per client, with --max-queue */
#define MAX_WAITING		64		/* frames a client may have waiting */
#define MAX_STREAM		200		/* bytes of a stream name, as the extension */
#define MAX_CATEGORY	50
#define MAX_ARG			1024	/* bytes of a user_id or username */
#define STREAM_BUCKETS	1024
#define BACKOFF_MIN		(100 * 1000)	/* us */
#define BACKOFF_MAX		(5 * LWS_USEC_PER_SEC)

/* an outgoing text message, shared by the queues it is in */
typedef struct Msg
{
	int			refs;
	size_t		len;
	unsigned char buf[];		/* LWS_PRE bytes for the frame header, text */
} Msg;

/* a client frame waiting for its turn */
typedef struct Frame
{
	struct Frame *next;
	Msg		   *local;			/* the relay's own reply, or NULL: the DB's */
	char		text[];
} Frame;

enum
{
	LISTEN_NEW, LISTEN_SENT, LISTEN_DONE
};

typedef struct Category
{
	struct Category *next;
	int			state;
	char		name[];
} Category;

typedef struct Session Session;

typedef struct Stream
{
	struct Stream *next;		/* hash chain */
	Category   *cat;
	Session    *sessions;
	char		name[];
} Stream;

struct Session
{
	struct lws *wsi;			/* NULL once closed */
	Stream	   *stream;
	Session    *next, *prev;	/* clients of the stream */
	Session    *next_ready;
	bool		ready;			/* in the ready queue */
	bool		busy;			/* a frame of ours is in the database */
	bool		doomed;			/* closing: its queue overflowed */
	bool		paused;			/* not reading: too many frames waiting */
	char	   *user_id, *username;
	char	   *rx;				/* the frame being received */
	size_t		rx_len, rx_cap;
	bool		rx_started, rx_binary;
	Frame	   *in_head, *in_tail;
	int			n_in;
	Msg		  **out;			/* ring of max_queue */
	int			out_head, out_n;
	size_t		out_bytes;
};

enum
{
	DB_DOWN, DB_CONNECTING, DB_IDLE, DB_BUSY
};

typedef struct DbConn
{
	int			id;				/* 0: the LISTEN connection */
	PGconn	   *pg;
	struct lws *wsi;			/* watches a dup() of PQsocket(pg) */
	int			state;
	bool		flushing;		/* PQflush left data to send */
	bool		in_writeable;
	bool		ever_connected;
	bool		listen_failed;
	lws_usec_t	backoff;
	lws_sorted_usec_list_t retry_sul, write_sul;
	Session    *req;			/* pool: whose frame is in flight */
} DbConn;

static struct lws_context *context;
static struct lws_vhost *vhost;
static const char *dsn;
static int	max_queue = 1000;
static bool verbose;
static volatile sig_atomic_t interrupted;

static DbConn conns[1 + 64];	/* conns[0] LISTENs, the others the pool */
static int	nconns = 1 + 4;
static Category *categories;
static Stream *streams[STREAM_BUCKETS];
static Session *ready_head, *ready_tail;
static bool resync_pending;

static void db_lost(DbConn *c, const char *why);
static void dispatch(void);
static void listen_kick(void);

/* one line on stderr (libpq's multi-line messages are joined) */
static void
log_msg(const char *fmt,...)
{
	char		line[1024];
	char	   *in,
			   *out;
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (in = out = line; *in; in++)
	{
		char		ch = *in == '\n' || *in == '\t' ? ' ' : *in;

		if (ch != ' ' || (out > line && out[-1] != ' '))
			*out++ = ch;
	}
	while (out > line && out[-1] == ' ')
		out--;
	*out = '\0';
	fprintf(stderr, "es-relay: %s\n", line);
}

/* out of memory ends the relay: its clients reconnect to a new one */
static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
	{
		log_msg("out of memory");
		exit(1);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	return s ? strcpy(xmalloc(strlen(s) + 1), s) : NULL;
}

/* ---- the stream of a notification ------------------------------------- */

/*
 * The stream of a notification.  The extension writes its payloads as
 * {"type":"event","stream":<escape_json(stream)>,... (src/message.c), and
 * escape_json changes only '"', '\\' and control characters, which the
 * relay refuses in stream names (valid_stream): so the name is the bytes up
 * to the next quote.  Its length, or -1 for anything else.
 */
static int
payload_stream(const char *payload, const char **name)
{
	static const char prefix[] = "{\"type\":\"event\",\"stream\":\"";
	const char *end;

	if (strncmp(payload, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	*name = payload + sizeof(prefix) - 1;
	end = strchr(*name, '"');
	if (end == NULL || memchr(*name, '\\', end - *name) != NULL)
		return -1;
	return end - *name;
}

/* ---- messages ---------------------------------------------------------- */

static Msg *
msg_new(const char *text, size_t len)
{
	Msg		   *m = xmalloc(sizeof(Msg) + LWS_PRE + len);

	m->refs = 0;
	m->len = len;
	memcpy(m->buf + LWS_PRE, text, len);
	return m;
}

static void
msg_unref(Msg *m)
{
	if (--m->refs <= 0)
		free(m);
}

/* a growing string */
typedef struct Buf
{
	char	   *p;
	size_t		len, cap;
} Buf;

static void
buf_put(Buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		b->cap = (b->len + n + 1) * 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
		{
			log_msg("out of memory");
			exit(1);
		}
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_str(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* s as a JSON string (s is UTF-8: libpq's client_encoding is UTF8) */
static void
buf_json(Buf *b, const char *s)
{
	buf_put(b, "\"", 1);
	for (; *s; s++)
	{
		char		esc[8];

		if (*s == '"' || *s == '\\')
		{
			esc[0] = '\\';
			esc[1] = *s;
			buf_put(b, esc, 2);
		}
		else if ((unsigned char) *s < 0x20)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char) *s);
			buf_put(b, esc, 6);
		}
		else
			buf_put(b, s, 1);
	}
	buf_put(b, "\"", 1);
}

/* {"type":"error","code":..,"message":..,"detail":..?} */
static Msg *
error_msg(const char *code, const char *message, const char *detail)
{
	Buf			b = {0};
	Msg		   *m;

	buf_str(&b, "{\"type\":\"error\",\"code\":");
	buf_json(&b, code);
	buf_str(&b, ",\"message\":");
	buf_json(&b, message);
	if (detail)
	{
		buf_str(&b, ",\"detail\":");
		buf_json(&b, detail);
	}
	buf_str(&b, "}");
	m = msg_new(b.p, b.len);
	free(b.p);
	return m;
}

/* ---- streams and categories -------------------------------------------- */

static unsigned int
hash(const char *s, size_t len)
{
	unsigned int h = 2166136261u;

	while (len-- > 0)
		h = (h ^ (unsigned char) *s++) * 16777619u;
	return h % STREAM_BUCKETS;
}

static Stream *
stream_find(const char *name, size_t len)
{
	Stream	   *st;

	for (st = streams[hash(name, len)]; st; st = st->next)
		if (strncmp(st->name, name, len) == 0 && st->name[len] == '\0')
			return st;
	return NULL;
}

/*
 * category-id: the category [a-z][a-z0-9_]*, at most 50 bytes, the id not
 * empty (as the extension wants), and without the characters JSON escapes
 * (see payload_stream).
 */
static bool
valid_stream(const char *name)
{
	const char *p = name;

	if (strlen(name) > MAX_STREAM || *p < 'a' || *p > 'z')
		return false;
	while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
		p++;
	if (*p != '-' || p - name > MAX_CATEGORY || p[1] == '\0')
		return false;
	for (; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == '"' || *p == '\\')
			return false;
	return true;
}

static void
stream_join(Session *s, const char *name)
{
	Stream	   *st = stream_find(name, strlen(name));

	if (st == NULL)
	{
		size_t		catlen = strcspn(name, "-");
		Category   *cat;

		for (cat = categories; cat; cat = cat->next)
			if (strlen(cat->name) == catlen && memcmp(cat->name, name, catlen) == 0)
				break;
		if (cat == NULL)
		{
			/* categories stay LISTENed to for the relay's life */
			cat = xmalloc(sizeof(Category) + catlen + 1);
			memcpy(cat->name, name, catlen);
			cat->name[catlen] = '\0';
			cat->state = LISTEN_NEW;
			cat->next = categories;
			categories = cat;
		}
		st = xmalloc(sizeof(Stream) + strlen(name) + 1);
		strcpy(st->name, name);
		st->cat = cat;
		st->sessions = NULL;
		st->next = streams[hash(name, strlen(name))];
		streams[hash(name, strlen(name))] = st;
	}
	s->stream = st;
	s->prev = NULL;
	s->next = st->sessions;
	if (st->sessions)
		st->sessions->prev = s;
	st->sessions = s;
	listen_kick();
}

static void
stream_leave(Session *s)
{
	Stream	   *st = s->stream;
	Stream	  **pp;

	if (s->prev)
		s->prev->next = s->next;
	else
		st->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (st->sessions)
		return;
	for (pp = &streams[hash(st->name, strlen(st->name))]; *pp != st; pp = &(*pp)->next)
		;
	*pp = st->next;
	free(st);
}

/* ---- sessions ---------------------------------------------------------- */

static Session *
ready_pop(void)
{
	Session    *s = ready_head;

	ready_head = s->next_ready;
	if (ready_head == NULL)
		ready_tail = NULL;
	s->ready = false;
	return s;
}

static Frame *
frame_pop(Session *s)
{
	Frame	   *f = s->in_head;

	s->in_head = f->next;
	if (s->in_head == NULL)
		s->in_tail = NULL;
	s->n_in--;
	return f;
}

static void
frame_free(Frame *f)
{
	if (f->local)
		msg_unref(f->local);
	free(f);
}

/* drop what is queued for the client */
static void
session_drop_output(Session *s)
{
	while (s->out_n > 0)
	{
		msg_unref(s->out[s->out_head]);
		s->out_head = (s->out_head + 1) % max_queue;
		s->out_n--;
	}
	s->out_bytes = 0;
}

/*
 * Free s if its socket is closed and its frames are done.  Frames received
 * before the client left still go to the database, in order: an action the
 * relay has read is not dropped.
 */
static void
session_release(Session *s)
{
	if (s->wsi != NULL || s->busy || s->ready || s->in_head != NULL)
		return;
	stream_leave(s);
	free(s->user_id);
	free(s->username);
	free(s->rx);
	free(s->out);
	free(s);
}

/*
 * Queue m for s.  A client that does not read fills its queue; it is then
 * closed (it reconnects and syncs), so that it neither holds the others back
 * nor makes the relay grow.  (The byte limit counts what is already queued:
 * one message may be larger, e.g. the sync_batch of a long stream.)
 */
static void
session_send(Session *s, Msg *m)
{
	if (s->wsi == NULL || s->doomed)
		return;
	if (s->out_n >= max_queue || s->out_bytes >= MAX_QUEUE_BYTES)
	{
		log_msg("closing a client of \"%s\": %d messages (%zu bytes) not read",
					s->stream->name, s->out_n, s->out_bytes);
		s->doomed = true;
		session_drop_output(s);
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
						 (unsigned char *) "send queue full", 15);
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return;
	}
	s->out[(s->out_head + s->out_n) % max_queue] = m;
	s->out_n++;
	s->out_bytes += m->len;
	m->refs++;
	lws_callback_on_writable(s->wsi);
}

/* queue a new message for s alone */
static void
session_send_new(Session *s, Msg *m)
{
	m->refs++;
	session_send(s, m);
	msg_unref(m);
}

/* send m to every client of every stream */
static void
broadcast(Msg *m)
{
	m->refs++;
	for (int i = 0; i < STREAM_BUCKETS; i++)
		for (Stream *st = streams[i]; st; st = st->next)
			for (Session *s = st->sessions; s; s = s->next)
				session_send(s, m);
	msg_unref(m);
}

/*
 * Move s on: its relay-made replies go out in their turn, and if its next
 * frame needs the database and may run, it joins the ready queue.
 */
static void
session_schedule(Session *s)
{
	while (!s->busy && s->in_head && s->in_head->local)
	{
		Frame	   *f = frame_pop(s);

		session_send(s, f->local);	/* (nowhere, once closed) */
		frame_free(f);
	}
	if (s->paused && s->wsi && s->n_in < MAX_WAITING / 2)
	{
		s->paused = false;
		lws_rx_flow_control(s->wsi, 1);
	}
	if (!s->busy && !s->ready && s->in_head &&
		s->stream->cat->state == LISTEN_DONE)
	{
		s->ready = true;
		s->next_ready = NULL;
		if (ready_tail)
			ready_tail->next_ready = s;
		else
			ready_head = s;
		ready_tail = s;
	}
}

/*
 * A complete frame from the client.  The database judges whether it is
 * JSON (the cast of $2 to jsonb); the relay answers alone what it cannot
 * pass: binary frames, and NUL bytes (a text parameter would end there).
 */
static void
session_frame(Session *s)
{
	const char *err = NULL;
	Frame	   *f;

	if (s->rx_binary)
		err = "binary frames are not supported: send JSON text";
	else if (memchr(s->rx, '\0', s->rx_len) != NULL)
		err = "frame is not JSON";
	f = xmalloc(sizeof(Frame) + (err ? 1 : s->rx_len + 1));
	f->next = NULL;
	f->local = err ? error_msg("22P02", err, NULL) : NULL;
	if (f->local)
		f->local->refs++;
	memcpy(f->text, s->rx, err ? 0 : s->rx_len);
	f->text[err ? 0 : s->rx_len] = '\0';
	if (s->in_tail)
		s->in_tail->next = f;
	else
		s->in_head = f;
	s->in_tail = f;
	if (++s->n_in >= MAX_WAITING && !s->paused)
	{
		/* let TCP hold the client back */
		s->paused = true;
		lws_rx_flow_control(s->wsi, 0);
	}
	session_schedule(s);
	dispatch();
}

/* ---- the database ------------------------------------------------------ */

static bool
same_socket(int a, int b)
{
	struct stat sa,
				sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
		sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* let go of c->wsi: lws closes the dup at its next turn */
static void
db_unwatch(DbConn *c)
{
	if (c->wsi)
	{
		lws_set_wsi_user(c->wsi, NULL);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		c->wsi = NULL;
	}
}

static void
db_write_again(lws_sorted_usec_list_t *sul)
{
	DbConn	   *c = lws_container_of(sul, DbConn, write_sul);

	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

static void
db_want_write(DbConn *c)
{
	/*
	 * lws 4.1 clears a raw file's POLLOUT after its WRITEABLE callback, so
	 * asking from inside that callback is lost: ask at the next turn then.
	 */
	if (c->in_writeable)
		lws_sul_schedule(context, 0, &c->write_sul, db_write_again, 1);
	else
		lws_callback_on_writable(c->wsi);
}

/* make sure the loop watches libpq's current socket */
static bool
db_watch(DbConn *c, bool write)
{
	int			sock = PQsocket(c->pg);

	if (sock < 0)
	{
		db_lost(c, "no socket");
		return false;
	}
	/* during connection libpq may close its socket and open another one */
	if (c->wsi == NULL || !same_socket(sock, lws_get_socket_fd(c->wsi)))
	{
		lws_sock_file_fd_type fd;

		db_unwatch(c);
		fd.filefd = dup(sock);
		if (fd.filefd < 0 ||
			(c->wsi = lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC,
												 fd, "es-db", NULL)) == NULL)
		{
			/* (a failed adoption may or may not have closed the dup) */
			db_lost(c, "cannot watch the socket");
			return false;
		}
		lws_set_wsi_user(c->wsi, c);
	}
	if (write)
		db_want_write(c);
	return true;
}

static bool
db_flush(DbConn *c)
{
	int			r = PQflush(c->pg);

	if (r < 0)
	{
		db_lost(c, PQerrorMessage(c->pg));
		return false;
	}
	c->flushing = r > 0;
	if (c->flushing)
		db_want_write(c);
	return true;
}

static void
db_notice(void *arg, const char *message)
{
	log_msg("connection %d: %s", ((DbConn *) arg)->id, message);
}

static void
db_start(DbConn *c)
{
	const char *keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
	const char *vals[] = {dsn, "es-relay", "UTF8", NULL};

	c->pg = PQconnectStartParams(keys, vals, 1);
	if (c->pg == NULL)
	{
		log_msg("out of memory");
		exit(1);
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
	{
		db_lost(c, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeProcessor(c->pg, db_notice, c);
	c->state = DB_CONNECTING;
	/* at first, as if PQconnectPoll had said PGRES_POLLING_WRITING */
	db_watch(c, true);
}

static void
db_retry(lws_sorted_usec_list_t *sul)
{
	db_start(lws_container_of(sul, DbConn, retry_sul));
}

/* the frame in flight on c is answered (or lost) */
static void
db_request_done(DbConn *c)
{
	Session    *s = c->req;

	c->req = NULL;
	s->busy = false;
	session_schedule(s);
	session_release(s);
}

/*
 * The connection failed or broke: tell the client whose frame was in
 * flight (it may or may not have been applied: a retried action with the
 * same event_id is safe), and try again later.
 */
static void
db_lost(DbConn *c, const char *why)
{
	log_msg("connection %d %s: %s (retrying in %d ms)", c->id,
			c->state == DB_CONNECTING || c->state == DB_DOWN ? "failed" : "lost",
			why, (int) (c->backoff / 1000));
	lws_sul_cancel(&c->write_sul);
	db_unwatch(c);
	PQfinish(c->pg);
	c->pg = NULL;
	c->flushing = false;
	if (c->req)
	{
		session_send_new(c->req,
						 error_msg("08006", "the connection to the database was lost",
								   "The message may or may not have been applied."));
		db_request_done(c);
	}
	if (c->id == 0)
	{
		/* notifications may be lost until we LISTEN again */
		for (Category *cat = categories; cat; cat = cat->next)
			cat->state = LISTEN_NEW;
		if (c->ever_connected)
			resync_pending = true;
	}
	c->state = DB_DOWN;
	lws_sul_schedule(context, 0, &c->retry_sul, db_retry, c->backoff);
	c->backoff = c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : c->backoff * 2;
	/* the next frame of that client may run on another connection */
	if (c->id != 0)
		dispatch();
}

static void
db_connect_poll(DbConn *c)
{
	/*
	 * libpq tolerates an early call in its reading states, and in a writing
	 * state the socket is only readable once the connection has failed.
	 */
	switch (PQconnectPoll(c->pg))
	{
		case PGRES_POLLING_READING:
			db_watch(c, false);
			break;
		case PGRES_POLLING_WRITING:
			db_watch(c, true);
			break;
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(c->pg, 1) != 0)
			{
				db_lost(c, PQerrorMessage(c->pg));
				break;
			}
			if (c->ever_connected || c->backoff > BACKOFF_MIN)
				log_msg("connection %d ready", c->id);
			c->backoff = BACKOFF_MIN;
			c->ever_connected = true;
			c->state = DB_IDLE;
			if (c->id == 0)
				listen_kick();
			else
				dispatch();
			break;
		default:
			db_lost(c, PQerrorMessage(c->pg));
			break;
	}
}

/* LISTEN to the categories not listened to yet, one batch at a time */
static void
listen_kick(void)
{
	DbConn	   *c = &conns[0];
	Buf			b = {0};

	if (c->state != DB_IDLE)
		return;
	for (Category *cat = categories; cat; cat = cat->next)
		if (cat->state == LISTEN_NEW)
		{
			/* names are [a-z][a-z0-9_]*: no quoting needed */
			buf_str(&b, "LISTEN es_");
			buf_str(&b, cat->name);
			buf_str(&b, ";");
			cat->state = LISTEN_SENT;
		}
	if (b.p == NULL)
	{
		if (resync_pending)
		{
			resync_pending = false;
			broadcast(msg_new("{\"type\":\"resync\"}", 17));
		}
		return;
	}
	c->state = DB_BUSY;
	c->listen_failed = false;
	if (PQsendQuery(c->pg, b.p))
		db_flush(c);
	else
		db_lost(c, PQerrorMessage(c->pg));
	free(b.p);
}

static void
listen_done(DbConn *c)
{
	if (c->listen_failed)
	{
		db_lost(c, "LISTEN failed");
		return;
	}
	c->state = DB_IDLE;
	for (Category *cat = categories; cat; cat = cat->next)
		if (cat->state == LISTEN_SENT)
			cat->state = LISTEN_DONE;
	/* the resync first (if any), then what waited for the LISTEN */
	listen_kick();
	for (int i = 0; i < STREAM_BUCKETS; i++)
		for (Stream *st = streams[i]; st; st = st->next)
			for (Session *s = st->sessions; s; s = s->next)
				session_schedule(s);
	dispatch();
}

static void
pool_result(DbConn *c, PGresult *r)
{
	Session    *s = c->req;

	if (PQresultStatus(r) == PGRES_TUPLES_OK)
	{
		if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
			session_send_new(s, msg_new(PQgetvalue(r, 0, 0), PQgetlength(r, 0, 0)));
	}
	else
	{
		/* a fault of the server, not of the client: report it all the same */
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		const char *message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

		session_send_new(s, error_msg(code ? code : "XX000",
								  message ? message : PQresultErrorMessage(r),
								  PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)));
	}
}

/* the socket of c is readable (or writable, if write) */
static void
db_io(DbConn *c, bool write)
{
	PGnotify   *n;

	if (c->state == DB_CONNECTING)
	{
		db_connect_poll(c);
		return;
	}
	if (c->state == DB_DOWN)
		return;
	if (!write && !PQconsumeInput(c->pg))
	{
		db_lost(c, PQerrorMessage(c->pg));
		return;
	}
	if (c->flushing && !db_flush(c))
		return;
	while ((n = PQnotifies(c->pg)) != NULL)
	{
		const char *name;
		int			len = payload_stream(n->extra, &name);
		Stream	   *st;

		if (len > 0 && (st = stream_find(name, len)) != NULL)
		{
			Msg		   *m = msg_new(n->extra, strlen(n->extra));

			m->refs++;
			for (Session *s = st->sessions; s; s = s->next)
				session_send(s, m);
			msg_unref(m);
		}
		PQfreemem(n);
	}
	while (c->state == DB_BUSY && !c->flushing && !PQisBusy(c->pg))
	{
		PGresult   *r = PQgetResult(c->pg);

		if (r == NULL)
		{
			if (c->id != 0)
				db_request_done(c);
			if (PQstatus(c->pg) == CONNECTION_BAD)
				db_lost(c, PQerrorMessage(c->pg));
			else if (c->id == 0)
				listen_done(c);
			else
			{
				c->state = DB_IDLE;
				dispatch();
			}
			return;
		}
		if (c->id == 0 && PQresultStatus(r) != PGRES_COMMAND_OK)
		{
			log_msg("LISTEN: %s", PQresultErrorMessage(r));
			c->listen_failed = true;
		}
		else if (c->id != 0)
			pool_result(c, r);
		PQclear(r);
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
		db_lost(c, PQerrorMessage(c->pg));
}

/* hand waiting frames to idle pool connections */
static void
dispatch(void)
{
	static const Oid types[4] = {25, 3802, 25, 25}; /* text, jsonb */

	for (int i = 1; i < nconns && ready_head; i++)
	{
		DbConn	   *c = &conns[i];
		Session    *s;
		Frame	   *f;
		const char *values[4];
		int			sent;

		if (c->state != DB_IDLE)
			continue;
		s = ready_pop();
		f = frame_pop(s);
		c->req = s;
		s->busy = true;
		c->state = DB_BUSY;
		values[0] = s->stream->name;
		values[1] = f->text;
		values[2] = s->user_id;
		values[3] = s->username;
		/* (libpq copies the parameters) */
		sent = PQsendQueryParams(c->pg, "SELECT es_handle($1, $2, $3, $4)",
								 4, types, values, NULL, NULL, 0);
		frame_free(f);
		if (sent)
			db_flush(c);
		else
			db_lost(c, PQerrorMessage(c->pg));
	}
}

/* (the lws callback signature: wsi cannot be const) */
static int
cb_db(struct lws *wsi,			/* cppcheck-suppress constParameter */
	  enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	DbConn	   *c = user;

	(void) in;
	(void) len;
	if (c == NULL || c->wsi != wsi)
		return 0;				/* a socket we let go of */
	switch (reason)
	{
		case LWS_CALLBACK_RAW_RX_FILE:
			db_io(c, false);
			break;
		case LWS_CALLBACK_RAW_WRITEABLE_FILE:
			c->in_writeable = true;
			db_io(c, true);
			c->in_writeable = false;
			break;
		case LWS_CALLBACK_RAW_CLOSE_FILE:
			c->wsi = NULL;		/* lws closed it (hang-up) */
			db_lost(c, "the socket was closed");
			break;
		default:
			break;
	}
	return 0;
}

/* ---- WebSocket clients -------------------------------------------------- */

/* the stream of the request /streams/<stream>, into buf, or NULL */
static const char *
request_stream(struct lws *wsi, char *buf, int size)
{
	int			n = lws_hdr_copy(wsi, buf, size, WSI_TOKEN_GET_URI);

	if (n <= 0 || (size_t) n != strlen(buf) || strncmp(buf, "/streams/", 9) != 0 ||
		!valid_stream(buf + 9))
		return NULL;
	return buf + 9;
}

/* a query argument, NULL if absent or empty */
static char *
request_arg(struct lws *wsi, const char *name)
{
	char		buf[MAX_ARG];
	const char *v = lws_get_urlarg_by_name(wsi, name, buf, sizeof(buf));

	return v && *v ? xstrdup(v) : NULL;
}

typedef struct
{
	Session    *s;
} PerSession;

static int
cb_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	  void *in, size_t len)
{
	PerSession *pss = user;		/* (lws also calls protocols[0] for others) */
	Session    *s;
	const char *name;
	char		buf[16 + MAX_STREAM];

	switch (reason)
	{
		case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
			/* refuse the upgrade of anything but /streams/<valid stream> */
			return request_stream(wsi, buf, sizeof(buf)) == NULL;
		case LWS_CALLBACK_ESTABLISHED:
			if ((name = request_stream(wsi, buf, sizeof(buf))) == NULL)
				return -1;
			s = xmalloc(sizeof(Session));
			memset(s, 0, sizeof(Session));
			s->out = xmalloc(max_queue * sizeof(Msg *));
			s->rx_cap = 4096;
			s->rx = xmalloc(s->rx_cap);
			s->wsi = wsi;
			s->user_id = request_arg(wsi, "user_id=");
			s->username = request_arg(wsi, "username=");
			stream_join(s, name);
			pss->s = s;
			if (verbose)
				log_msg("client of \"%s\" (user %s)", s->stream->name,
						s->user_id ? s->user_id : "none");
			break;
		case LWS_CALLBACK_RECEIVE:
			if ((s = pss->s) == NULL || s->doomed)
				break;
			if (!s->rx_started)
			{
				s->rx_started = true;
				s->rx_binary = lws_frame_is_binary(wsi);
				s->rx_len = 0;
			}
			if (s->rx_len + len > MAX_FRAME)
			{
				lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
								 (unsigned char *) "frame too large", 15);
				return -1;
			}
			if (s->rx_len + len > s->rx_cap)
			{
				s->rx_cap = (s->rx_len + len) * 2;
				s->rx_cap = s->rx_cap > MAX_FRAME ? MAX_FRAME : s->rx_cap;
				if ((s->rx = realloc(s->rx, s->rx_cap)) == NULL)
				{
					log_msg("out of memory");
					exit(1);
				}
			}
			memcpy(s->rx + s->rx_len, in, len);
			s->rx_len += len;
			if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0)
			{
				s->rx_started = false;
				session_frame(s);
			}
			break;
		case LWS_CALLBACK_SERVER_WRITEABLE:
			if ((s = pss->s) == NULL || s->doomed)
				return -1;
			if (s->out_n > 0)
			{
				Msg		   *m = s->out[s->out_head];

				if (lws_write(wsi, m->buf + LWS_PRE, m->len,
							  LWS_WRITE_TEXT) < (int) m->len)
					return -1;
				s->out_head = (s->out_head + 1) % max_queue;
				s->out_n--;
				s->out_bytes -= m->len;
				msg_unref(m);
				if (s->out_n > 0)
					lws_callback_on_writable(wsi);
			}
			break;
		case LWS_CALLBACK_CLOSED:
			if ((s = pss->s) == NULL)
				break;
			pss->s = NULL;
			s->wsi = NULL;
			session_drop_output(s);
			session_release(s);	/* else once its frames are done */
			break;
		case LWS_CALLBACK_WSI_DESTROY:
			break;				/* (also sent here for the libpq sockets) */
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static const struct lws_protocols protocols[] = {
	/* first: the protocol of clients that ask for none, and of HTTP */
	{"es-relay", cb_ws, sizeof(PerSession), 65536, 0, NULL, 0},
	{"es-db", cb_db, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}
};

/* content types lws does not know, or without a charset */
static const struct lws_protocol_vhost_options mime_types[] = {
	{&mime_types[1], NULL, ".html", "text/html; charset=utf-8"},
	{&mime_types[2], NULL, ".js", "text/javascript; charset=utf-8"},
	{&mime_types[3], NULL, ".mjs", "text/javascript; charset=utf-8"},
	{&mime_types[4], NULL, ".css", "text/css; charset=utf-8"},
	{&mime_types[5], NULL, ".json", "application/json"},
	{&mime_types[6], NULL, ".map", "application/json"},
	{&mime_types[7], NULL, ".txt", "text/plain; charset=utf-8"},
	{&mime_types[8], NULL, ".wasm", "application/wasm"},
	{&mime_types[9], NULL, ".webp", "image/webp"},
	{NULL, NULL, "*", "application/octet-stream"},
};

/* idle clients are pinged, and dropped when they do not answer */
static const lws_retry_bo_t idle_policy = {
	.secs_since_valid_ping = 30,
	.secs_since_valid_hangup = 75,
};

static void
on_signal(int sig)
{
	(void) sig;
	interrupted = 1;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: es-relay --listen HOST:PORT --dsn CONNINFO [--web DIR]\n"
			"                [--pool N] [--max-queue N] [--verbose]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"listen", required_argument, NULL, 'l'},
		{"dsn", required_argument, NULL, 'd'},
		{"web", required_argument, NULL, 'w'},
		{"pool", required_argument, NULL, 'p'},
		{"max-queue", required_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0}
	};
	struct lws_context_creation_info info;
	struct lws_http_mount mount;
	struct sigaction sa;
	PQconninfoOption *opts;
	char	   *listen_at = NULL,
			   *web = NULL,
			   *colon,
			   *end,
			   *err = NULL;
	int			opt;
	long		port;

	while ((opt = getopt_long(argc, argv, "l:d:w:p:q:v", options, NULL)) != -1)
		switch (opt)
		{
			case 'l':
				listen_at = optarg;
				break;
			case 'd':
				dsn = optarg;
				break;
			case 'w':
				web = optarg;
				break;
			case 'p':
				nconns = 1 + atoi(optarg);
				if (nconns < 2 || nconns > (int) (sizeof(conns) / sizeof(conns[0])))
					usage();
				break;
			case 'q':
				max_queue = atoi(optarg);
				if (max_queue < 1)
					usage();
				break;
			case 'v':
				verbose = true;
				break;
			default:
				usage();
		}
	if (optind < argc || listen_at == NULL || dsn == NULL ||
		(colon = strrchr(listen_at, ':')) == NULL ||
		(port = strtol(colon + 1, &end, 10)) <= 0 || port > 65535 || *end)
		usage();
	*colon = '\0';
	/* a bad DSN is a mistake, not a database to wait for */
	if ((opts = PQconninfoParse(dsn, &err)) == NULL)
	{
		log_msg("invalid --dsn: %s", err ? err : "out of memory");
		return 2;
	}
	PQconninfoFree(opts);
	if (web && access(web, R_OK | X_OK) != 0)
	{
		log_msg("cannot read directory \"%s\"", web);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: poll() returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(verbose ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR, NULL);

	memset(&mount, 0, sizeof(mount));
	mount.mountpoint = "/";
	mount.mountpoint_len = 1;
	mount.origin = web;
	mount.def = "index.html";
	mount.origin_protocol = LWSMPRO_FILE;
	mount.extra_mimetypes = mime_types;

	memset(&info, 0, sizeof(info));
	info.iface = *listen_at ? listen_at : NULL;
	info.port = (int) port;
	info.protocols = protocols;
	info.mounts = web ? &mount : NULL;
	info.retry_and_idle_policy = &idle_policy;
	if ((context = lws_create_context(&info)) == NULL ||
		(vhost = lws_get_vhost_by_name(context, "default")) == NULL)
	{
		log_msg("cannot listen on %s:%ld", listen_at, port);
		return 1;
	}
	log_msg("listening on %s:%ld, %d database connections", listen_at, port, nconns);

	for (int i = 0; i < nconns; i++)
	{
		conns[i].id = i;
		conns[i].backoff = BACKOFF_MIN;
		db_start(&conns[i]);
	}
	while (!interrupted)
		if (lws_service(context, 0) < 0)
			break;

	log_msg("stopping");
	for (int i = 0; i < nconns; i++)
	{
		db_unwatch(&conns[i]);
		PQfinish(conns[i].pg);
		conns[i].pg = NULL;
	}
	lws_context_destroy(context);
	return 0;
}
