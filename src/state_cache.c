/*-------------------------------------------------------------------------
 *
 * state_cache.c
 *	  Each backend's cache of recent stream states.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/state_cache.c
 *
 *-------------------------------------------------------------------------
 *
 * An entry is the state of a stream after its event "version", folded with
 * the definitions of generation "generation".  Events never change once
 * stored, so such a state stays true for as long as those definitions do:
 * an entry is never made wrong by another session's appends, only left
 * behind, and its user compares versions (the append path under the
 * stream's lock, a replay with the version its snapshot sees) and folds the
 * missing events onto it.  What can make an entry wrong:
 *
 *	 - new definitions: the invalidation drops every entry
 *	   (es_state_cache_reset), and an entry folded under an older generation
 *	   is neither returned nor stored;
 *	 - events of this transaction that are rolled back: an entry that
 *	   includes any is "dirty" and is dropped when the transaction or any
 *	   subtransaction aborts (the subtransaction may not be the one that
 *	   appended; dropping too much is only slower).
 *
 * Each entry has a memory context of its own, which holds the entry and its
 * document: dropping an entry deletes the context, and the context's size
 * is what counts against eventsourcing.state_cache_size (least recently
 * used entries go first).  A caller pins the entry it works on; a pinned
 * entry is not evicted, and one dropped while pinned (an invalidation
 * arriving in the middle of a fold) is handed to the transaction's memory,
 * freed when the transaction ends, so that the caller's pointer stays good.
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/ilist.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "eventsourcing.h"

/* eventsourcing.state_cache_size, in megabytes */
int			es_state_cache_size = 16;

typedef struct StateSlot
{
	char		stream[ES_STREAM_MAX_LEN + 1];	/* hash key */
	EsState    *state;
} StateSlot;

static HTAB *states = NULL;
static dlist_head lru = DLIST_STATIC_INIT(lru);	/* most recent first */
static dlist_head dirty = DLIST_STATIC_INIT(dirty);
static Size cached_bytes = 0;

/*
 * Pins taken and not yet released.  Normally 0 at the end of a transaction;
 * only an error leaves pins behind, and only then are the entries walked to
 * clear them (walking the whole cache at every commit would cost more than
 * the cache saves).
 */
static int	pins_held = 0;

/*
 * The entry of a node of the LRU list or of the dirty list.  (cppcheck
 * takes dlist_container's offsetof arithmetic for a null dereference.)
 */
static inline EsState *
lru_state(dlist_node *node)
{
	/* cppcheck-suppress nullPointer */
	return dlist_container(EsState, lru_node, node);
}

static inline EsState *
dirty_state(dlist_node *node)
{
	/* cppcheck-suppress nullPointer */
	return dlist_container(EsState, dirty_node, node);
}

/*
 * Free an entry that is in neither list nor the hash table, or hand it to
 * the transaction if it is pinned.
 */
static void
free_state(EsState *st)
{
	if (st->pins > 0 && IsTransactionState())
		MemoryContextSetParent(st->cxt, TopTransactionContext);
	else
		MemoryContextDelete(st->cxt);
}

/*
 * Take an entry out of the cache (and so out of the dirty list, which holds
 * the cached entries that are dirty).  It stays dirty.
 */
static void
unlink_state(EsState *st)
{
	if (st->cached)
	{
		if (st->dirty)
			dlist_delete(&st->dirty_node);
		hash_search(states, st->stream, HASH_REMOVE, NULL);
		dlist_delete(&st->lru_node);
		cached_bytes -= st->size;
		st->cached = false;
	}
}

/*
 * es_state_cache_reset
 *		Drop every entry (the definitions changed).
 */
void
es_state_cache_reset(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &lru)
	{
		EsState    *st = lru_state(iter.cur);

		unlink_state(st);
		free_state(st);
	}
}

/*
 * Forget the pins of code that is gone (the end of the top transaction).
 */
static void
clear_pins(void)
{
	dlist_iter	iter;

	if (pins_held == 0)
		return;
	dlist_foreach(iter, &lru)
		lru_state(iter.cur)->pins = 0;
	pins_held = 0;
}

/*
 * Drop the dirty entries; on abort of the top transaction, every pin is
 * gone with the code that held it.
 */
static void
drop_dirty(bool top_level)
{
	dlist_mutable_iter iter;

	if (top_level)
		clear_pins();
	dlist_foreach_modify(iter, &dirty)
	{
		EsState    *st = dirty_state(iter.cur);

		unlink_state(st);
		free_state(st);
	}
}

static void
state_xact_callback(XactEvent event, void *arg)
{
	dlist_mutable_iter iter;

	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction may still be rolled back */
			drop_dirty(true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			dlist_foreach_modify(iter, &dirty)
			{
				EsState    *st = dirty_state(iter.cur);

				dlist_delete(&st->dirty_node);
				st->dirty = false;
			}
			clear_pins();
			break;
		default:
			break;
	}
}

static void
state_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		drop_dirty(false);
}

/*
 * es_state_cache_init
 *		Register the transaction callbacks; called by _PG_init.
 */
