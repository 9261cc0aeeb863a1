/*-------------------------------------------------------------------------
 *
 * state.c
 *	  Folding events into states: the state of a stream after one of its
 *	  events, the validation of an event being appended, snapshots.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/state.c
 *
 *-------------------------------------------------------------------------
 *
 * A state is folded from the nearest starting point at or below the
 * version wanted: this backend's cached state of the stream, else the
 * latest snapshot folded with the category's current definitions, else {}
 * before event 1.  The events after it are read in sequence order and each
 * one whose type has a definition is applied with its effect; an event of a
 * type without one changes nothing.
 *
 * The append path (es_apply_event, from the append trigger) works under the
 * stream's lock and reads with the latest snapshot, as the lock guarantees
 * that every earlier event of the stream has committed; readers
 * (replay.c) read with their statement's snapshot.  Either way the queries
 * run as the owner of es.events: whoever may append or read the events may
 * have their state, whatever the privileges on es.snapshots.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "eventsourcing.h"

/* rows fetched from the event cursor at a time */
#define ES_FOLD_FETCH	1000

static SPIPlanPtr plan_snapshot = NULL;
static SPIPlanPtr plan_snapshot_or_base = NULL;
static SPIPlanPtr plan_events = NULL;
static SPIPlanPtr plan_insert_snapshot = NULL;
static SPIPlanPtr plan_head = NULL;
static SPIPlanPtr plan_head_1_1 = NULL;
static SPIPlanPtr plan_base = NULL;

/*
 * Does the database have the tables of 1.2 (es.removals)?  The library
 * serves databases of earlier versions until they are updated.
 */
bool
es_has_removals(void)
{
	return OidIsValid(get_relname_relid("removals",
										get_namespace_oid("es", false)));
}

/*
 * es_is_history_event_type
 *		Is this one of the built-in event types of es_undo and es_redo?
 */
bool
es_is_history_event_type(const char *event_type)
{
	return strcmp(event_type, ES_UNDO_EVENT_TYPE) == 0 ||
		strcmp(event_type, ES_REDO_EVENT_TYPE) == 0;
}

/*
 * Was this row written by the current transaction (or one of its
 * subtransactions)?  The xmin column of an SPI result.
 */
static bool
written_here(HeapTuple tuple, TupleDesc tupdesc, int attno)
{
	bool		isnull;
	Datum		xmin = SPI_getbinval(tuple, tupdesc, attno, &isnull);

	return !isnull && TransactionIdIsCurrentTransactionId(DatumGetTransactionId(xmin));
}

/*
 * Start st from the latest usable snapshot at or below version, if any.
 *
 * A snapshot that is not a JSON object or is beyond the engine's limits is
 * skipped: snapshots are a cache, and folding from further back gives the
 * same state.  The state a compaction kept (es.removals) is a starting
 * point too, whatever the definitions now: the events before it are gone,
 * so it is the only one there is.
 */
