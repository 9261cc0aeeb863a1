/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  es_verify: every broken invariant of the event store, one row each.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/verify.c
 *
 *-------------------------------------------------------------------------
 *
 * The invariants the append path keeps, checked from the stored rows
 * alone (no cache is trusted):
 *	- es.streams.version is the stream's last sequence number, or the last
 *	  event a compaction removed when none is left;
 *	- the events after the compaction base are numbered base + 1, ..., version
 *	  with no gap, their global positions increase with their numbers, and
 *	  their category is their stream's;
 *	- every event has a row in es.streams; a deleted stream has no events;
 *	- in a category with definitions, every event applies to the state
 *	  folded from the base (so do undo and redo patches), and every
 *	  snapshot made under the current definitions equals that fold.
 * The structural checks are queries; the fold runs in a subtransaction per
 * stream, so that an event that no longer applies becomes a row, not an
 * error.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_verify);

static SPIPlanPtr plan_structure = NULL;
static SPIPlanPtr plan_folded = NULL;
static SPIPlanPtr plan_snapshots = NULL;

/*
 * The structural problems, as (stream, problem) rows; $1 is a stream name
 * or NULL for all.
 */
static const char *structure_query =
"WITH base AS ("
" SELECT stream, max(last_sequence) AS base FROM es.removals"
" WHERE state IS NOT NULL GROUP BY stream),"
" ev AS ("
" SELECT e.stream, e.category, e.sequence_number, e.global_position,"
" pg_catalog.lag(e.sequence_number) OVER w AS prev_seq,"
" pg_catalog.lag(e.global_position) OVER w AS prev_pos"
" FROM es.events e WHERE $1 IS NULL OR e.stream OPERATOR(pg_catalog.=) $1"
" WINDOW w AS (PARTITION BY e.stream ORDER BY e.sequence_number)),"
" agg AS ("
" SELECT stream, pg_catalog.min(sequence_number) AS first_seq,"
" pg_catalog.max(sequence_number) AS last_seq, pg_catalog.count(*) AS n"
" FROM ev GROUP BY stream)"
/* version against the events */
" SELECT s.stream, pg_catalog.format('version is %s but the last event is %s',"
"  s.version, coalesce(a.last_seq, b.base, 0))"
" FROM es.streams s LEFT JOIN agg a USING (stream) LEFT JOIN base b USING (stream)"
" WHERE ($1 IS NULL OR s.stream OPERATOR(pg_catalog.=) $1) AND s.deleted_at IS NULL"
" AND s.version OPERATOR(pg_catalog.<>) coalesce(a.last_seq, b.base, 0)"
" UNION ALL"
/* a deleted stream keeps no events */
" SELECT s.stream, pg_catalog.format('stream was deleted but still has %s events', a.n)"
" FROM es.streams s JOIN agg a USING (stream) WHERE s.deleted_at IS NOT NULL"
" UNION ALL"
/* events before the first one left */
" SELECT a.stream, CASE WHEN a.first_seq - coalesce(b.base, 0) = 2"
"  THEN pg_catalog.format('event %s is missing', a.first_seq - 1)"
"  ELSE pg_catalog.format('events %s to %s are missing',"
"  coalesce(b.base, 0) + 1, a.first_seq - 1) END"
" FROM agg a LEFT JOIN base b USING (stream)"
" WHERE a.first_seq OPERATOR(pg_catalog.>) coalesce(b.base, 0) + 1"
" UNION ALL"
" SELECT a.stream, pg_catalog.format('event %s is still there although compaction removed events up to %s',"
"  a.first_seq, b.base)"
" FROM agg a JOIN base b USING (stream) WHERE a.first_seq OPERATOR(pg_catalog.<=) b.base"
" UNION ALL"
/* gaps */
" SELECT stream, CASE WHEN sequence_number - prev_seq = 2"
"  THEN pg_catalog.format('event %s is missing', prev_seq + 1)"
"  ELSE pg_catalog.format('events %s to %s are missing', prev_seq + 1, sequence_number - 1) END"
" FROM ev WHERE sequence_number - prev_seq > 1"
" UNION ALL"
" SELECT stream, pg_catalog.format('event %s has global position %s, lower than event %s (%s)',"
"  sequence_number, global_position, prev_seq, prev_pos)"
" FROM ev WHERE global_position OPERATOR(pg_catalog.<) prev_pos"
" UNION ALL"
/* categories and stream rows */
" SELECT e.stream, pg_catalog.format('event %s has category %s, but its stream is in category %s',"
"  e.sequence_number, pg_catalog.quote_literal(e.category), pg_catalog.quote_literal(s.category))"
" FROM ev e JOIN es.streams s USING (stream)"
" WHERE e.category OPERATOR(pg_catalog.<>) s.category"
" UNION ALL"
" SELECT a.stream, pg_catalog.format('%s events have no row in es.streams', a.n)"
" FROM agg a WHERE NOT EXISTS (SELECT FROM es.streams s WHERE s.stream OPERATOR(pg_catalog.=) a.stream)"
" ORDER BY 1, 2";

/*
 * Add a row to the result.
 */
static void
add_problem(ReturnSetInfo *rsinfo, const char *stream, const char *problem)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(stream);
	values[1] = CStringGetTextDatum(problem);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Fold a stream from its base, comparing each snapshot on the way; the
 * problems are added as rows.  Runs inside the caller's subtransaction:
 * an error ends the check of this stream.
 */
