/*-------------------------------------------------------------------------
 *
 * query.c
 *	  The few SPI helpers the extension's internal queries share.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/query.c
 *
 *-------------------------------------------------------------------------
 *
 * Internal queries are prepared once per backend and kept; every name in
 * them is schema-qualified, operators included, so that no search_path can
 * redirect them.  A failure of SPI itself cannot happen short of a bug, so
 * it is reported with elog.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "catalog/pg_class.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"

#include "eventsourcing.h"

/*
 * es_spi_connect / es_spi_finish
 *		Connect to and disconnect from SPI.
 */
void
es_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
es_spi_finish(void)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

/*
 * The owner of a relation.
 */
static Oid
relation_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * es_spi_connect_as_owner / es_spi_finish_as_owner
 *		Connect to SPI as the owner of a relation, as the referential
 *		integrity triggers do, and back.  The extension's internal queries
 *		run so wherever the rule they serve is the database's own
 *		(validation, idempotency, states), not a privilege of the caller.
 */
void
es_spi_connect_as_owner(Oid relid, EsSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(relation_owner(relid),
						   saved->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	es_spi_connect();
}

void
es_spi_finish_as_owner(const EsSavedUser *saved)
{
	es_spi_finish();
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * es_query_plan
 *		Prepare a query the first time it is needed and keep its plan in
 *		*plan for the life of the backend.  Requires an SPI connection.
 */
SPIPlanPtr
es_query_plan(SPIPlanPtr *plan, const char *query, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(query, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 query, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*plan = p;
	}
	return *plan;
}

/*
 * Execute a kept plan with a given snapshot, or the usual one when it is
 * InvalidSnapshot, and check the result code.
 */
static void
run(SPIPlanPtr plan, Datum *values, const char *nulls, Snapshot snapshot,
	bool read_only, long tcount, int expected)
{
	int			rc;

	if (snapshot == InvalidSnapshot)
		rc = SPI_execute_plan(plan, values, nulls, read_only, tcount);
	else
		rc = SPI_execute_snapshot(plan, values, nulls, snapshot,
								  InvalidSnapshot, read_only, !read_only,
								  tcount);
	if (rc != expected)
		elog(ERROR, "SPI execution failed: %s", SPI_result_code_string(rc));
}

/*
 * es_query_run
 *		Execute a kept plan and check that it returned the expected code.
 *
 * A read-only run uses the calling query's snapshot; see SPI_execute_plan.
 */
void
es_query_run(SPIPlanPtr plan, Datum *values, const char *nulls,
			 bool read_only, long tcount, int expected)
{
	run(plan, values, nulls, InvalidSnapshot, read_only, tcount, expected);
}

/*
 * es_query_run_latest
 *		Execute a kept read-only plan with a fresh snapshot, which sees
 *		everything committed so far, whatever the isolation level.
 */
void
es_query_run_latest(SPIPlanPtr plan, Datum *values, const char *nulls,
					long tcount, int expected)
{
	run(plan, values, nulls, GetLatestSnapshot(), true, tcount, expected);
}

/*
 * es_query_write_latest
 *		Execute a kept plan that writes, with a fresh snapshot: the caller
 *		holds the lock that makes every row it changes visible to it.
 */
void
es_query_write_latest(SPIPlanPtr plan, Datum *values, const char *nulls,
					  long tcount, int expected)
{
	run(plan, values, nulls, GetLatestSnapshot(), false, tcount, expected);
}