static void
load_snapshot(EsState *st, EsCategoryDefinitions *defs, int64 version,
			  bool latest)
{
	Oid			argtypes[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		args[3];
	SPIPlanPtr	plan;
	uint64		i;

	args[0] = CStringGetTextDatum(st->stream);
	args[1] = Int64GetDatum(version);
	args[2] = Int64GetDatum(defs->hash);
	if (es_has_removals())
		plan = es_query_plan(&plan_snapshot_or_base,
							 "SELECT sequence_number, state, xmin FROM ("
							 " SELECT sequence_number, state, xmin, 0 AS kind"
							 " FROM es.snapshots"
							 " WHERE stream OPERATOR(pg_catalog.=) $1"
							 " AND sequence_number OPERATOR(pg_catalog.<=) $2"
							 " AND definitions_hash OPERATOR(pg_catalog.=) $3"
							 " UNION ALL"
							 " SELECT last_sequence, state, xmin, 1 FROM es.removals"
							 " WHERE stream OPERATOR(pg_catalog.=) $1"
							 " AND last_sequence OPERATOR(pg_catalog.<=) $2"
							 " AND state IS NOT NULL) s"
							 " ORDER BY sequence_number DESC, kind LIMIT 3",
							 3, argtypes);
	else
		plan = es_query_plan(&plan_snapshot,
							 "SELECT sequence_number, state, xmin FROM es.snapshots"
							 " WHERE stream OPERATOR(pg_catalog.=) $1"
							 " AND sequence_number OPERATOR(pg_catalog.<=) $2"
							 " AND definitions_hash OPERATOR(pg_catalog.=) $3"
							 " ORDER BY sequence_number DESC LIMIT 3",
							 3, argtypes);
	if (latest)
		es_query_run_latest(plan, args, NULL, 0, SPI_OK_SELECT);
	else
		es_query_run(plan, args, NULL, true, 0, SPI_OK_SELECT);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Jsonb	   *state;
		EsJson	   *doc;
		EsEngineError err;
		MemoryContext oldcxt;

		state = DatumGetJsonbP(SPI_getbinval(tuple, tupdesc, 2, &isnull));
		if (isnull || !JB_ROOT_IS_OBJECT(state))
			continue;
		oldcxt = MemoryContextSwitchTo(st->cxt);
		doc = es_jsonb_to_engine(state, &err);
		MemoryContextSwitchTo(oldcxt);
		if (doc == NULL)
			continue;

		es_json_free(st->doc);
		st->doc = doc;
		st->version = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 1, &isnull));
		if (written_here(tuple, tupdesc, 3))
			es_state_mark_dirty(st);
		break;
	}
}

/*
 * Apply the patch of a stored undo or redo event to st.
 */
static void
replay_history_event(EsState *st, Jsonb *data, MemoryContext eventcxt)
{
	EsEngineError err;
	EsEngineStatus status;
	EsJson	   *doc;
	const EsJson *patch;

	doc = es_jsonb_to_engine(data, &err);
	patch = es_json_member(doc, "patch");
	if (patch == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("event %lld of stream \"%s\" cannot be replayed",
						(long long) st->version + 1, st->stream),
				 errdetail("The data of an undo or redo event must have a member \"patch\".")));
	MemoryContextSwitchTo(st->cxt);
	status = es_patch_apply(st->doc, patch, &err);
	MemoryContextSwitchTo(eventcxt);
	if (status == ES_ENGINE_NOMEM)
		es_engine_out_of_memory();
	if (status != ES_ENGINE_OK)
		ereport(ERROR,
				(errcode(ES_ERRCODE_EFFECT_FAILED),
				 errmsg("event %lld of stream \"%s\" cannot be replayed",
						(long long) st->version + 1, st->stream),
				 errdetail("%s", es_engine_detail(&err))));
}

/*
 * Apply one stored event to st; an error if its effect fails.
 */