static void
fold_stream(ReturnSetInfo *rsinfo, const char *stream, const char *category,
			int64 version)
{
	EsCategoryDefinitions *defs = es_category_definitions(category);
	Oid			argtypes[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	EsSavedUser saved;
	EsState    *st;
	int64		base;
	int64	   *seqs;
	Jsonb	  **states;
	uint64		n;
	uint64		i;
	MemoryContext callercxt = CurrentMemoryContext;

	if (defs->ndefinitions == 0)
		return;

	args[0] = CStringGetTextDatum(stream);
	args[1] = Int64GetDatum(defs->hash);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_run(es_query_plan(&plan_snapshots,
							   "SELECT sequence_number, state FROM es.snapshots"
							   " WHERE stream OPERATOR(pg_catalog.=) $1"
							   " AND definitions_hash OPERATOR(pg_catalog.=) $2"
							   " ORDER BY sequence_number",
							   2, argtypes),
				 args, NULL, true, 0, SPI_OK_SELECT);
	n = SPI_processed;
	seqs = MemoryContextAlloc(callercxt, sizeof(int64) * (n + 1));
	states = MemoryContextAlloc(callercxt, sizeof(Jsonb *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		MemoryContext oldcxt;

		seqs[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
											  SPI_tuptable->tupdesc, 1, &isnull));
		oldcxt = MemoryContextSwitchTo(callercxt);
		states[i] = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 2,
													 &isnull));
		MemoryContextSwitchTo(oldcxt);
	}
	es_spi_finish_as_owner(&saved);

	st = es_state_base(stream, &base);
	for (i = 0; i < n; i++)
	{
		Jsonb	   *folded;

		if (seqs[i] < base || seqs[i] > version)
		{
			add_problem(rsinfo, stream,
						psprintf("snapshot at event %lld is outside the events there are (%lld to %lld)",
								 (long long) seqs[i], (long long) base, (long long) version));
			continue;
		}
		es_state_fold(st, defs, seqs[i], false);
		folded = es_engine_to_jsonb(st->doc);
		if (!DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(folded),
											  JsonbPGetDatum(states[i]))))
			add_problem(rsinfo, stream,
						psprintf("snapshot at event %lld differs from the state replayed from the events",
								 (long long) seqs[i]));
	}
	es_state_fold(st, defs, version, false);
	es_state_release(st, false);
}

/*
 * Run fold_stream in a subtransaction; an error becomes a row.
 */
static void
check_stream_fold(ReturnSetInfo *rsinfo, const char *stream,
				  const char *category, int64 version)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fold_stream(rsinfo, stream, category, version);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		/* states cached during the fold may be the wrong ones */
		es_state_cache_reset();
		add_problem(rsinfo, stream,
					edata->detail ?
					psprintf("%s: %s", edata->message, edata->detail) :
					edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * es_verify(stream text DEFAULT NULL) RETURNS TABLE(stream text, problem text)
 */
Datum
es_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char		nulls[1];
	EsSavedUser saved;
	MemoryContext callercxt;
	char	  **streams;
	char	  **categories;
	int64	   *versions;
	List	   *broken = NIL;
	uint64		n;
	uint64		i;

	if (!es_has_removals())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("es_verify() needs version 1.2 of the extension"),
				 errhint("Update the extension: ALTER EXTENSION eventsourcing UPDATE.")));
	if (pg_class_aclcheck(es_relation_oid("events"), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, "events");

	InitMaterializedSRF(fcinfo, 0);
	callercxt = CurrentMemoryContext;
	args[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	nulls[0] = PG_ARGISNULL(0) ? 'n' : ' ';

	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_run(es_query_plan(&plan_structure, structure_query, 1, argtypes),
				 args, nulls, true, 0, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext oldcxt = MemoryContextSwitchTo(callercxt);
		char	   *stream = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 1, &isnull));

		add_problem(rsinfo, stream,
					TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 2, &isnull)));
		broken = lappend(broken, stream);
		MemoryContextSwitchTo(oldcxt);
	}

	/* the streams to fold: those whose events are all there */
	es_query_run(es_query_plan(&plan_folded,
							   "SELECT s.stream, s.category, s.version FROM es.streams s"
							   " WHERE ($1 IS NULL OR s.stream OPERATOR(pg_catalog.=) $1)"
							   " AND s.deleted_at IS NULL ORDER BY s.stream",
							   1, argtypes),
				 args, nulls, true, 0, SPI_OK_SELECT);
	n = SPI_processed;
	streams = MemoryContextAlloc(callercxt, sizeof(char *) * (n + 1));
	categories = MemoryContextAlloc(callercxt, sizeof(char *) * (n + 1));
	versions = MemoryContextAlloc(callercxt, sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		streams[i] = MemoryContextStrdup(callercxt,
										 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		categories[i] = MemoryContextStrdup(callercxt,
											SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
		versions[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 3, &isnull));
	}
	es_spi_finish_as_owner(&saved);

	/* a stream with missing events cannot be folded: its rows say why */
	for (i = 0; i < n; i++)
	{
		ListCell   *lc;
		bool		skip = false;

		CHECK_FOR_INTERRUPTS();
		foreach(lc, broken)
			skip = skip || strcmp((char *) lfirst(lc), streams[i]) == 0;
		if (!skip)
			check_stream_fold(rsinfo, streams[i], categories[i], versions[i]);
	}
	return (Datum) 0;
}
