/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Module entry point and the configuration parameters of eventsourcing.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "eventsourcing.h"

PG_MODULE_MAGIC;

/* eventsourcing.notify */
int			es_notify_mode = ES_NOTIFY_COMMIT;

/* eventsourcing.max_event_size, in bytes */
int			es_max_event_size = 1024 * 1024;

/* eventsourcing.snapshot_every, in events */
int			es_snapshot_every = 100;

/* eventsourcing.maintenance */
bool		es_maintenance = false;

static const struct config_enum_entry es_notify_options[] = {
	{"commit", ES_NOTIFY_COMMIT, false},
	{"worker", ES_NOTIFY_WORKER, false},
	{"off", ES_NOTIFY_OFF, false},
	{NULL, 0, false}
};

/*
 * worker needs the notifiers' shared memory: refuse it where the library
 * was not preloaded (a SET fails; a configuration file value is ignored
 * with a warning, leaving the default).
 */
static bool
/* cppcheck-suppress constParameter ; the signature of a GUC check hook */
check_notify(int *newval, void **extra, GucSource source)
{
	if (*newval == ES_NOTIFY_WORKER && !es_notifier_available() &&
		!process_shared_preload_libraries_in_progress)
	{
		GUC_check_errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE);
		GUC_check_errmsg("eventsourcing.notify = worker needs eventsourcing in shared_preload_libraries");
		return false;
	}
	return true;
}

PGDLLEXPORT void _PG_init(void);

/*
 * _PG_init
 *		Define the configuration parameters; when preloading, set up the
 *		notifiers.
 *
 * The library needs no preloading: it is loaded by the first call of one of
 * its functions or by the first INSERT into es.events.  Preloaded, it adds
 * the notifier workers and eventsourcing.notify defaults to worker.
 */
void
_PG_init(void)
{
	bool		preloading = process_shared_preload_libraries_in_progress;

	if (preloading)
		es_notifier_preload();

	DefineCustomEnumVariable("eventsourcing.notify",
							 "Selects how appended events are announced.",
							 "commit sends a NOTIFY on channel es_<category> from "
							 "the appending transaction; worker has the database's "
							 "notifier send it after the commit (needs "
							 "shared_preload_libraries); off sends nothing.",
							 &es_notify_mode,
							 preloading ? ES_NOTIFY_WORKER : ES_NOTIFY_COMMIT,
							 es_notify_options,
							 PGC_SUSET,
							 0,
							 check_notify,
							 NULL,
							 NULL);

	DefineCustomIntVariable("eventsourcing.max_event_size",
							"Largest accepted event, data and metadata together.",
							NULL,
							&es_max_event_size,
							1024 * 1024,
							1024,
							MaxAllocSize / 2,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("eventsourcing.snapshot_every",
							"Stores a snapshot of a stream's state every this many events.",
							"Snapshots are written by the appending transaction, in "
							"categories with event definitions; 0 turns them off.",
							&es_snapshot_every,
							100,
							0,
							INT_MAX,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("eventsourcing.state_cache_size",
							"Memory for each session's cache of recent stream states.",
							"0 turns the cache off: every append and replay then folds "
							"from the nearest snapshot.",
							&es_state_cache_size,
							16,
							0,
							MAX_KILOBYTES / 1024,
							PGC_USERSET,
							GUC_UNIT_MB,
							NULL,
							NULL,
							NULL);

	DefineCustomBoolVariable("eventsourcing.maintenance",
							 "Lets a superuser update and delete events.",
							 "For repairs only: es.events is append-only otherwise, and "
							 "changed events make states, snapshots and caches wrong "
							 "(es_verify() reports it).",
							 &es_maintenance,
							 false,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	MarkGUCPrefixReserved("eventsourcing");

	es_engine_init();
	es_definitions_init();
	es_state_cache_init();
	es_notify_queue_init();
}
