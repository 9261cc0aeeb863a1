/*-------------------------------------------------------------------------
 *
 * compact.c
 *	  Removing events: es_compact, es_retain, es_delete_stream.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/compact.c
 *
 *-------------------------------------------------------------------------
 *
 * These are the only doors through the append-only rule: while one of
 * them deletes from es.events, es_removing_events lets the append-only
 * trigger pass the DELETE.  Each works under the stream's append lock, in
 * the caller's transaction, and writes an audit row into es.removals:
 * what was removed (sequence numbers, global positions, times, count), by
 * whom and in which transaction.
 *
 * Compaction removes the events up to a snapshot and keeps that snapshot's
 * state in es.removals: it becomes the stream's earliest starting point
 * (state.c folds from it whatever the definitions become).  States after
 * it are unchanged, so the state caches stay right; they are dropped all
 * the same, in every session, because a session may hold a state before
 * the new starting point and would look for the removed events after it.
 *
 * Deleting a stream removes its events, snapshots and kept states, and
 * marks its row in es.streams deleted; appending to it is refused from then
 * on (relation.c), so that a client still holding the old stream cannot
 * start it again by mistake.
 *
 * The functions run their statements as the owner of es.events.  Who may
 * call them is decided by EXECUTE on them, which the install script
 * revokes from PUBLIC.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_compact);
PG_FUNCTION_INFO_V1(es_retain);
PG_FUNCTION_INFO_V1(es_delete_stream);

/* set while we delete from es.events (trigger.c lets the DELETE through) */
bool		es_removing_events = false;

static SPIPlanPtr plan_latest_snapshot = NULL;
static SPIPlanPtr plan_removed = NULL;
static SPIPlanPtr plan_delete_events = NULL;
static SPIPlanPtr plan_delete_snapshots = NULL;
static SPIPlanPtr plan_insert_removal = NULL;
static SPIPlanPtr plan_forget_states = NULL;
static SPIPlanPtr plan_mark_deleted = NULL;
static SPIPlanPtr plan_retain_streams = NULL;

/*
 * A stream argument, checked, with its category's definitions.
 */
static char *
stream_argument(FunctionCallInfo fcinfo, const char **category)
{
	char	   *stream;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	stream = text_to_cstring(PG_GETARG_TEXT_PP(0));
	*category = es_stream_category(stream, strlen(stream));
	return stream;
}

/*
 * Compaction keeps a state, so it needs definitions.
 */
static EsCategoryDefinitions *
definitions_for_compaction(const char *category)
{
	EsCategoryDefinitions *defs = es_category_definitions(category);

	if (defs->ndefinitions == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("category \"%s\" cannot be compacted", category),
				 errdetail("Category \"%s\" has no event definitions, so there is no state to keep in place of its events.",
						   category)));
	return defs;
}

/*
 * Every session drops its cached definitions and states (the relcache
 * callback of es.event_types does it), this one too.
 */
static void
drop_cached_states(void)
{
	CacheInvalidateRelcacheByRelid(es_relation_oid("event_types"));
	es_state_cache_reset();
}

/*
 * remove_events
 *		Delete the events of stream up to last (all of them for a
 *		deletion), write the audit row, return how many were removed.
 *		state is the state after event last, kept as the stream's starting
 *		point, or NULL.  The caller holds the stream's lock.
 */
