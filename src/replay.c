/*-------------------------------------------------------------------------
 *
 * replay.c
 *	  The SQL functions of states: es_replay, es_replay_at, es_replay_all
 *	  and es_snapshot.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/replay.c
 *
 *-------------------------------------------------------------------------
 *
 * The replay functions are STABLE and write nothing, so they work on a hot
 * standby; they read with the calling statement's snapshot.  The caller
 * needs SELECT on es.events: a state is made of events.  es_snapshot also
 * needs INSERT on es.snapshots, and a transaction that may write.
 *
 * A state is the document after a given event; before the first event
 * (version 0, or a stream that has none) it is {}.  In a category without
 * definitions no event changes anything, so every state is {}.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_replay);
PG_FUNCTION_INFO_V1(es_replay_at);
PG_FUNCTION_INFO_V1(es_replay_all);
PG_FUNCTION_INFO_V1(es_snapshot);

static SPIPlanPtr plan_base_time = NULL;
static SPIPlanPtr plan_category_streams_1_1 = NULL;
static SPIPlanPtr plan_at_time = NULL;
static SPIPlanPtr plan_category_streams = NULL;

/*
 * Refuse a caller without the privilege on a relation of schema es.
 */
static void
check_privilege(const char *relname, AclMode mode)
{
	AclResult	aclresult;

	aclresult = pg_class_aclcheck(es_relation_oid(relname), GetUserId(), mode);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, relname);
}

/*
 * The stream argument, checked; its category in *category.
 */
static char *
stream_argument(FunctionCallInfo fcinfo, int argno, const char **category)
{
	char	   *stream;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	stream = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	*category = es_stream_category(stream, strlen(stream));
	return stream;
}

/*
 * Run a one-row, one-bigint query as the owner of es.events with the
 * statement's snapshot; 0 if it returns no row or a null.
 */
static int64
query_bigint(SPIPlanPtr *plan, const char *query, int nargs, Oid *argtypes,
			 Datum *args)
{
	EsSavedUser saved;
	int64		result = 0;

	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_run(es_query_plan(plan, query, nargs, argtypes), args, NULL,
				 true, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetInt64(value);
	}
	es_spi_finish_as_owner(&saved);
	return result;
}

/*
 * The state of a stream after event version, as jsonb.
 */
static Jsonb *
state_jsonb(const char *stream, const char *category, int64 version)
{
	EsCategoryDefinitions *defs;
	EsState    *st;
	Jsonb	   *result;

	defs = es_category_definitions(category);
	if (version == 0 || defs->ndefinitions == 0)
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												  CStringGetDatum("{}")));
	st = es_state_at(stream, defs, version, false);
	result = es_engine_to_jsonb(st->doc);
	es_state_release(st, true);
	return result;
}

/*
 * es_replay(stream text, at_sequence bigint DEFAULT NULL) RETURNS jsonb
 *		The state of a stream after event at_sequence (NULL: its last).
 */
Datum
es_replay(PG_FUNCTION_ARGS)
{
	const char *category;
	char	   *stream = stream_argument(fcinfo, 0, &category);
	EsStreamHead h;
	int64		head;
	int64		at;

	check_privilege("events", ACL_SELECT);
	es_stream_head(stream, false, &h);
	head = h.version;
	at = PG_ARGISNULL(1) ? head : PG_GETARG_INT64(1);
	if (at < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sequence number must not be negative"),
				 errdetail("The value was %lld.", (long long) at)));
	if (at > head)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sequence number %lld is beyond the end of stream \"%s\"",
						(long long) at, stream),
				 errdetail("The stream's version is %lld.", (long long) head)));
	es_check_not_compacted(stream, &h, at);

	PG_RETURN_JSONB_P(state_jsonb(stream, category, at));
}

/*
 * es_sequence_at_time
 *		The number of the last event of stream appended at or before at
 *		(0 before the first), whose state es_replay can give: an error if
 *		compaction removed it (or the stream was deleted).
 */