void
es_state_cache_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = ES_STREAM_MAX_LEN + 1;
	ctl.entrysize = sizeof(StateSlot);
	states = hash_create("eventsourcing states", 256, &ctl,
						 HASH_ELEM | HASH_STRINGS);
	RegisterXactCallback(state_xact_callback, NULL);
	RegisterSubXactCallback(state_subxact_callback, NULL);
}

/*
 * es_state_get
 *		The cached state of a stream, pinned, or NULL.
 */
EsState *
es_state_get(const char *stream)
{
	StateSlot  *slot;
	EsState    *st;

	if (strlen(stream) > ES_STREAM_MAX_LEN)
		return NULL;
	slot = hash_search(states, stream, HASH_FIND, NULL);
	if (slot == NULL)
		return NULL;
	st = slot->state;
	if (st->generation != es_definitions_generation)
	{
		unlink_state(st);
		free_state(st);
		return NULL;
	}
	dlist_move_head(&lru, &st->lru_node);
	st->pins++;
	pins_held++;
	return st;
}

/*
 * es_state_new
 *		A new pinned, uncached entry for a stream: {} after event 0.
 */
EsState *
es_state_new(const char *stream)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	EsState    *st;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventsourcing state",
								ALLOCSET_START_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	st = palloc0(sizeof(EsState));
	st->cxt = cxt;
	strlcpy(st->stream, stream, sizeof(st->stream));
	st->generation = es_definitions_generation;
	st->pins = 1;
	pins_held++;
	st->doc = es_json_empty_object();
	MemoryContextSwitchTo(oldcxt);
	if (st->doc == NULL)
	{
		MemoryContextDelete(cxt);
		es_engine_out_of_memory();
	}
	return st;
}

/*
 * es_state_mark_dirty
 *		The entry now includes an event of the current transaction.  Only
 *		cached entries are on the dirty list: an uncached one lives in its
 *		user's memory, which an abort frees anyway.
 */
void
es_state_mark_dirty(EsState *st)
{
	if (!st->dirty)
	{
		st->dirty = true;
		if (st->cached)
			dlist_push_head(&dirty, &st->dirty_node);
	}
}

/*
 * Make room for bytes more in the cache by evicting unpinned entries, least
 * recently used first.  False if there is not enough room even so.
 */
static bool
make_room(Size bytes, Size limit)
{
	dlist_node *node;

	if (bytes > limit)
		return false;
	node = dlist_is_empty(&lru) ? NULL : dlist_tail_node(&lru);
	while (node != NULL && cached_bytes + bytes > limit)
	{
		dlist_node *prev = dlist_has_prev(&lru, node) ?
			dlist_prev_node(&lru, node) : NULL;
		EsState    *st = lru_state(node);

		if (st->pins == 0)
		{
			unlink_state(st);
			free_state(st);
		}
		node = prev;
	}
	return cached_bytes + bytes <= limit;
}

/*
 * Put an uncached entry into the cache, in place of an older entry of its
 * stream.  False if it does not fit or a newer or busy entry is there.
 */
static bool
cache_state(EsState *st, Size size, Size limit)
{
	StateSlot  *slot;

	slot = hash_search(states, st->stream, HASH_FIND, NULL);
	if (slot != NULL)
	{
		EsState    *old = slot->state;

		if (old->version > st->version || old->pins > 0)
			return false;
		unlink_state(old);
		free_state(old);
	}
	if (!make_room(size, limit))
		return false;

	slot = hash_search(states, st->stream, HASH_ENTER, NULL);
	MemoryContextSetParent(st->cxt, CacheMemoryContext);
	slot->state = st;
	st->cached = true;
	st->size = size;
	cached_bytes += size;
	dlist_push_head(&lru, &st->lru_node);
	if (st->dirty)
		dlist_push_head(&dirty, &st->dirty_node);
	return true;
}

/*
 * es_state_release
 *		Unpin an entry.  With keep, the entry is correct and worth keeping:
 *		it stays in or goes into the cache (replacing an older entry of its
 *		stream) if it fits; otherwise, or without keep, it is dropped once
 *		nobody pins it.
 */
void
es_state_release(EsState *st, bool keep)
{
	Size		limit = (Size) es_state_cache_size * 1024 * 1024;

	Assert(st->pins > 0);
	if (pins_held > 0)
		pins_held--;
	if (keep && st->generation == es_definitions_generation)
	{
		/* still pinned here, so that make_room leaves it alone */
		Size		size = MemoryContextMemAllocated(st->cxt, true);

		if (st->cached)
		{
			cached_bytes -= st->size;
			st->size = 0;
			if (make_room(size, limit))
			{
				st->size = size;
				cached_bytes += size;
				st->pins--;
				return;
			}
		}
		else if (st->pins == 1 && cache_state(st, size, limit))
		{
			st->pins--;
			return;
		}
	}

	st->pins--;
	if (st->pins > 0)
		return;
	unlink_state(st);
	MemoryContextDelete(st->cxt);
}
