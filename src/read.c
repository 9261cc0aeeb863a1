/*-------------------------------------------------------------------------
 *
 * read.c
 *	  Reading the event store: es_version, es_read, es_read_all, es_sync.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/read.c
 *
 *-------------------------------------------------------------------------
 *
 * All readers are STABLE and run their queries read-only, so every query of
 * one call sees the calling statement's snapshot: es_sync's events and its
 * current_sequence agree.  They run as the calling user, who needs SELECT on
 * es.events (and es.streams for es_version and es_sync).
 *
 * es_read_all and the order of commits
 * ------------------------------------
 * Global positions are drawn when an event is appended, not when its
 * transaction commits, so a transaction holding position 100 may commit
 * after another one holding 101.  A reader that walked positions in order
 * and remembered "101" would never see 100.
 *
 * es_read_all therefore returns only the events of transactions older than
 * the snapshot's xmin: every such transaction has ended, and no transaction
 * still running or started later can get a transaction id below xmin.  It
 * orders them by (transaction_id, global_position) and continues after the
 * (transaction_id, global_position) of the event whose position the caller
 * passes.  Everything it will ever return after that point sorts after it,
 * so nothing is skipped or returned twice.  Within one stream this order is
 * the sequence order (the append trigger guarantees it, see trigger.c).
 *
 * The trade-off: an event becomes readable only when every transaction that
 * took a transaction id before its own has ended.  A long-running writing
 * transaction, even one unrelated to the event store, holds back es_read_all
 * (not es_read) until it ends.  Read-only transactions hold back nothing.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_version);
PG_FUNCTION_INFO_V1(es_read);
PG_FUNCTION_INFO_V1(es_read_all);
PG_FUNCTION_INFO_V1(es_sync);

/* rows fetched from a cursor at a time */
#define ES_FETCH_SIZE 1000

static SPIPlanPtr plan_version = NULL;
static SPIPlanPtr plan_read = NULL;
static SPIPlanPtr plan_read_all = NULL;
static SPIPlanPtr plan_read_category = NULL;
static SPIPlanPtr plan_position_xid = NULL;

/*
 * Fetch the stream argument, refusing NULL and invalid names.
 */
static Datum
stream_argument(FunctionCallInfo fcinfo, int argno)
{
	text	   *stream;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	stream = PG_GETARG_TEXT_PP(argno);
	(void) es_stream_category(text_to_cstring(stream),
							  VARSIZE_ANY_EXHDR(stream));
	return PointerGetDatum(stream);
}

/*
 * Fetch an optional non-negative bigint argument (NULL means 0).
 */
static int64
position_argument(FunctionCallInfo fcinfo, int argno, const char *what)
{
	int64		value;

	if (PG_ARGISNULL(argno))
		return 0;
	value = PG_GETARG_INT64(argno);
	if (value < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", what),
				 errdetail("The value was %lld.", (long long) value)));
	return value;
}

/*
 * Fetch the max_count argument as a LIMIT parameter (NULL means no limit).
 */
static void
limit_argument(FunctionCallInfo fcinfo, int argno, Datum *value, char *null)
{
	int32		count;

	*null = 'n';
	*value = (Datum) 0;
	if (PG_ARGISNULL(argno))
		return;
	count = PG_GETARG_INT32(argno);
	if (count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must not be negative"),
				 errdetail("The value was %d.", count)));
	*value = Int64GetDatum((int64) count);
	*null = ' ';
}

/*
 * read_into_tuplestore
 *		Run a read-only plan through a cursor into the function's result,
 *		then disconnect from SPI.
 *
 * The caller has connected to SPI (to prepare the plan).  Rows move in
 * batches, so memory stays bounded however many events match; the
 * tuplestore spills to disk past work_mem.
 */
static void
read_into_tuplestore(FunctionCallInfo fcinfo, SPIPlanPtr plan,
					 Datum *values, const char *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Portal		portal;

	portal = SPI_cursor_open(NULL, plan, values, nulls, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, ES_FETCH_SIZE);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	es_spi_finish();
}

/*
 * Version of a stream in the current snapshot; call inside SPI.
 */
