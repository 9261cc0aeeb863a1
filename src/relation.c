/*-------------------------------------------------------------------------
 *
 * relation.c
 *	  The extension's tables: their layout, and single-row inserts and
 *	  updates through the executor's simple-relation routines.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/relation.c
 *
 *-------------------------------------------------------------------------
 *
 * Every append inserts one row into es.events and moves one row of
 * es.streams.  Going through SPI would plan-check, snapshot and run a whole
 * executor for each of them.  Instead we use the routines PostgreSQL's
 * logical replication apply worker uses for the same job
 * (ExecSimpleRelationInsert, RelationFindReplTupleByIndex,
 * ExecSimpleRelationUpdate): they fire the row triggers, check constraints
 * and maintain every index of the table, with none of the per-statement
 * machinery.  An insert into es.events made here runs the append trigger
 * exactly as an INSERT statement does.
 *
 * These routines check no privileges: the callers do.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "eventsourcing.h"

/* a column of one of our tables, as the install script creates it */
typedef struct EsColumn
{
	const char *name;
	Oid			type;
} EsColumn;

static const EsColumn es_events_columns[Natts_es_events] = {
	{"global_position", INT8OID}, {"stream", TEXTOID}, {"category", TEXTOID},
	{"sequence_number", INT8OID}, {"event_id", UUIDOID},
	{"event_type", TEXTOID}, {"data", JSONBOID}, {"metadata", JSONBOID},
	{"user_id", TEXTOID}, {"username", TEXTOID},
	{"created_at", TIMESTAMPTZOID}, {"transaction_id", XID8OID},
	{"db_role", TEXTOID}
};

static const EsColumn es_streams_columns[Natts_es_streams] = {
	{"stream", TEXTOID}, {"category", TEXTOID}, {"version", INT8OID},
	{"created_at", TIMESTAMPTZOID}, {"updated_at", TIMESTAMPTZOID},
	{"deleted_at", TIMESTAMPTZOID}
};

/*
 * Check that a tuple descriptor has the columns of one of our tables.
 *
 * The C code addresses columns by the Anum_* numbers of eventsourcing.h;
 * a table altered by hand, or an install script and a library of different
 * versions, must be refused before anything is read at a wrong place.
 * A table of an older version of the extension (fewer columns, the first
 * ones the same) is accepted: the library serves a database until it is
 * updated, and the code looks at the newer columns only when they exist.
 */
static void
check_tupdesc(TupleDesc tupdesc, const char *table, const EsColumn *columns,
			  int min_columns, int ncolumns)
{
	int			i;
	bool		ok = (tupdesc->natts >= min_columns && tupdesc->natts <= ncolumns);

	for (i = 0; ok && i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		ok = !att->attisdropped && att->atttypid == columns[i].type &&
			strcmp(NameStr(att->attname), columns[i].name) == 0;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" does not have the layout this version of eventsourcing expects",
						table),
				 errhint("Do not alter the extension's tables; check that the installed library matches the extension version.")));
}

void
es_check_events_tupdesc(TupleDesc tupdesc)
{
	check_tupdesc(tupdesc, "es.events", es_events_columns,
				  Natts_es_events_1_0, Natts_es_events);
}

void
es_check_streams_tupdesc(TupleDesc tupdesc)
{
	check_tupdesc(tupdesc, "es.streams", es_streams_columns,
				  Natts_es_streams_1_0, Natts_es_streams);
}

/*
 * Executor state for single-row changes of one relation.
 */
typedef struct EsRelation
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
} EsRelation;

/*
 * Set up executor state to change rows of an open relation.
 *
 * Like the apply worker, we put the ResultRelInfo in
 * es_opened_result_relations without taking a reference, and therefore
 * never call ExecCloseResultRelations.
 */
static void
es_relation_begin(EsRelation *er, Relation rel)
{
	RangeTblEntry *rte;
	MemoryContext oldcxt;

	er->rel = rel;
	er->estate = CreateExecutorState();
	oldcxt = MemoryContextSwitchTo(er->estate->es_query_cxt);

	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(er->estate, list_make1(rte));

	er->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(er->rri, rel, 1, NULL, 0);
	er->estate->es_opened_result_relations =
		lappend(er->estate->es_opened_result_relations, er->rri);
	er->estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(er->rri, false);

	MemoryContextSwitchTo(oldcxt);

	/* AFTER row triggers, if anyone adds some, fire at es_relation_end */
	AfterTriggerBeginQuery();
}

/*
 * Fire queued AFTER triggers and release the executor state.
 */
static void
es_relation_end(EsRelation *er)
{
	AfterTriggerEndQuery(er->estate);
	ExecCloseIndices(er->rri);
	ExecResetTupleTable(er->estate->es_tupleTable, false);
	FreeExecutorState(er->estate);
}

/*
 * es_insert_event
 *		Insert a row into es.events, through its row triggers.
 *
 * Returns the stored row as a composite datum allocated in the caller's
 * memory context, or (Datum) 0 when a BEFORE trigger skipped the row (the
 * append trigger does so for an idempotent retry).
 */