static void
replay_event(EsState *st, EsCategoryDefinitions *defs, HeapTuple tuple,
			 TupleDesc tupdesc, MemoryContext eventcxt)
{
	Datum		values[Natts_es_events];
	bool		isnull[Natts_es_events];
	EsDefinition *def;
	EsEngineError err;
	char	   *event_type;
	MemoryContext oldcxt;

	/* the cursor's columns, in the order of its query */
	memset(isnull, true, sizeof(isnull));
	values[Anum_es_events_sequence_number - 1] = SPI_getbinval(tuple, tupdesc, 1, &isnull[Anum_es_events_sequence_number - 1]);
	values[Anum_es_events_event_type - 1] = SPI_getbinval(tuple, tupdesc, 2, &isnull[Anum_es_events_event_type - 1]);
	values[Anum_es_events_data - 1] = SPI_getbinval(tuple, tupdesc, 3, &isnull[Anum_es_events_data - 1]);
	values[Anum_es_events_metadata - 1] = SPI_getbinval(tuple, tupdesc, 4, &isnull[Anum_es_events_metadata - 1]);
	values[Anum_es_events_user_id - 1] = SPI_getbinval(tuple, tupdesc, 5, &isnull[Anum_es_events_user_id - 1]);
	values[Anum_es_events_username - 1] = SPI_getbinval(tuple, tupdesc, 6, &isnull[Anum_es_events_username - 1]);
	values[Anum_es_events_created_at - 1] = SPI_getbinval(tuple, tupdesc, 7, &isnull[Anum_es_events_created_at - 1]);

	if (DatumGetInt64(values[Anum_es_events_sequence_number - 1]) != st->version + 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("event %lld of stream \"%s\" is missing",
						(long long) st->version + 1, st->stream)));

	oldcxt = MemoryContextSwitchTo(eventcxt);
	event_type = TextDatumGetCString(values[Anum_es_events_event_type - 1]);
	if (es_is_history_event_type(event_type))
	{
		replay_history_event(st, DatumGetJsonbP(values[Anum_es_events_data - 1]),
							 eventcxt);
		def = NULL;
	}
	else
		def = es_find_definition(defs, event_type);
	if (def != NULL)
	{
		EsEngineStatus status;
		EsJson	   *event = es_engine_event(values, isnull, &err);

		if (event == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("event %lld of stream \"%s\" cannot be replayed",
							(long long) st->version + 1, st->stream),
					 errdetail("Its data or metadata is beyond the limits of the state engine: %s.",
							   err.message)));

		MemoryContextSwitchTo(st->cxt);
		status = es_effect_apply(st->doc, def->effect, event, &err);
		MemoryContextSwitchTo(eventcxt);
		if (status == ES_ENGINE_NOMEM)
			es_engine_out_of_memory();
		if (status != ES_ENGINE_OK)
			ereport(ERROR,
					(errcode(ES_ERRCODE_EFFECT_FAILED),
					 errmsg("event %lld of stream \"%s\" cannot be replayed",
							(long long) st->version + 1, st->stream),
					 errdetail("%s", es_engine_detail(&err)),
					 errhint("The definition of event type \"%s\" changed after the event was appended.",
							 event_type)));
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(eventcxt);

	st->version++;
	if (written_here(tuple, tupdesc, 8))
		es_state_mark_dirty(st);
}

/*
 * Fold the events after st->version up to version into st.
 */
static void
fold_events(EsState *st, EsCategoryDefinitions *defs, int64 version,
			bool latest)
{
	Oid			argtypes[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		args[3];
	SPIPlanPtr	plan;
	MemoryContext eventcxt;
	uint64		i;

	args[0] = CStringGetTextDatum(st->stream);
	args[1] = Int64GetDatum(st->version);
	args[2] = Int64GetDatum(version);
	plan = es_query_plan(&plan_events,
						 "SELECT sequence_number, event_type, data, metadata,"
						 " user_id, username, created_at, xmin FROM es.events"
						 " WHERE stream OPERATOR(pg_catalog.=) $1"
						 " AND sequence_number OPERATOR(pg_catalog.>) $2"
						 " AND sequence_number OPERATOR(pg_catalog.<=) $3"
						 " ORDER BY sequence_number",
						 3, argtypes);

	eventcxt = AllocSetContextCreate(CurrentMemoryContext,
									 "eventsourcing replayed event",
									 ALLOCSET_DEFAULT_SIZES);

	/*
	 * A few events (an append catching up with other sessions' appends) are
	 * read at once; a long fold goes through a cursor, so that memory stays
	 * bounded by ES_FOLD_FETCH rows.
	 */
	if (version - st->version <= ES_FOLD_FETCH)
	{
		if (latest)
			es_query_run_latest(plan, args, NULL, 0, SPI_OK_SELECT);
		else
			es_query_run(plan, args, NULL, true, 0, SPI_OK_SELECT);
		for (i = 0; i < SPI_processed; i++)
			replay_event(st, defs, SPI_tuptable->vals[i],
						 SPI_tuptable->tupdesc, eventcxt);
		SPI_freetuptable(SPI_tuptable);
	}
	else
	{
		Portal		portal;

		/* a read-only cursor runs with the active snapshot */
		if (latest)
			PushActiveSnapshot(GetLatestSnapshot());
		portal = SPI_cursor_open(NULL, plan, args, NULL, true);
		if (latest)
			PopActiveSnapshot();
		if (portal == NULL)
			elog(ERROR, "SPI_cursor_open failed: %s",
				 SPI_result_code_string(SPI_result));
		for (;;)
		{
			CHECK_FOR_INTERRUPTS();
			SPI_cursor_fetch(portal, true, ES_FOLD_FETCH);
			if (SPI_processed == 0)
				break;
			for (i = 0; i < SPI_processed; i++)
				replay_event(st, defs, SPI_tuptable->vals[i],
							 SPI_tuptable->tupdesc, eventcxt);
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
	}
	MemoryContextDelete(eventcxt);

	if (st->version != version)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("event %lld of stream \"%s\" is missing",
						(long long) st->version + 1, st->stream)));
}