static int64
remove_events(const char *stream, const char *category, const char *kind,
			  int64 last, Jsonb *state, int64 definitions_hash)
{
	Oid			argtypes[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	Oid			insert_types[11] = {TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID,
	INT8OID, INT8OID, INT8OID, INT8OID, JSONBOID, TEXTOID};
	Datum		insert_args[11];
	char		insert_nulls[11];
	Datum		removed[4];
	bool		isnull[4];
	char	   *role = GetUserNameFromId(GetUserId(), false);
	EsSavedUser saved;
	int64		count;
	int			i;

	args[0] = CStringGetTextDatum(stream);
	args[1] = Int64GetDatum(last);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);

	es_query_run_latest(es_query_plan(&plan_removed,
									  "SELECT count(*), min(sequence_number),"
									  " min(global_position), max(global_position)"
									  " FROM es.events"
									  " WHERE stream OPERATOR(pg_catalog.=) $1"
									  " AND sequence_number OPERATOR(pg_catalog.<=) $2",
									  2, argtypes),
						args, NULL, 1, SPI_OK_SELECT);
	for (i = 0; i < 4; i++)
		removed[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								   i + 1, &isnull[i]);
	count = DatumGetInt64(removed[0]);
	if (count == 0 && state != NULL)
	{
		es_spi_finish_as_owner(&saved);
		return 0;
	}

	/* the audit row first: it reads created_at of the last removed event */
	insert_args[0] = args[0];
	insert_args[1] = CStringGetTextDatum(category);
	insert_args[2] = CStringGetTextDatum(kind);
	insert_args[3] = isnull[1] ? Int64GetDatum(last + 1) : removed[1];
	insert_args[4] = Int64GetDatum(last);
	insert_args[5] = removed[0];
	insert_args[6] = removed[2];
	insert_args[7] = removed[3];
	insert_args[8] = Int64GetDatum(definitions_hash);
	insert_args[9] = state ? JsonbPGetDatum(state) : (Datum) 0;
	insert_args[10] = CStringGetTextDatum(role);
	memset(insert_nulls, ' ', sizeof(insert_nulls));
	insert_nulls[6] = isnull[2] ? 'n' : ' ';
	insert_nulls[7] = isnull[3] ? 'n' : ' ';
	insert_nulls[8] = state ? ' ' : 'n';
	insert_nulls[9] = state ? ' ' : 'n';
	es_query_write_latest(es_query_plan(&plan_insert_removal,
									  "INSERT INTO es.removals (stream, category, kind,"
									  " first_sequence, last_sequence, events_removed,"
									  " first_position, last_position, first_created_at,"
									  " last_created_at, definitions_hash, state,"
									  " removed_by, removed_at, transaction_id)"
									  " SELECT $1, $2, $3, $4, $5, $6, $7, $8,"
									  " (SELECT min(created_at) FROM es.events"
									  "  WHERE stream OPERATOR(pg_catalog.=) $1"
									  "  AND sequence_number OPERATOR(pg_catalog.<=) $5),"
									  " (SELECT created_at FROM es.events"
									  "  WHERE stream OPERATOR(pg_catalog.=) $1"
									  "  AND sequence_number OPERATOR(pg_catalog.=) $5),"
									  " $9, $10, $11, pg_catalog.now(),"
									  " pg_catalog.pg_current_xact_id()",
									  11, insert_types),
						insert_args, insert_nulls, 0, SPI_OK_INSERT);

	es_removing_events = true;
	PG_TRY();
	{
		es_query_write_latest(es_query_plan(&plan_delete_events,
										  "DELETE FROM es.events"
										  " WHERE stream OPERATOR(pg_catalog.=) $1"
										  " AND sequence_number OPERATOR(pg_catalog.<=) $2",
										  2, argtypes),
							args, NULL, 0, SPI_OK_DELETE);
	}
	PG_FINALLY();
	{
		es_removing_events = false;
	}
	PG_END_TRY();
	if ((int64) SPI_processed != count)
		elog(ERROR, "deleted " UINT64_FORMAT " events of stream \"%s\", expected " INT64_FORMAT,
			 SPI_processed, stream, count);

	/* snapshots before the new starting point can no longer be used */
	es_query_write_latest(es_query_plan(&plan_delete_snapshots,
									  "DELETE FROM es.snapshots"
									  " WHERE stream OPERATOR(pg_catalog.=) $1"
									  " AND sequence_number OPERATOR(pg_catalog.<=) $2",
									  2, argtypes),
						args, NULL, 0, SPI_OK_DELETE);
	es_spi_finish_as_owner(&saved);

	drop_cached_states();
	return count;
}

/*
 * compact_to
 *		Compact stream up to event last, keeping the state after it.  The
 *		caller holds the stream's lock.
 */
static int64
compact_to(const char *stream, const char *category, EsCategoryDefinitions *defs,
		   const char *kind, int64 last)
{
	EsState    *st = es_state_at(stream, defs, last, true);
	Jsonb	   *state = es_engine_to_jsonb(st->doc);

	es_state_release(st, true);
	return remove_events(stream, category, kind, last, state, defs->hash);
}

/*
 * Lock a stream for removal and read its head; refuse a deleted stream.
 */
static void
lock_for_removal(const char *stream, const char *fn, EsStreamHead *head)
{
	PreventCommandIfReadOnly(fn);
	es_lock_stream(stream, strlen(stream));
	/* earlier commands of this statement may have appended (several calls in one query) */
	CommandCounterIncrement();
	es_stream_head(stream, true, head);
	if (head->deleted)
		es_check_not_compacted(stream, head, head->version);
}

/*
 * es_compact(stream text) RETURNS bigint
 *		Remove the events of a stream up to its latest snapshot (made under
 *		the current definitions); return how many were removed.
 */