Datum
es_insert_event(Relation rel, HeapTuple tuple)
{
	EsRelation	er;
	TupleTableSlot *slot;
	Datum		result = (Datum) 0;

	es_relation_begin(&er, rel);
	slot = ExecInitExtraTupleSlot(er.estate, RelationGetDescr(rel),
								  &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	ItemPointerSetInvalid(&slot->tts_tid);

	ExecSimpleRelationInsert(er.rri, er.estate, slot);

	/* only a stored row has a location */
	if (ItemPointerIsValid(&slot->tts_tid))
		result = heap_copy_tuple_as_datum(ExecFetchSlotHeapTuple(slot, false,
																 NULL),
										  RelationGetDescr(rel));
	es_relation_end(&er);
	return result;
}

/*
 * es_advance_stream
 *		Move a stream's version on by one, creating its row in es.streams for
 *		its first event; return the version before the append.
 *
 * The caller holds the stream's append lock, so no other append changes
 * the row meanwhile.  The row is found with a dirty snapshot and locked, as
 * any UPDATE would.  Under REPEATABLE READ or SERIALIZABLE, a row that our
 * snapshot cannot see (another transaction appended since the snapshot was
 * taken) raises a serialization failure, as an UPDATE of that row would.
 */
int64
es_advance_stream(Relation events, Datum stream, const char *category,
				  TimestampTz now, const char *name)
{
	Relation	rel;
	Oid			relid;
	Oid			pkey;
	EsRelation	er;
	TupleTableSlot *search;
	TupleTableSlot *found;
	TupleTableSlot *newslot;
	int64		version = 0;

	relid = get_relname_relid("streams", RelationGetNamespace(events));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" does not exist", "es.streams")));
	rel = table_open(relid, RowExclusiveLock);
	es_check_streams_tupdesc(RelationGetDescr(rel));
	pkey = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key", "es.streams")));

	/*
	 * Earlier appends of this statement (a multi-row INSERT, a batch) may
	 * have changed the row: make those changes visible and ours distinct.
	 */
	CommandCounterIncrement();
	es_relation_begin(&er, rel);

	search = ExecInitExtraTupleSlot(er.estate, RelationGetDescr(rel),
									&TTSOpsVirtual);
	ExecClearTuple(search);
	memset(search->tts_isnull, true, sizeof(bool) * search->tts_tupleDescriptor->natts);
	search->tts_values[Anum_es_streams_stream - 1] = stream;
	search->tts_isnull[Anum_es_streams_stream - 1] = false;
	ExecStoreVirtualTuple(search);

	found = table_slot_create(rel, &er.estate->es_tupleTable);
	newslot = ExecInitExtraTupleSlot(er.estate, RelationGetDescr(rel),
									 &TTSOpsVirtual);
	ExecClearTuple(newslot);

	if (RelationFindReplTupleByIndex(rel, pkey, LockTupleNoKeyExclusive,
									 search, found))
	{
		EPQState	epqstate;

		if (IsolationUsesXactSnapshot() &&
			!table_tuple_satisfies_snapshot(rel, found,
											GetTransactionSnapshot()))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize append to stream \"%s\"", name),
					 errdetail("The stream was appended to by a transaction that committed after this transaction's snapshot was taken."),
					 errhint("The transaction might succeed if retried.")));

		slot_getallattrs(found);
		if (found->tts_tupleDescriptor->natts >= Anum_es_streams_deleted_at &&
			!found->tts_isnull[Anum_es_streams_deleted_at - 1])
			ereport(ERROR,
					(errcode(ES_ERRCODE_STREAM_DELETED),
					 errmsg("stream \"%s\" was deleted", name),
					 errdetail("Stream \"%s\" was deleted at %s; a deleted stream takes no more events.",
							   name,
							   timestamptz_to_str(DatumGetTimestampTz(found->tts_values[Anum_es_streams_deleted_at - 1]))),
					 errhint("Use a new stream name.")));
		version = DatumGetInt64(found->tts_values[Anum_es_streams_version - 1]);
		memcpy(newslot->tts_values, found->tts_values,
			   sizeof(Datum) * newslot->tts_tupleDescriptor->natts);
		memcpy(newslot->tts_isnull, found->tts_isnull,
			   sizeof(bool) * newslot->tts_tupleDescriptor->natts);
		newslot->tts_values[Anum_es_streams_version - 1] =
			Int64GetDatum(version + 1);
		newslot->tts_values[Anum_es_streams_updated_at - 1] =
			TimestampTzGetDatum(now);
		ExecStoreVirtualTuple(newslot);

		EvalPlanQualInit(&epqstate, er.estate, NULL, NIL, -1);
		ExecSimpleRelationUpdate(er.rri, er.estate, &epqstate, found, newslot);
		EvalPlanQualEnd(&epqstate);
	}
	else
	{
		memset(newslot->tts_isnull, true, sizeof(bool) * newslot->tts_tupleDescriptor->natts);
		newslot->tts_values[Anum_es_streams_stream - 1] = stream;
		newslot->tts_values[Anum_es_streams_category - 1] =
			CStringGetTextDatum(category);
		newslot->tts_values[Anum_es_streams_version - 1] = Int64GetDatum(1);
		newslot->tts_values[Anum_es_streams_created_at - 1] =
			TimestampTzGetDatum(now);
		newslot->tts_values[Anum_es_streams_updated_at - 1] =
			TimestampTzGetDatum(now);
		memset(newslot->tts_isnull, false, sizeof(bool) * Natts_es_streams_1_0);
		ExecStoreVirtualTuple(newslot);
		ExecSimpleRelationInsert(er.rri, er.estate, newslot);
	}

	es_relation_end(&er);
	table_close(rel, NoLock);
	return version;
}