/*
 * es_state_at
 *		The state of a stream after its event version (0: before its first
 *		event), pinned: the caller releases it with es_state_release.
 *
 * With latest, the events are read with the latest snapshot (the caller
 * holds the stream's lock, so that all of them have committed); otherwise
 * with the active snapshot, which must see event version.
 */
EsState *
es_state_at(const char *stream, EsCategoryDefinitions *defs, int64 version,
			bool latest)
{
	EsState    *st = es_state_get(stream);
	EsSavedUser saved;

	if (st != NULL && st->version > version)
	{
		es_state_release(st, true);
		st = NULL;
	}
	if (st != NULL && st->version == version)
		return st;

	/* in the caller's memory: SPI_finish frees what is made under SPI */
	if (st == NULL)
		st = es_state_new(stream);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	/* the rows of earlier commands, and of this one so far (a batch) */
	if (latest)
		CommandCounterIncrement();
	if (st->version == 0 && version > 0)
		load_snapshot(st, defs, version, latest);
	if (st->version < version)
		fold_events(st, defs, version, latest);
	es_spi_finish_as_owner(&saved);
	return st;
}

/*
 * es_prepare_event
 *		Before its stream is locked: the event document of an event being
 *		appended to a category with definitions, its definition in *def,
 *		its data checked against the definition's schema.
 */
EsJson *
es_prepare_event(const char *stream, EsCategoryDefinitions *defs,
				 EsDefinition **def, const Datum *values, const bool *isnull)
{
	char	   *event_type = TextDatumGetCString(values[Anum_es_events_event_type - 1]);
	EsEngineError err;
	EsJson	   *event;

	*def = es_find_definition(defs, event_type);
	if (*def == NULL)
		ereport(ERROR,
				(errcode(ES_ERRCODE_UNDEFINED_EVENT_TYPE),
				 errmsg("event type \"%s\" is not defined in category \"%s\"",
						event_type, defs->category),
				 errdetail("Category \"%s\" has event definitions, so only its defined event types can be appended to stream \"%s\".",
						   defs->category, stream),
				 errhint("Define it with es_define().")));

	event = es_engine_event(values, isnull, &err);
	if (event == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("data or metadata of event \"%s\" is beyond the limits of the state engine",
						event_type),
				 errdetail("%s", es_engine_message(&err))));

	if ((*def)->schema != NULL)
	{
		EsEngineStatus status = es_schema_validate((*def)->schema, es_event_data(event), &err);
		if (status == ES_ENGINE_NOMEM)
			es_engine_out_of_memory();
		if (status != ES_ENGINE_OK)
			ereport(ERROR,
					(errcode(ES_ERRCODE_SCHEMA_MISMATCH),
					 errmsg("data of event \"%s\" does not match its schema",
							event_type),
					 errdetail("%s", es_engine_message(&err))));
	}
	return event;
}

/*
 * Under the stream's lock: apply to the state after event version the
 * effect of def for event, or (def NULL) patch, the change of the event
 * being appended; on success the cached state includes it, and a snapshot
 * is written if the event's number is a multiple of
 * eventsourcing.snapshot_every.
 */