Datum
es_compact(PG_FUNCTION_ARGS)
{
	const char *category;
	char	   *stream = stream_argument(fcinfo, &category);
	EsCategoryDefinitions *defs = definitions_for_compaction(category);
	EsStreamHead head;
	Oid			argtypes[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		args[3];
	EsSavedUser saved;
	int64		last = 0;

	lock_for_removal(stream, "es_compact()", &head);

	args[0] = CStringGetTextDatum(stream);
	args[1] = Int64GetDatum(head.version);
	args[2] = Int64GetDatum(defs->hash);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_run_latest(es_query_plan(&plan_latest_snapshot,
									  "SELECT max(sequence_number) FROM es.snapshots"
									  " WHERE stream OPERATOR(pg_catalog.=) $1"
									  " AND sequence_number OPERATOR(pg_catalog.<=) $2"
									  " AND definitions_hash OPERATOR(pg_catalog.=) $3",
									  3, argtypes),
						args, NULL, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		v = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		last = isnull ? 0 : DatumGetInt64(v);
	}
	es_spi_finish_as_owner(&saved);

	if (last <= head.base)
		PG_RETURN_INT64(0);
	PG_RETURN_INT64(compact_to(stream, category, defs, "compact", last));
}

/*
 * es_retain(category text, keep interval) RETURNS bigint
 *		In every stream of a category, remove the events appended more than
 *		keep ago, keeping the state they made; return how many were
 *		removed.
 */
Datum
es_retain(PG_FUNCTION_ARGS)
{
	char	   *category;
	Interval   *keep;
	EsCategoryDefinitions *defs;
	Datum		cutoff;
	Oid			argtypes[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		args[2];
	EsSavedUser saved;
	char	  **streams;
	int64	   *lasts;
	uint64		nstreams;
	uint64		i;
	int64		total = 0;
	MemoryContext callercxt;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("category must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("retention period must not be null")));
	category = text_to_cstring(PG_GETARG_TEXT_PP(0));
	es_check_category(category, strlen(category));
	keep = PG_GETARG_INTERVAL_P(1);
	if (keep->month < 0 || keep->day < 0 || keep->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention period must not be negative")));
	defs = definitions_for_compaction(category);
	PreventCommandIfReadOnly("es_retain()");

	cutoff = DirectFunctionCall2(timestamptz_mi_interval,
								 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
								 IntervalPGetDatum(keep));

	/* the streams with events older than the cutoff, and their last one */
	args[0] = CStringGetTextDatum(category);
	args[1] = cutoff;
	callercxt = CurrentMemoryContext;
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_run(es_query_plan(&plan_retain_streams,
							   "SELECT e.stream, max(e.sequence_number)"
							   " FROM es.events e"
							   " WHERE e.category OPERATOR(pg_catalog.=) $1"
							   " AND e.created_at OPERATOR(pg_catalog.<) $2"
							   " GROUP BY e.stream ORDER BY e.stream",
							   2, argtypes),
				 args, NULL, true, 0, SPI_OK_SELECT);
	nstreams = SPI_processed;
	/* in the caller's memory: SPI_finish frees the SPI context */
	streams = MemoryContextAlloc(callercxt, sizeof(char *) * (nstreams + 1));
	lasts = MemoryContextAlloc(callercxt, sizeof(int64) * (nstreams + 1));
	for (i = 0; i < nstreams; i++)
	{
		bool		isnull;

		streams[i] = MemoryContextStrdup(callercxt,
										 SPI_getvalue(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 1));
		lasts[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
											   SPI_tuptable->tupdesc, 2, &isnull));
	}
	es_spi_finish_as_owner(&saved);

	for (i = 0; i < nstreams; i++)
	{
		EsStreamHead head;

		CHECK_FOR_INTERRUPTS();
		lock_for_removal(streams[i], "es_retain()", &head);
		if (lasts[i] > head.base)
			total += compact_to(streams[i], category, defs, "retain", lasts[i]);
	}
	PG_RETURN_INT64(total);
}

/*
 * es_delete_stream(stream text) RETURNS bigint
 *		Delete a stream: its events, snapshots and kept states; appending
 *		to it is refused from now on.  Returns how many events were
 *		removed.
 */
Datum
es_delete_stream(PG_FUNCTION_ARGS)
{
	const char *category;
	char	   *stream = stream_argument(fcinfo, &category);
	EsStreamHead head;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	EsSavedUser saved;
	int64		count;

	lock_for_removal(stream, "es_delete_stream()", &head);
	if (head.version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" does not exist", stream)));

	count = remove_events(stream, category, "delete", head.version, NULL, 0);

	args[0] = CStringGetTextDatum(stream);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_write_latest(es_query_plan(&plan_forget_states,
									  "UPDATE es.removals SET state = NULL"
									  " WHERE stream OPERATOR(pg_catalog.=) $1"
									  " AND state IS NOT NULL",
									  1, argtypes),
						args, NULL, 0, SPI_OK_UPDATE);
	es_query_write_latest(es_query_plan(&plan_mark_deleted,
									  "UPDATE es.streams SET deleted_at = pg_catalog.now(),"
									  " updated_at = pg_catalog.now()"
									  " WHERE stream OPERATOR(pg_catalog.=) $1",
									  1, argtypes),
						args, NULL, 1, SPI_OK_UPDATE);
	es_spi_finish_as_owner(&saved);
	PG_RETURN_INT64(count);
}