int64
es_sequence_at_time(const char *stream, Datum at)
{
	Oid			argtypes[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		args[2];
	EsStreamHead h;
	int64		seq;

	args[0] = CStringGetTextDatum(stream);
	args[1] = at;
	seq = query_bigint(&plan_at_time,
					   "SELECT max(sequence_number) FROM es.events"
					   " WHERE stream OPERATOR(pg_catalog.=) $1"
					   " AND created_at OPERATOR(pg_catalog.<=) $2",
					   2, argtypes, args);

	/*
	 * Before the first event left after a compaction: the state it kept,
	 * if its last removed event was appended by then.
	 */
	es_stream_head(stream, false, &h);
	if (seq < h.base &&
		query_bigint(&plan_base_time,
					 "SELECT max(last_sequence) FROM es.removals"
					 " WHERE stream OPERATOR(pg_catalog.=) $1"
					 " AND state IS NOT NULL"
					 " AND last_created_at OPERATOR(pg_catalog.<=) $2",
					 2, argtypes, args) == h.base)
		seq = h.base;
	if (!h.deleted && seq < h.base)
		ereport(ERROR,
				(errcode(ES_ERRCODE_HISTORY_COMPACTED),
				 errmsg("state of stream \"%s\" at %s is no longer available",
						stream, timestamptz_to_str(DatumGetTimestampTz(at))),
				 errdetail("Events 1 to %lld were removed by compaction; the earliest state is the one after event %lld.",
						   (long long) h.base, (long long) h.base)));
	es_check_not_compacted(stream, &h, seq);
	return seq;
}

/*
 * es_stream_version
 *		The version of stream as the statement's snapshot sees it.
 */
int64
es_stream_version(const char *stream)
{
	EsStreamHead h;

	es_stream_head(stream, false, &h);
	return h.version;
}

/*
 * es_replay_at(stream text, at timestamptz) RETURNS jsonb
 *		The state after the last event appended at or before at.
 */
Datum
es_replay_at(PG_FUNCTION_ARGS)
{
	const char *category;
	char	   *stream = stream_argument(fcinfo, 0, &category);
	int64		at;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("time must not be null")));
	check_privilege("events", ACL_SELECT);
	at = es_sequence_at_time(stream, PG_GETARG_DATUM(1));

	PG_RETURN_JSONB_P(state_jsonb(stream, category, at));
}

/*
 * es_replay_all(category text) RETURNS TABLE(stream text, version bigint,
 *		state jsonb)
 *		The current state of every stream of a category, in stream order.
 */
Datum
es_replay_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char	   *category;
	EsSavedUser saved;
	MemoryContext rowcxt;
	uint64		i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("category must not be null")));
	category = text_to_cstring(PG_GETARG_TEXT_PP(0));
	es_check_category(category, strlen(category));
	check_privilege("events", ACL_SELECT);

	InitMaterializedSRF(fcinfo, 0);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext,
								   "eventsourcing replayed stream",
								   ALLOCSET_DEFAULT_SIZES);

	args[0] = CStringGetTextDatum(category);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	/* deleted streams have no state */
	if (es_has_removals())
		es_query_run(es_query_plan(&plan_category_streams,
								   "SELECT stream, version FROM es.streams"
								   " WHERE category OPERATOR(pg_catalog.=) $1"
								   " AND deleted_at IS NULL"
								   " ORDER BY stream",
								   1, argtypes),
					 args, NULL, true, 0, SPI_OK_SELECT);
	else
		es_query_run(es_query_plan(&plan_category_streams_1_1,
								   "SELECT stream, version FROM es.streams"
								   " WHERE category OPERATOR(pg_catalog.=) $1"
								   " ORDER BY stream",
								   1, argtypes),
					 args, NULL, true, 0, SPI_OK_SELECT);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		bool		isnull;
		char	   *stream;
		int64		version;
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(rowcxt);
		values[0] = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull);
		values[1] = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull);
		stream = TextDatumGetCString(values[0]);
		version = DatumGetInt64(values[1]);
		values[2] = JsonbPGetDatum(state_jsonb(stream, category, version));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	es_spi_finish_as_owner(&saved);
	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}

/*
 * es_snapshot(stream text) RETURNS bigint
 *		Store the current state of a stream as a snapshot; return its
 *		sequence number, 0 for a stream without events.
 */
Datum
es_snapshot(PG_FUNCTION_ARGS)
{
	const char *category;
	char	   *stream = stream_argument(fcinfo, 0, &category);
	EsCategoryDefinitions *defs;
	EsState    *st;
	EsStreamHead h;
	int64		head;

	PreventCommandIfReadOnly("es_snapshot()");
	check_privilege("events", ACL_SELECT);
	check_privilege("snapshots", ACL_INSERT);

	defs = es_category_definitions(category);
	if (defs->ndefinitions == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" has no state to store", stream),
				 errdetail("Category \"%s\" has no event definitions.", category)));

	es_stream_head(stream, false, &h);
	es_check_not_compacted(stream, &h, h.version);
	head = h.version;
	if (head == 0)
		PG_RETURN_INT64(0);
	st = es_state_at(stream, defs, head, false);
	es_write_snapshot(st, defs);
	es_state_release(st, true);
	PG_RETURN_INT64(head);
}
