/*-------------------------------------------------------------------------
 *
 * notifier.c
 *	  The notifier: one background worker per database that publishes the
 *	  events queued by eventsourcing.notify = worker.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/notifier.c
 *
 *-------------------------------------------------------------------------
 *
 * Each pass of a notifier is one transaction: it deletes the committed
 * rows of es.notify_queue (at most NOTIFIER_BATCH, by their last
 * position), NOTIFYs their events in global position order and commits.
 * The deletion and the notifications commit together, so after a crash
 * nothing is lost and nothing is sent twice; a transaction still in
 * progress has no visible row yet, so it is never skipped and never holds
 * up the others.  Per stream the order is the sequence order: the later
 * of two appends to a stream waited for the earlier transaction's commit,
 * so its row is never visible without the earlier one's, and its position
 * is higher than every position of the earlier transaction; taking rows by
 * their last position therefore never takes the later one first (by the
 * first position it could: the later transaction may have appended to
 * another stream before).  Within a pass, events go out by position.
 *
 * Workers are dynamic background workers, restarted by the postmaster one
 * second after a failure.  One is started by the first worker-mode append
 * in a database (es_notifier_ensure), and at server start the launcher
 * starts one in every database (those without the queue exit at once), so
 * that rows left by a crash or a shutdown are published without waiting
 * for a new append.  A notifier stays connected to its database; DROP
 * DATABASE stops it first (notifier_utility).
 *
 * Shared memory has one slot per database with a notifier: its process,
 * its latch, and the counters es_notify_worker() shows.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "utils/acl.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_notify_worker);

/* queue rows (transactions) taken by one pass */
#define NOTIFIER_BATCH			1000
/* the longest a notifier sleeps without being woken */
#define NOTIFIER_NAPTIME_MS		1000
/* a slot marked starting longer than this is taken to have failed */
#define NOTIFIER_START_TIMEOUT_MS	10000
#define NOTIFIER_ERROR_LEN		256

typedef struct NotifierSlot
{
	Oid			dbid;			/* InvalidOid: free */
	pid_t		pid;			/* 0 if not running */
	bool		starting;		/* registered, not running yet */
	bool		dropping;		/* DROP DATABASE: do not run */
	TimestampTz requested_at;
	Latch	   *latch;
	TimestampTz started_at;
	int64		last_position;
	int64		events_sent;
	int64		batches;
	TimestampTz last_batch_at;
	TimestampTz last_error_at;
	char		last_error[NOTIFIER_ERROR_LEN];
} NotifierSlot;

typedef struct NotifierShared
{
	LWLock	   *lock;
	int			nslots;
	NotifierSlot slots[FLEXIBLE_ARRAY_MEMBER];
} NotifierShared;

static NotifierShared *notifier = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_utility_hook = NULL;

/* this worker's slot */
static NotifierSlot *my_slot = NULL;

/* the notifier's two queries, planned once */
static SPIPlanPtr take_plan = NULL;
static SPIPlanPtr events_plan = NULL;

static Size
notifier_shmem_size(void)
{
	return add_size(offsetof(NotifierShared, slots),
					mul_size(max_worker_processes, sizeof(NotifierSlot)));
}

static void
notifier_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(notifier_shmem_size());
	RequestNamedLWLockTranche("eventsourcing notifier", 1);
}