static int64
read_version(Datum stream)
{
	Oid			argtypes[1] = {TEXTOID};
	bool		isnull;

	es_query_run(es_query_plan(&plan_version,
							   "SELECT version FROM es.streams"
							   " WHERE stream OPERATOR(pg_catalog.=) $1",
							   1, argtypes),
				 &stream, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The plan reading one stream: stream, after_sequence, limit.
 */
static SPIPlanPtr
stream_read_plan(void)
{
	Oid			argtypes[3] = {TEXTOID, INT8OID, INT8OID};

	return es_query_plan(&plan_read,
						"SELECT * FROM es.events"
						" WHERE stream OPERATOR(pg_catalog.=) $1"
						" AND sequence_number OPERATOR(pg_catalog.>) $2"
						" ORDER BY sequence_number LIMIT $3",
						3, argtypes);
}

/*
 * es_version
 *		The stream's current version: the sequence number of its last event,
 *		0 if it has none.
 */
Datum
es_version(PG_FUNCTION_ARGS)
{
	Datum		stream = stream_argument(fcinfo, 0);
	int64		version;

	es_spi_connect();
	version = read_version(stream);
	es_spi_finish();

	PG_RETURN_INT64(version);
}

/*
 * es_read
 *		Events of one stream with a sequence number above after_sequence, in
 *		sequence order, at most max_count of them.
 */
Datum
es_read(PG_FUNCTION_ARGS)
{
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};

	args[0] = stream_argument(fcinfo, 0);
	args[1] = Int64GetDatum(position_argument(fcinfo, 1, "after_sequence"));
	limit_argument(fcinfo, 2, &args[2], &nulls[2]);

	InitMaterializedSRF(fcinfo, 0);
	es_spi_connect();
	read_into_tuplestore(fcinfo, stream_read_plan(), args, nulls);
	return (Datum) 0;
}

/*
 * es_read_all
 *		Events of all streams, or of one category, after a global position,
 *		in commit-safe order (see the file header).
 */
Datum
es_read_all(PG_FUNCTION_ARGS)
{
	int64		after = position_argument(fcinfo, 0, "after_position");
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	SPIPlanPtr	plan;

	/* the transaction id of the event at after_position */
	args[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(0));
	args[1] = Int64GetDatum(after);
	limit_argument(fcinfo, 1, &args[2], &nulls[2]);
	if (!PG_ARGISNULL(2))
	{
		text	   *category = PG_GETARG_TEXT_PP(2);

		es_check_category(VARDATA_ANY(category), VARSIZE_ANY_EXHDR(category));
		args[3] = PointerGetDatum(category);
	}

	InitMaterializedSRF(fcinfo, 0);
	es_spi_connect();

	if (after > 0)
	{
		Oid			argtypes[1] = {INT8OID};
		bool		isnull;

		es_query_run(es_query_plan(&plan_position_xid,
								   "SELECT transaction_id,"
								   " transaction_id OPERATOR(pg_catalog.<)"
								   "   pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())"
								   " FROM es.events"
								   " WHERE global_position OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
					 &args[1], NULL, true, 1, SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no event at global position %lld", (long long) after),
					 errhint("Pass the global_position of the last event that es_read_all returned, or 0 to start from the beginning.")));

		/*
		 * A position es_read_all has not returned yet (taken from es_read or
		 * a notification) could make the reader skip older transactions'
		 * events.
		 */
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 2, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event at global position %lld cannot be read by es_read_all yet",
							(long long) after),
					 errdetail("A transaction that started writing before it may still be running."),
					 errhint("Pass the global_position of the last event that es_read_all returned.")));
		args[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								1, &isnull);
	}

	if (PG_ARGISNULL(2))
	{
		Oid			argtypes[3] = {XID8OID, INT8OID, INT8OID};

		plan = es_query_plan(&plan_read_all,
							"SELECT * FROM es.events"
							" WHERE (transaction_id, global_position)"
							"   OPERATOR(pg_catalog.>) ($1, $2)"
							" AND transaction_id OPERATOR(pg_catalog.<)"
							"   pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())"
							" ORDER BY transaction_id, global_position LIMIT $3",
							3, argtypes);
	}
	else
	{
		Oid			argtypes[4] = {XID8OID, INT8OID, INT8OID, TEXTOID};

		plan = es_query_plan(&plan_read_category,
							"SELECT * FROM es.events"
							" WHERE category OPERATOR(pg_catalog.=) $4"
							" AND (transaction_id, global_position)"
							"   OPERATOR(pg_catalog.>) ($1, $2)"
							" AND transaction_id OPERATOR(pg_catalog.<)"
							"   pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())"
							" ORDER BY transaction_id, global_position LIMIT $3",
							4, argtypes);
	}

	read_into_tuplestore(fcinfo, plan, args, nulls);
	return (Datum) 0;
}

/*
 * es_sync
 *		The catch-up message for a client that has applied the events of a
 *		stream up to last_sequence:
 *
 *		{"type":"sync_batch","events":[<event message>...],
 *		 "current_sequence":<version>}
 *
 * Events are in the shape of the NOTIFY payload (message.c), never
 * truncated.  A NULL last_sequence means 0.
 */
Datum
es_sync(PG_FUNCTION_ARGS)
{
	Datum		args[3];
	char		nulls[3] = {' ', ' ', 'n'};
	int64		version;
	StringInfoData buf;
	Portal		portal;
	bool		first = true;
	EsStreamHead head;
	char	   *name;
	int64		last;

	args[0] = stream_argument(fcinfo, 0);
	last = position_argument(fcinfo, 1, "last_sequence");
	args[1] = Int64GetDatum(last);
	args[2] = (Datum) 0;

	/*
	 * A client behind a compaction would miss the removed events: it must
	 * start again from a state.
	 */
	name = TextDatumGetCString(args[0]);
	es_stream_head(name, false, &head);
	if (head.deleted)
		ereport(ERROR,
				(errcode(ES_ERRCODE_STREAM_DELETED),
				 errmsg("stream \"%s\" was deleted", name)));
	if (last < head.base)
		ereport(ERROR,
				(errcode(ES_ERRCODE_HISTORY_COMPACTED),
				 errmsg("events of stream \"%s\" after event %lld are no longer all available",
						name, (long long) last),
				 errdetail("Events 1 to %lld were removed by compaction.",
						   (long long) head.base),
				 errhint("Load the state with es_replay() and catch up from its version.")));

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"type\":\"sync_batch\",\"events\":[");

	es_spi_connect();
	version = read_version(args[0]);
	portal = SPI_cursor_open(NULL, stream_read_plan(), args, nulls, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, ES_FETCH_SIZE);
		if (SPI_processed == 0)
			break;
		es_check_events_tupdesc(SPI_tuptable->tupdesc);
		for (i = 0; i < SPI_processed; i++)
		{
			Datum		values[Natts_es_events];
			bool		isnull[Natts_es_events];
			EsEventMessage ev;

			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
							  values, isnull);
			es_event_message_from_row(&ev, values, isnull);
			if (!first)
				appendStringInfoChar(&buf, ',');
			first = false;
			/* buf was allocated before SPI_connect: it outlives SPI_finish */
			es_append_event_message(&buf, &ev, true);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	es_spi_finish();

	appendStringInfo(&buf, "],\"current_sequence\":" INT64_FORMAT "}", version);

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
