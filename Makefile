# eventsourcing/Makefile
#
# PGXS build of the eventsourcing extension.  jansson is found with
# pkg-config.  "make installcheck" runs pg_regress and the isolation specs
# against a running server; test/run.sh starts a private one and runs
# everything (see README.md).

EXTENSION = eventsourcing
EXTVERSION = $(shell grep default_version $(EXTENSION).control | \
	sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = eventsourcing
OBJS = \
	src/append.o \
	src/compact.o \
	src/definition.o \
	src/engine_jsonb.o \
	src/guc.o \
	src/handle.o \
	src/history.o \
	src/message.o \
	src/notifier.o \
	src/notify.o \
	src/notify_queue.o \
	src/query.o \
	src/read.o \
	src/relation.o \
	src/replay.o \
	src/state.o \
	src/state_cache.o \
	src/stream.o \
	src/trigger.o \
	src/verify.o \
	src/effect.o \
	src/event_doc.o \
	src/json_doc.o \
	src/json_patch.o \
	src/json_pointer.o \
	src/schema.o \
	src/undo_patch.o
PGFILEDESC = "eventsourcing - event store with per-stream sequences"

# install scripts only; a released script is never edited
DATA = $(wildcard sql/$(EXTENSION)--*.sql)

# pg_regress: inputs in test/sql, outputs in expected/
REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --load-extension=$(EXTENSION)

# isolation tester: specs in test/specs, outputs in test/expected/
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --load-extension=$(EXTENSION)

PG_CPPFLAGS += $(shell pkg-config --cflags jansson)
# -Wno-unused-parameter: PostgreSQL's own inline functions trip it
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter
SHLIB_LINK += $(shell pkg-config --libs jansson)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: a changed header (the attribute
# numbers of eventsourcing.h, say) must rebuild every object.  (After the
# include, so that PGXS's "all" stays the default goal.)
$(OBJS): src/eventsourcing.h src/engine.h src/engine_int.h

.PHONY: cppcheck bench bench-state bench-notify relay

# Findings inside PostgreSQL's headers are not ours; one configuration of
# their #ifdefs (the one this build uses) keeps the run short.
cppcheck:
	cppcheck --enable=warning,style,performance,portability --error-exitcode=1 \
		--inline-suppr --quiet --std=c99 --max-configs=1 \
		-I src -I $(shell $(PG_CONFIG) --includedir-server) \
		--suppress='*:$(shell $(PG_CONFIG) --includedir-server)/*' \
		--suppress=missingIncludeSystem --suppress=unusedFunction --suppress=toomanyconfigs \
		src/

bench:
	test/bench/run.sh

# the state engine: replay against a hand-written fold and bare reading,
# validated against unvalidated appends
bench-state:
	test/bench/state.sh

# the reference WebSocket relay (relay/: libwebsockets and libpq)
relay:
	$(MAKE) -C relay

# notification modes: append throughput (off, commit, worker against a plain
# INSERT) and commit-to-listener latency at fixed rates
bench-notify:
	test/bench/notify.sh