static void
notifier_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	notifier = ShmemInitStruct("eventsourcing notifier", notifier_shmem_size(),
							   &found);
	if (!found)
	{
		memset(notifier, 0, notifier_shmem_size());
		notifier->lock = &(GetNamedLWLockTranche("eventsourcing notifier"))->lock;
		notifier->nslots = max_worker_processes;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* the slot of database dbid, or NULL; the caller holds the lock */
static NotifierSlot *
find_slot(Oid dbid)
{
	int			i;

	for (i = 0; i < notifier->nslots; i++)
		if (notifier->slots[i].dbid == dbid)
			return &notifier->slots[i];
	return NULL;
}

/*
 * The slot of database dbid, else a free one made its own, else NULL; the
 * caller holds the lock exclusively.
 */
static NotifierSlot *
claim_slot(Oid dbid)
{
	NotifierSlot *slot = find_slot(dbid);

	if (slot == NULL && (slot = find_slot(InvalidOid)) != NULL)
	{
		memset(slot, 0, sizeof(*slot));
		slot->dbid = dbid;
	}
	return slot;
}

/*
 * es_notifier_available
 *		Is the library preloaded, so that notifiers can run?
 */
bool
es_notifier_available(void)
{
	return notifier != NULL;
}

static void
fill_worker(BackgroundWorker *worker, const char *function, const char *name)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	strlcpy(worker->bgw_library_name, "eventsourcing", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker->bgw_name, name, BGW_MAXLEN);
	strlcpy(worker->bgw_type, name, BGW_MAXLEN);
}

/*
 * es_notifier_ensure
 *		Make sure database dbid has a notifier running or starting; false if
 *		none could be started (no free background worker), with a WARNING
 *		if report.  The events stay queued: the next call tries again.
 */
bool
es_notifier_ensure(Oid dbid, bool report)
{
	NotifierSlot *slot;
	BackgroundWorker worker;
	TimestampTz at = GetCurrentTimestamp();
	bool		registered;

	if (notifier == NULL)
		return false;

	LWLockAcquire(notifier->lock, LW_SHARED);
	slot = find_slot(dbid);
	/* paused for a database command (pause_notifier): not now */
	if (slot != NULL && slot->dropping)
	{
		LWLockRelease(notifier->lock);
		return false;
	}
	if (slot != NULL &&
		(slot->pid != 0 ||
		 (slot->starting &&
		  !TimestampDifferenceExceeds(slot->requested_at, at,
									  NOTIFIER_START_TIMEOUT_MS))))
	{
		LWLockRelease(notifier->lock);
		return true;
	}
	LWLockRelease(notifier->lock);

	LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
	slot = claim_slot(dbid);
	if (slot == NULL)
	{
		LWLockRelease(notifier->lock);
		if (report)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("no slot for the eventsourcing notifier of this database"),
					 errdetail("Every one of the %d slots is taken by another database.",
							   notifier->nslots),
					 errhint("Raise max_worker_processes.")));
		return false;
	}
	if (slot->dropping || slot->pid != 0)
	{
		LWLockRelease(notifier->lock);
		return !slot->dropping;
	}
	slot->starting = true;
	slot->requested_at = at;
	LWLockRelease(notifier->lock);

	fill_worker(&worker, "es_notifier_main", "eventsourcing notifier");
	worker.bgw_restart_time = 1;
	worker.bgw_main_arg = ObjectIdGetDatum(dbid);
	registered = RegisterDynamicBackgroundWorker(&worker, NULL);
	if (!registered)
	{
		LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
		slot->starting = false;
		LWLockRelease(notifier->lock);
		if (report)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start the eventsourcing notifier of this database"),
					 errdetail("No background worker slot is free; the events stay queued until one is."),
					 errhint("Raise max_worker_processes.")));
	}
	return registered;
}

/*
 * es_notifier_wake
 *		Set the latch of database dbid's notifier.  Called after a commit:
 *		takes no lock and cannot fail.  A stale latch pointer wakes some
 *		other process for nothing; a notifier not yet running finds the
 *		rows on its first pass.
 */
void
es_notifier_wake(Oid dbid)
{
	int			i;

	if (notifier == NULL)
		return;
	for (i = 0; i < notifier->nslots; i++)
	{
		NotifierSlot *slot = &notifier->slots[i];

		if (slot->dbid == dbid)
		{
			Latch	   *latch = slot->latch;

			if (latch != NULL)
				SetLatch(latch);
			return;
		}
	}
}

