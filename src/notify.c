/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  Announcing appended events, according to eventsourcing.notify.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/notify.c
 *
 *-------------------------------------------------------------------------
 *
 * This is the one place where an appended event turns into a notification;
 * the append trigger calls es_notify_event for every event it stores, and
 * the notifier worker calls es_notify_send for the events it publishes.
 *
 * In "commit" mode the NOTIFY is queued in the appending transaction, so it
 * is delivered if and only if that transaction commits, after the commit.
 * The price is PostgreSQL's: the commit of a transaction with pending
 * notifications takes a database-wide lock, which serialises the commits
 * of all notifying transactions (see README "Performance").
 *
 * In "worker" mode the event's position is queued instead (notify_queue.c)
 * and the database's notifier worker (notifier.c) sends the same message
 * after the commit, from its own transaction.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/async.h"

#include "eventsourcing.h"

StaticAssertDecl(ES_CATEGORY_MAX_LEN + sizeof("es_") <= NAMEDATALEN,
				 "channel es_<category> must fit in a name");

/*
 * es_notify_event
 *		Announce one appended event, a row of es.events, as
 *		eventsourcing.notify says.
 */
void
es_notify_event(const char *category, HeapTuple tuple, TupleDesc tupdesc)
{
	Datum		values[Natts_es_events];
	bool		isnull[Natts_es_events];

	if (es_notify_mode == ES_NOTIFY_OFF)
		return;

	heap_deform_tuple(tuple, tupdesc, values, isnull);

	/* without the queue (extension older than 1.3), as in commit mode */
	if (es_notify_mode == ES_NOTIFY_WORKER &&
		es_notify_queue_event(DatumGetInt64(values[Anum_es_events_global_position - 1])))
		return;

	es_notify_send(category, values, isnull);
}

/*
 * es_notify_send
 *		NOTIFY one event (the columns of its es.events row) on channel
 *		es_<category>, from the current transaction.
 *
 * A message that NOTIFY would refuse as too long goes out without its data
 * and with "truncated":true.
 */
void
es_notify_send(const char *category, const Datum *values, const bool *isnull)
{
	char		channel[NAMEDATALEN];
	EsEventMessage ev;
	StringInfoData payload;

	es_event_message_from_row(&ev, values, isnull);

	snprintf(channel, sizeof(channel), "es_%s", category);

	initStringInfo(&payload);
	es_append_event_message(&payload, &ev, true);
	if (payload.len >= ES_NOTIFY_PAYLOAD_LIMIT)
	{
		resetStringInfo(&payload);
		es_append_event_message(&payload, &ev, false);
	}

	Async_Notify(channel, payload.data);
	pfree(payload.data);
}
