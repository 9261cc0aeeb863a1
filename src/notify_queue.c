/*-------------------------------------------------------------------------
 *
 * notify_queue.c
 *	  The appending side of eventsourcing.notify = worker: one row of
 *	  es.notify_queue per committing transaction, and a wake-up.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/notify_queue.c
 *
 *-------------------------------------------------------------------------
 *
 * A transaction that appends in worker mode sends no NOTIFY, so its commit
 * does not take the lock that serialises the commits of notifying
 * transactions.  Instead it remembers the global positions of its events
 * (per subtransaction level, so that those of a rolled-back subtransaction
 * are forgotten), writes them as one row of es.notify_queue just before it
 * commits, and sets the latch of its database's notifier when it has
 * committed.  The row becomes visible exactly when the events do: the
 * queue is the notifier's position, durable and transactional.
 *
 * The row is inserted directly into the heap (the table has no index and
 * no trigger): the appending role needs no privilege on it, and an append
 * costs one small heap insert per transaction.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "eventsourcing.h"

/* columns of es.notify_queue */
#define Anum_es_notify_queue_transaction_id	1
#define Anum_es_notify_queue_positions		2
#define Anum_es_notify_queue_queued_at		3
#define Natts_es_notify_queue				3

/* one queued event: its position and the subtransaction level that appended it */
typedef struct QueuedEvent
{
	int64		position;
	int			level;
} QueuedEvent;

/* this transaction's queued events, in TopTransactionContext */
static QueuedEvent *queued = NULL;
static int	nqueued = 0;
static int	queued_size = 0;
static Oid	queue_relid = InvalidOid;

/* set between the queue row's insertion and the end of the transaction */
static bool wake_at_commit = false;

static void
forget_queued(void)
{
	/* the memory goes with TopTransactionContext */
	queued = NULL;
	nqueued = 0;
	queued_size = 0;
	queue_relid = InvalidOid;
}

/*
 * es_notify_queue_event
 *		Queue the event at global_position for the notifier; false if this
 *		database cannot (the extension has no es.notify_queue: older than
 *		1.3), and the caller notifies as in commit mode.
 */
bool
es_notify_queue_event(int64 global_position)
{
	if (nqueued == 0)
	{
		Oid			nspid = get_namespace_oid("es", true);

		queue_relid = OidIsValid(nspid) ?
			get_relname_relid("notify_queue", nspid) : InvalidOid;
		if (!OidIsValid(queue_relid))
			return false;
		/* start the worker now, while an error can still abort the append */
		es_notifier_ensure(MyDatabaseId, true);
	}
	if (nqueued == queued_size)
	{
		int			newsize = queued_size == 0 ? 16 : queued_size * 2;

		if (queued == NULL)
			queued = MemoryContextAlloc(TopTransactionContext,
										newsize * sizeof(QueuedEvent));
		else
			queued = repalloc(queued, newsize * sizeof(QueuedEvent));
		queued_size = newsize;
	}
	queued[nqueued].position = global_position;
	queued[nqueued].level = GetCurrentTransactionNestLevel();
	nqueued++;
	return true;
}

static int
compare_positions(const void *a, const void *b)
{
	int64		pa = *(const int64 *) a;
	int64		pb = *(const int64 *) b;

	return (pa > pb) - (pa < pb);
}

/*
 * Write this transaction's row of es.notify_queue: its id, the positions of
 * its events in ascending order, and the time.
 */
static void
insert_queue_row(void)
{
	Relation	rel;
	Datum	   *positions;
	Datum		values[Natts_es_notify_queue];
	bool		isnull[Natts_es_notify_queue] = {false, false, false};
	HeapTuple	tuple;
	int			i;

	positions = palloc(sizeof(Datum) * nqueued);
	for (i = 0; i < nqueued; i++)
		positions[i] = Int64GetDatum(queued[i].position);
	qsort(positions, nqueued, sizeof(Datum), compare_positions);

	rel = table_open(queue_relid, RowExclusiveLock);

	/*
	 * The direct heap insert is right only for a plain heap table with
	 * these columns and no index or trigger (an index would miss the row,
	 * and the notifier would never find it through that index).
	 */
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relhasindex || rel->trigdesc != NULL ||
		RelationGetDescr(rel)->natts != Natts_es_notify_queue ||
		TupleDescAttr(RelationGetDescr(rel), 0)->atttypid != XID8OID ||
		TupleDescAttr(RelationGetDescr(rel), 1)->atttypid != INT8ARRAYOID ||
		TupleDescAttr(RelationGetDescr(rel), 2)->atttypid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" does not have the layout this version of eventsourcing expects",
						"es.notify_queue"),
				 errdetail("It must be a heap table (transaction_id xid8, positions bigint[], queued_at timestamptz) without indexes or triggers.")));
	values[Anum_es_notify_queue_transaction_id - 1] =
		FullTransactionIdGetDatum(GetTopFullTransactionId());
	values[Anum_es_notify_queue_positions - 1] =
		PointerGetDatum(construct_array(positions, nqueued, INT8OID, sizeof(int64),
										FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[Anum_es_notify_queue_queued_at - 1] =
		TimestampTzGetDatum(GetCurrentTimestamp());
	tuple = heap_form_tuple(RelationGetDescr(rel), values, isnull);
	simple_heap_insert(rel, tuple);
	table_close(rel, RowExclusiveLock);
}

static void
queue_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (nqueued > 0)
			{
				insert_queue_row();
				/* after PREPARE, COMMIT PREPARED comes from elsewhere: the
				 * notifier finds the row on its next periodic pass */
				wake_at_commit = (event != XACT_EVENT_PRE_PREPARE);
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit)
				es_notifier_wake(MyDatabaseId);
			wake_at_commit = false;
			forget_queued();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			forget_queued();
			break;
	}
}

static void
queue_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* the events of the subtransaction and its children are gone */
		while (nqueued > 0 && queued[nqueued - 1].level >= level)
			nqueued--;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = nqueued - 1; i >= 0 && queued[i].level >= level; i--)
			queued[i].level = level - 1;
	}
}

/*
 * es_notify_queue_init
 *		Register the transaction callbacks; called by _PG_init.
 */
void
es_notify_queue_init(void)
{
	RegisterXactCallback(queue_xact_callback, NULL);
	RegisterSubXactCallback(queue_subxact_callback, NULL);
}