/* on exit: the slot no longer has a process (a restart will claim it) */
static void
release_slot(int code, Datum arg)
{
	LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
	if (my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->latch = NULL;
		/* a failure is followed by a restart, a clean exit by nothing */
		my_slot->starting = (code != 0);
		my_slot->requested_at = GetCurrentTimestamp();
		if (code == 0)
			my_slot->dbid = InvalidOid;
	}
	LWLockRelease(notifier->lock);
}

/* record the error being raised in the slot */
static void
record_error(const char *message)
{
	LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
	if (message == NULL)
		message = "";
	/* cut at a character boundary */
	memcpy(my_slot->last_error, message,
		   pg_mbcliplen(message, strlen(message), NOTIFIER_ERROR_LEN - 1));
	my_slot->last_error[pg_mbcliplen(message, strlen(message),
									 NOTIFIER_ERROR_LEN - 1)] = '\0';
	my_slot->last_error_at = GetCurrentTimestamp();
	LWLockRelease(notifier->lock);
}

/*
 * One pass: publish up to NOTIFIER_BATCH committed transactions.  Returns
 * how many it took, or -1 if the database has no es.notify_queue.
 */
static int
notifier_pass(void)
{
	static const char take[] =
		"DELETE FROM es.notify_queue"
		" WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
		"  SELECT ctid FROM es.notify_queue"
		"  ORDER BY positions[pg_catalog.array_upper(positions, 1)]"
		"  LIMIT " CppAsString2(NOTIFIER_BATCH) "))"
		" RETURNING positions";
	static const char events[] =
		"SELECT * FROM es.events"
		" WHERE global_position OPERATOR(pg_catalog.=) ANY ($1)"
		" ORDER BY global_position";
	Oid			nspid;
	int			ntaken;
	int64		nsent = 0;
	int64		last = 0;
	Datum	   *positions = NULL;
	int			npositions = 0;
	uint64		i;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	nspid = get_namespace_oid("es", true);
	if (!OidIsValid(nspid) || !OidIsValid(get_relname_relid("notify_queue", nspid)))
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		return -1;
	}
	pgstat_report_activity(STATE_RUNNING, "publishing queued events");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* planned once: parsing and planning on every pass cost more than the work */
	if (take_plan == NULL)
	{
		Oid			argtypes[1] = {INT8ARRAYOID};

		take_plan = SPI_prepare(take, 0, NULL);
		events_plan = SPI_prepare(events, 1, argtypes);
		if (take_plan == NULL || events_plan == NULL ||
			SPI_keepplan(take_plan) != 0 || SPI_keepplan(events_plan) != 0)
			elog(ERROR, "could not prepare the notifier's queries: %s",
				 SPI_result_code_string(SPI_result));
	}
	if (SPI_execute_plan(take_plan, NULL, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not take the rows of es.notify_queue");
	ntaken = (int) SPI_processed;
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i],
									  SPI_tuptable->tupdesc, 1, &isnull);
		Datum	   *elems;
		int			nelems;

		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(d), INT8OID, sizeof(int64),
						  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, NULL, &nelems);
		positions = positions == NULL ?
			palloc(sizeof(Datum) * nelems) :
			repalloc(positions, sizeof(Datum) * (npositions + nelems));
		memcpy(positions + npositions, elems, sizeof(Datum) * nelems);
		npositions += nelems;
	}

	if (npositions > 0)
	{
		Datum		args[1];

		args[0] = PointerGetDatum(construct_array(positions, npositions,
												  INT8OID, sizeof(int64),
												  FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
		/*
		 * Not read-only: with a snapshot taken now, which sees every event
		 * of the rows the DELETE saw (the transaction's first snapshot may
		 * predate their commits).
		 */
		if (SPI_execute_plan(events_plan, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the queued events");
		if (SPI_tuptable->tupdesc->natts != Natts_es_events)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table es.events does not have the columns this library expects")));
		/* an event removed since (compaction, deletion) is not announced */
		for (i = 0; i < SPI_processed; i++)
		{
			Datum		values[Natts_es_events];
			bool		isnull[Natts_es_events];
			char	   *category;

			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
							  values, isnull);
			category = TextDatumGetCString(values[Anum_es_events_category - 1]);
			es_notify_send(category, values, isnull);
			last = DatumGetInt64(values[Anum_es_events_global_position - 1]);
			nsent++;
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	/* the deletions count for autovacuum only once reported */
	pgstat_report_stat(false);

	if (ntaken > 0)
	{
		LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
		if (nsent > 0)
			my_slot->last_position = last;
		my_slot->events_sent += nsent;
		my_slot->batches++;
		my_slot->last_batch_at = GetCurrentTimestamp();
		LWLockRelease(notifier->lock);
	}
	return ntaken;
}

/*
 * SIGTERM: from pause_notifier (the slot is marked), leave at the next
 * check without an error, so that the postmaster does not restart us;
 * otherwise (shutdown, pg_terminate_backend) as any backend, and a
 * restart follows.
 */
static volatile sig_atomic_t stop_for_command = false;

static void
notifier_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	if (my_slot != NULL && my_slot->dropping && my_slot->pid == MyProcPid)
	{
		stop_for_command = true;
		SetLatch(MyLatch);
	}
	else
		die(postgres_signal_arg);
	errno = save_errno;
}

/*
 * es_notifier_main
 *		Entry point of a database's notifier; main_arg is the database.
 */
void
es_notifier_main(Datum main_arg)
{
	Oid			dbid = DatumGetObjectId(main_arg);
	bool		mine;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, notifier_sigterm);
	BackgroundWorkerUnblockSignals();

	/*
	 * Claim the database's slot (a free one after a crash restart, which
	 * clears shared memory but restarts us), unless another notifier has
	 * it.  Before DROP DATABASE, give the slot back and stay away.
	 */
	LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
	my_slot = claim_slot(dbid);
	if (my_slot != NULL && my_slot->dropping && my_slot->pid == 0)
		my_slot->dbid = InvalidOid;
	mine = my_slot != NULL && !my_slot->dropping &&
		(my_slot->pid == 0 || my_slot->pid == MyProcPid);
	if (mine)
	{
		my_slot->pid = MyProcPid;
		my_slot->latch = MyLatch;
		my_slot->starting = false;
		my_slot->started_at = GetCurrentTimestamp();
		my_slot->events_sent = 0;
		my_slot->batches = 0;
	}
	LWLockRelease(notifier->lock);
	if (!mine)
		proc_exit(0);
	on_shmem_exit(release_slot, (Datum) 0);

	/* a database that stops accepting connections keeps its notifier */
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	/* its queries name every object: nothing of a user's schema applies */
	SetConfigOption("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION);
	/* settings of the database or the role that would break its passes */
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET,
					PGC_S_SESSION);
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_SESSION);

	for (;;)
	{
		int			taken = 0;

		CHECK_FOR_INTERRUPTS();
		/* stopped for a database command: exit 0, not to be restarted */
		if (stop_for_command)
			proc_exit(0);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		PG_TRY();
		{
			taken = notifier_pass();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(TopMemoryContext);
			edata = CopyErrorData();

			/*
			 * The extension dropped under a pass: nothing to do here any
			 * more (a later worker-mode append starts a new notifier).
			 */
			if (edata->sqlerrcode == ERRCODE_UNDEFINED_TABLE)
			{
				FlushErrorState();
				AbortCurrentTransaction();
				proc_exit(0);
			}
			/* keep it for es_notify_worker(), then fail: we restart */
			record_error(edata->message);
			RESUME_INTERRUPTS();
			PG_RE_THROW();
		}
		PG_END_TRY();

		/* the database has no queue (or not any more): nothing to do here */
		if (taken < 0)
			proc_exit(0);
		if (taken >= NOTIFIER_BATCH)
			continue;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 NOTIFIER_NAPTIME_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * es_notifier_launcher_main
 *		At server start: a notifier for every database that accepts
 *		connections, so that rows queued before a shutdown or a crash are
 *		published.  Those without the queue exit at once.
 */
void
es_notifier_launcher_main(Datum main_arg)
{
	List	   *dbids = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	ListCell   *lc;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		MemoryContext oldcxt;

		if (!db->datallowconn || db->datistemplate)
			continue;
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		dbids = lappend_oid(dbids, db->oid);
		MemoryContextSwitchTo(oldcxt);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	/* the probes exit quickly: wait for a free worker when there is none */
	foreach(lc, dbids)
	{
		int			tries;

		for (tries = 0; tries < 60; tries++)
		{
			CHECK_FOR_INTERRUPTS();
			if (es_notifier_ensure(lfirst_oid(lc), false))
				break;
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 NOTIFIER_NAPTIME_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
	proc_exit(0);
}

/*
 * Stop the notifier of database dbid and keep it from coming back until
 * resume_notifier: DROP DATABASE, ALTER DATABASE RENAME or SET TABLESPACE
 * and CREATE DATABASE ... TEMPLATE refuse a database another process is
 * connected to.  The notifier exits without an error (notifier_sigterm),
 * so the postmaster does not restart it.  Returns whether it was running.
 */
static bool
pause_notifier(Oid dbid)
{
	NotifierSlot *slot;
	pid_t		pid = 0;
	int			waited;

	LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
	slot = claim_slot(dbid);
	if (slot == NULL)
	{
		LWLockRelease(notifier->lock);
		return false;
	}
	slot->dropping = true;
	pid = slot->pid;
	/* under the lock: the pid is still the notifier's */
	if (pid != 0)
		kill(pid, SIGTERM);
	LWLockRelease(notifier->lock);
	if (pid == 0)
		return false;
	for (waited = 0; waited < 100; waited++)
	{
		bool		gone;

		LWLockAcquire(notifier->lock, LW_SHARED);
		gone = slot->dbid != dbid || slot->pid != pid;
		LWLockRelease(notifier->lock);
		if (gone)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/*
 * After the statement: the database is gone (dropped), or gets its
 * notifier back if it had one running.
 */
static void
resume_notifier(Oid dbid, bool dropped, bool was_running)
{
	NotifierSlot *slot;

	LWLockAcquire(notifier->lock, LW_EXCLUSIVE);
	slot = find_slot(dbid);
	if (slot != NULL && slot->pid == 0)
		slot->dbid = InvalidOid;	/* free the slot */
	else if (slot != NULL)
		slot->dropping = false;
	LWLockRelease(notifier->lock);
	if (!dropped && was_running)
		(void) es_notifier_ensure(dbid, false);
}

/*
 * The database a utility statement needs no other process connected to,
 * if the current user may run it (else the statement fails on its own and
 * the notifier is left alone).
 */
static pg_noinline Oid
database_to_pause(Node *stmt, bool *dropped)
{
	const char *name = NULL;
	bool		create = false;
	ListCell   *lc;
	Oid			dbid;

	*dropped = false;
	if (IsA(stmt, DropdbStmt))
	{
		name = ((DropdbStmt *) stmt)->dbname;
		*dropped = true;
	}
	else if (IsA(stmt, RenameStmt) &&
			 ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
		name = ((RenameStmt *) stmt)->subname;
	else if (IsA(stmt, AlterDatabaseStmt))
	{
		foreach(lc, ((AlterDatabaseStmt *) stmt)->options)
		{
			DefElem    *def = lfirst_node(DefElem, lc);

			if (strcmp(def->defname, "tablespace") == 0)
				name = ((AlterDatabaseStmt *) stmt)->dbname;
		}
	}
	else if (IsA(stmt, CreatedbStmt))
	{
		foreach(lc, ((CreatedbStmt *) stmt)->options)
		{
			DefElem    *def = lfirst_node(DefElem, lc);

			if (strcmp(def->defname, "template") == 0 && def->arg != NULL)
				name = defGetString(def);
		}
		create = true;
	}
	if (name == NULL)
		return InvalidOid;
	dbid = get_database_oid(name, true);
	if (!OidIsValid(dbid))
		return InvalidOid;
	if (create ? !have_createdb_privilege() :
		!pg_database_ownercheck(dbid, GetUserId()))
		return InvalidOid;
	return dbid;
}

static void
notifier_utility(PlannedStmt *pstmt, const char *queryString,
				 bool readOnlyTree, ProcessUtilityContext context,
				 ParamListInfo params, QueryEnvironment *queryEnv,
				 DestReceiver *dest, QueryCompletion *qc)
{
	bool		drop;
	Oid			target = database_to_pause(pstmt->utilityStmt, &drop);
	volatile Oid dbid = target;
	volatile bool is_drop = drop;
	volatile bool was_running = false;
	volatile bool done = false;

	PG_TRY();
	{
		if (OidIsValid(dbid))
			was_running = pause_notifier(dbid);
		if (prev_utility_hook)
			prev_utility_hook(pstmt, queryString, readOnlyTree, context,
							  params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
		done = true;
	}
	PG_FINALLY();
	{
		if (OidIsValid(dbid))
			resume_notifier(dbid, is_drop && done, was_running);
	}
	PG_END_TRY();
}

/*
 * es_notifier_preload
 *		From _PG_init in shared_preload_libraries: shared memory, the
 *		launcher, the DROP DATABASE hook.
 */
void
es_notifier_preload(void)
{
	BackgroundWorker worker;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = notifier_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = notifier_shmem_startup;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = notifier_utility;

	fill_worker(&worker, "es_notifier_launcher_main", "eventsourcing launcher");
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	RegisterBackgroundWorker(&worker);
}

/*
 * es_notify_worker() RETURNS TABLE (worker_pid int, worker_state text,
 *		worker_started_at timestamptz, last_position bigint,
 *		events_sent bigint, batches bigint, last_batch_at timestamptz,
 *		last_error text, last_error_at timestamptz)
 *		The current database's notifier, one row (all NULL but the state
 *		if it has none).
 */
Datum
es_notify_worker(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		isnull[9];
	NotifierSlot copy;
	NotifierSlot *slot = NULL;
	const char *state = "not running";

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(isnull, true, sizeof(isnull));
	memset(&copy, 0, sizeof(copy));

	if (notifier != NULL)
	{
		LWLockAcquire(notifier->lock, LW_SHARED);
		slot = find_slot(MyDatabaseId);
		if (slot != NULL)
			copy = *slot;
		LWLockRelease(notifier->lock);
	}
	if (slot != NULL)
	{
		if (copy.pid != 0)
		{
			state = "running";
			values[0] = Int32GetDatum(copy.pid);
			isnull[0] = false;
			values[2] = TimestampTzGetDatum(copy.started_at);
			isnull[2] = false;
		}
		else if (copy.starting)
			state = "starting";
		if (copy.last_position != 0)
		{
			values[3] = Int64GetDatum(copy.last_position);
			isnull[3] = false;
		}
		values[4] = Int64GetDatum(copy.events_sent);
		values[5] = Int64GetDatum(copy.batches);
		isnull[4] = isnull[5] = false;
		if (copy.last_batch_at != 0)
		{
			values[6] = TimestampTzGetDatum(copy.last_batch_at);
			isnull[6] = false;
		}
		if (copy.last_error_at != 0)
		{
			values[7] = CStringGetTextDatum(copy.last_error);
			values[8] = TimestampTzGetDatum(copy.last_error_at);
			isnull[7] = isnull[8] = false;
		}
	}
	values[1] = CStringGetTextDatum(state);
	isnull[1] = false;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, isnull)));
}
