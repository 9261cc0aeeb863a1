/*-------------------------------------------------------------------------
 *
 * stream.c
 *	  Stream names and the append locks.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/stream.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/uuid.h"

#include "eventsourcing.h"

/*
 * Advisory locks taken by pg_advisory_lock() use 1 or 2 in the last field of
 * their tag; ours use this value, so they never collide with an
 * application's advisory locks.  pg_locks shows them as advisory locks with
 * objsubid 17747 ('ES').
 */
#define ES_LOCKTAG_STREAM	0x4553
/* ... and this one for event ids, objsubid 17737 ('EI') */
#define ES_LOCKTAG_EVENT_ID	0x4549

/*
 * Take an exclusive transaction-scoped lock on a 64-bit hash of a key.
 */
static void
es_lock_hashed_key(const void *key, int len, uint16 kind)
{
	LOCKTAG		tag;
	uint64		h;

	h = DatumGetUInt64(hash_any_extended((const unsigned char *) key, len, 0));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
						 kind);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * es_check_category
 *		Check that a category (not necessarily NUL-terminated) is valid.
 *
 * At most ES_CATEGORY_MAX_LEN bytes matching [a-z][a-z0-9_]*, so that
 * "es_<category>" is a NOTIFY channel name that needs no quoting.
 */
void
es_check_category(const char *category, int len)
{
	int			i;

	if (len < 1 || len > ES_CATEGORY_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid category \"%s\"", pnstrdup(category, len)),
				 errdetail("A category must be between 1 and %d bytes long, not %d.",
						   ES_CATEGORY_MAX_LEN, len)));

	for (i = 0; i < len; i++)
	{
		char		c = category[i];

		if (!((c >= 'a' && c <= 'z') ||
			  (i > 0 && ((c >= '0' && c <= '9') || c == '_'))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid category \"%s\"", pnstrdup(category, len)),
					 errdetail("A category must start with a lower-case letter and contain only lower-case letters, digits and underscores.")));
	}
}

/*
 * es_stream_category
 *		Check a stream name and return its category, palloc'd.
 *
 * A stream is named "category-id": 1 to ES_STREAM_MAX_LEN bytes, a category
 * of at most ES_CATEGORY_MAX_LEN bytes matching [a-z][a-z0-9_]*, a dash and
 * a non-empty id.  The category names a NOTIFY channel, hence the rules.
 */
const char *
es_stream_category(const char *stream, int len)
{
	const char *dash;
	int			catlen;

	if (len < 1 || len > ES_STREAM_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid stream name \"%s\"", stream),
				 errdetail("A stream name must be between 1 and %d bytes long, not %d.",
						   ES_STREAM_MAX_LEN, len)));

	dash = memchr(stream, '-', len);
	if (dash == NULL || dash == stream || dash == stream + len - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid stream name \"%s\"", stream),
				 errdetail("A stream name must have the form category-id, with a non-empty category and id."),
				 errhint("Name streams like \"playbook-42\" or \"image-7\".")));

	catlen = dash - stream;
	es_check_category(stream, catlen);

	return pnstrdup(stream, catlen);
}

/*
 * es_lock_stream
 *		Take the stream's append lock for the rest of the transaction.
 *
 * The lock is an exclusive heavyweight lock on a 64-bit hash of the stream
 * name in the current database.  Two streams whose names hash alike merely
 * serialise their appends; correctness does not depend on the hash.  It is
 * taken before es.streams is touched, and taking it assigns no transaction
 * id (see eventsourcing.h).  Deadlocks between transactions appending to
 * several streams in different orders are detected as usual.
 */
void
es_lock_stream(const char *stream, int len)
{
	es_lock_hashed_key(stream, len, ES_LOCKTAG_STREAM);
}

/*
 * es_lock_event_id
 *		Take the lock of a client-supplied event id for the rest of the
 *		transaction.
 *
 * The stream lock alone serialises retries of one event id on one stream.
 * This lock, taken before the stream lock, serialises appends of the same
 * event id to different streams too, so that the later one sees the first
 * one's outcome and reports a reused id rather than a unique violation.
 */
void
es_lock_event_id(const pg_uuid_t *event_id)
{
	es_lock_hashed_key(event_id->data, UUID_LEN, ES_LOCKTAG_EVENT_ID);
}