static void
advance_state(const char *stream, EsCategoryDefinitions *defs,
			  int64 version, EsDefinition *def, EsJson *event,
			  const EsJson *patch)
{
	EsEngineError err;
	EsEngineStatus status;
	EsState    *st;
	MemoryContext oldcxt;

	st = es_state_at(stream, defs, version, true);
	oldcxt = MemoryContextSwitchTo(st->cxt);
	if (def != NULL)
		status = es_effect_apply(st->doc, def->effect, event, &err);
	else
		status = es_patch_apply(st->doc, patch, &err);
	MemoryContextSwitchTo(oldcxt);
	if (status == ES_ENGINE_NOMEM)
	{
		/* the document may be anything now */
		es_state_release(st, false);
		es_engine_out_of_memory();
	}
	if (status != ES_ENGINE_OK)
	{
		/* the state is as it was, and still worth keeping */
		es_state_release(st, true);
		if (def == NULL)
			ereport(ERROR,
					(errcode(ES_ERRCODE_EFFECT_FAILED),
					 errmsg("undo or redo patch cannot be applied to stream \"%s\"",
							stream),
					 errdetail("%s", es_engine_detail(&err))));
		ereport(ERROR,
				(errcode(ES_ERRCODE_EFFECT_FAILED),
				 errmsg("event \"%s\" cannot be applied to stream \"%s\"",
						def->event_type, stream),
				 errdetail("%s", es_engine_detail(&err)),
				 errhint("Read the stream's state with es_replay() and append an event that applies to it.")));
	}

	st->version = version + 1;
	es_state_mark_dirty(st);
	if (es_snapshot_every > 0 && st->version % es_snapshot_every == 0)
		es_write_snapshot(st, defs);
	es_state_release(st, true);
}

/*
 * es_apply_event
 *		Under the stream's lock: apply the effect of an event being
 *		appended after event version of its stream, or raise 23S02
 *		(advance_state).
 */
void
es_apply_event(const char *stream, EsCategoryDefinitions *defs,
			   EsDefinition *def, EsJson *event, int64 version,
			   TimestampTz created_at)
{
	char		timestamp[ES_TIMESTAMP_BUFLEN];
	EsEngineError err;

	es_utc_timestamp(created_at, timestamp);
	if (es_event_stamp(event, version + 1, timestamp, &err) != ES_ENGINE_OK)
		es_engine_out_of_memory();
	advance_state(stream, defs, version, def, event, NULL);
}

/*
 * es_write_snapshot
 *		Store st as the snapshot of its stream at st->version, unless one
 *		is there already.  As the owner of es.events: the caller has
 *		checked that it may.
 */
void
es_write_snapshot(EsState *st, EsCategoryDefinitions *defs)
{
	Oid			argtypes[4] = {TEXTOID, INT8OID, INT8OID, JSONBOID};
	Datum		args[4];
	EsSavedUser saved;

	args[0] = CStringGetTextDatum(st->stream);
	args[1] = Int64GetDatum(st->version);
	args[2] = Int64GetDatum(defs->hash);
	args[3] = JsonbPGetDatum(es_engine_to_jsonb(st->doc));

	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_run(es_query_plan(&plan_insert_snapshot,
							   "INSERT INTO es.snapshots"
							   " (stream, sequence_number, definitions_hash, state)"
							   " VALUES ($1, $2, $3, $4)"
							   " ON CONFLICT (stream, sequence_number) DO NOTHING",
							   4, argtypes),
				 args, NULL, false, 0, SPI_OK_INSERT);
	es_spi_finish_as_owner(&saved);
}

/*
 * es_apply_patch_event
 *		Under the stream's lock: apply the patch of an undo or redo event
 *		being appended after event version (advance_state).
 */
void
es_apply_patch_event(const char *stream, EsCategoryDefinitions *defs,
					 const EsJson *patch, int64 version)
{
	advance_state(stream, defs, version, NULL, NULL, patch);
}

/*
 * es_stream_head
 *		A stream's version, compaction base and deletion, as the latest
 *		snapshot (latest) or the statement's snapshot sees them.
 */
void
es_stream_head(const char *stream, bool latest, EsStreamHead *head)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	SPIPlanPtr	plan;
	EsSavedUser saved;

	memset(head, 0, sizeof(*head));
	args[0] = CStringGetTextDatum(stream);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	if (es_has_removals())
		plan = es_query_plan(&plan_head,
							 "SELECT s.version, s.deleted_at IS NOT NULL,"
							 " (SELECT pg_catalog.max(r.last_sequence) FROM es.removals r"
							 "  WHERE r.stream OPERATOR(pg_catalog.=) s.stream"
							 "  AND r.state IS NOT NULL)"
							 " FROM es.streams s WHERE s.stream OPERATOR(pg_catalog.=) $1",
							 1, argtypes);
	else
		plan = es_query_plan(&plan_head_1_1,
							 "SELECT version, false, NULL::bigint FROM es.streams"
							 " WHERE stream OPERATOR(pg_catalog.=) $1",
							 1, argtypes);
	if (latest)
		es_query_run_latest(plan, args, NULL, 1, SPI_OK_SELECT);
	else
		es_query_run(plan, args, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		value;

		head->version = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 1, &isnull));
		head->deleted = DatumGetBool(SPI_getbinval(tuple, tupdesc, 2, &isnull));
		value = SPI_getbinval(tuple, tupdesc, 3, &isnull);
		head->base = isnull ? 0 : DatumGetInt64(value);
	}
	es_spi_finish_as_owner(&saved);
}

/*
 * es_check_not_compacted
 *		Refuse a deleted stream, and a version before its compaction base
 *		(the state after event base is the earliest there is).
 */
void
es_check_not_compacted(const char *stream, const EsStreamHead *head,
					   int64 version)
{
	if (head->deleted)
		ereport(ERROR,
				(errcode(ES_ERRCODE_STREAM_DELETED),
				 errmsg("stream \"%s\" was deleted", stream)));
	if (version < head->base)
		ereport(ERROR,
				(errcode(ES_ERRCODE_HISTORY_COMPACTED),
				 errmsg("state of stream \"%s\" after event %lld is no longer available",
						stream, (long long) version),
				 errdetail("Events 1 to %lld were removed by compaction; the earliest state is the one after event %lld.",
						   (long long) head->base, (long long) head->base)));
}

/*
 * es_state_base
 *		A new state, not cached, at the stream's earliest starting point:
 *		the state its last compaction kept, or {} before event 1.  *base
 *		gets its version.  The caller frees it with es_state_release(st,
 *		false).  With the statement's snapshot.
 */
EsState *
es_state_base(const char *stream, int64 *base)
{
	EsState    *st = es_state_new(stream);
	EsSavedUser saved;

	*base = 0;
	if (!es_has_removals())
		return st;
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1];

		args[0] = CStringGetTextDatum(stream);
		es_query_run(es_query_plan(&plan_base,
								   "SELECT last_sequence, state FROM es.removals"
								   " WHERE stream OPERATOR(pg_catalog.=) $1"
								   " AND state IS NOT NULL"
								   " ORDER BY last_sequence DESC LIMIT 1",
								   1, argtypes),
					 args, NULL, true, 1, SPI_OK_SELECT);
	}
	if (SPI_processed > 0)
	{
		bool		isnull;
		Jsonb	   *state;
		EsJson	   *doc;
		EsEngineError err;
		MemoryContext oldcxt;

		*base = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
		state = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 2, &isnull));
		oldcxt = MemoryContextSwitchTo(st->cxt);
		doc = JB_ROOT_IS_OBJECT(state) ? es_jsonb_to_engine(state, &err) : NULL;
		MemoryContextSwitchTo(oldcxt);
		if (doc == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("state kept by the compaction of stream \"%s\" is not usable",
							stream),
					 errdetail("The state after event %lld in es.removals is not a JSON object the state engine can read.",
							   (long long) *base)));
		es_json_free(st->doc);
		st->doc = doc;
		st->version = *base;
	}
	es_spi_finish_as_owner(&saved);
	return st;
}

/*
 * es_state_fold
 *		Fold the events after st->version up to version into st, from the
 *		events alone (no cache, no snapshot).
 */
void
es_state_fold(EsState *st, EsCategoryDefinitions *defs, int64 version,
			  bool latest)
{
	EsSavedUser saved;

	if (st->version >= version)
		return;
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	fold_events(st, defs, version, latest);
	es_spi_finish_as_owner(&saved);
}
