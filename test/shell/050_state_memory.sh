#!/usr/bin/env bash
# test/shell/050_state_memory.sh - no memory leak in the state engine's
# append and replay paths of one long session.
#
# A leak check, not a timing check.  Memory of the backend is measured
# after a number of operations and again after ten times as many; the
# second measurement may exceed the first by at most MEM_BOUND_KB (2048 kB):
#   * contexts: sum(total_bytes) of pg_backend_memory_contexts (palloc'd
#     memory, our own contexts included);
#   * RssAnon of the backend (/proc/self/status read by the backend with
#     pg_read_file, superuser), which also counts what malloc holds
#     (jansson documents, the engine's scratch memory), with a bound of
#     MEM_RSS_BOUND_KB (4096 kB), since it also moves with malloc's arenas.
#
# Phase 1, failed appends in one session (category "playbook" with
# definitions), each caught by a PL/pgSQL BEGIN ... EXCEPTION block, nine
# kinds in turn:
#   effect failures 23S02 (exists fails, absent fails, a step failing after
#   an earlier step changed the state), schema failure 22S01, unknown event
#   type 42S01, data 10,000 levels deep (any error but XX000), non-object
#   data 22023, a batch whose second event fails 23S02 after the first one
#   applied, a plain INSERT whose effect fails 23S02.
#   Measured after 10,000 and after 100,000 failures (FAIL_TOTAL).
# Phase 1b, the same failures as top-level statements (psql,
# ON_ERROR_STOP off, each its own transaction): 2,000 then 20,000.
# Phase 2, successful appends in one session with
#   eventsourcing.state_cache_size = 1 (MB) and snapshot_every = 20:
#   100,000 appends (OK_TOTAL) spread over 2,000 streams, each followed by
#   es_replay of its stream (checked to contain the new module) and, every
#   tenth, es_replay of another stream (checked for its module count).
#   Measured after 10,000 and 100,000; the sizes of CacheMemoryContext and
#   of the contexts of the extension are printed.
# Every failure must have its expected SQLSTATE and every replay the
# expected content; every number is printed.
#
# Environment: see lib/common.bash; FAIL_TOTAL (100000), OK_TOTAL (100000),
# MEM_BOUND_KB (2048), MEM_RSS_BOUND_KB (4096).
# shellcheck source-path=SCRIPTDIR source=lib/common.bash
. "$(dirname "$0")/lib/common.bash"

FAIL_TOTAL=${FAIL_TOTAL:-100000}
OK_TOTAL=${OK_TOTAL:-100000}
BOUND_KB=${MEM_BOUND_KB:-2048}
RSS_BOUND_KB=${MEM_RSS_BOUND_KB:-4096}
DB="es_mem_$$"

es_wait_ready 60 || die "server not ready on $PGHOST:$PGPORT"
es_create_db "$DB"

psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >"$ES_TMP/setup.out" 2>&1 <<'SQL' || die "setup failed: $(cat "$ES_TMP/setup.out")"
SELECT es_define('playbook', 'module_add',
    '[{"op": "merge", "path": "", "value": {"modules": {}}},
      {"op": "absent", "path": "/modules/{/moduleId}"},
      {"op": "add", "path": "/modules/{/moduleId}", "value": {"$data": "/module"}}]',
    '{"type": "object", "required": ["moduleId", "module"],
      "properties": {"moduleId": {"type": "string"}, "module": {"type": "object"}}}');
SELECT es_define('playbook', 'module_move',
    '[{"op": "exists", "path": "/modules/{/moduleId}"},
      {"op": "add", "path": "/modules/{/moduleId}/position", "value": {"$data": "/position"}}]');
SELECT es_define('playbook', 'module_delete',
    '[{"op": "exists", "path": "/modules/{/moduleId}"},
      {"op": "remove", "path": "/modules/{/moduleId}"}]');
-- changes the state, then fails: the change is undone
SELECT es_define('playbook', 'touch_then_fail',
    '[{"op": "add", "path": "/touched", "value": {"$data": ""}},
      {"op": "merge", "path": "/modules", "value": {"$data": "/modules"}},
      {"op": "exists", "path": "/never"}]');

SELECT es_append('playbook-1', 'module_add', '{"moduleId": "m1", "module": {"name": "ping"}}');

-- deep_doc(): an object nested 10,000 levels deep
CREATE FUNCTION deep_doc() RETURNS jsonb LANGUAGE sql AS $$
    SELECT (repeat('{"a":', 10000) || '1' || repeat('}', 10000))::jsonb
$$;

-- mem(label): one line "MEM|label|contexts bytes|RssAnon kB|CacheMemoryContext bytes"
CREATE FUNCTION mem(label text) RETURNS text LANGUAGE sql AS $$
    SELECT format('MEM|%s|%s|%s|%s', label,
                  (SELECT sum(total_bytes) FROM pg_backend_memory_contexts),
                  coalesce(substring(pg_read_file('/proc/self/status') from 'RssAnon:\s*([0-9]+)'), '-1'),
                  (SELECT sum(total_bytes) FROM pg_backend_memory_contexts
                    WHERE name = 'CacheMemoryContext'))
$$;

-- contexts(label): the contexts of 256 kB or more and those that look like
-- the extension's, one line each
CREATE FUNCTION contexts(label text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('CTX|%s|%s|%s|%s|%s', label, name, coalesce(ident, ''),
                  coalesce(parent, ''), total_bytes)
      FROM pg_backend_memory_contexts
     WHERE total_bytes >= 262144
        OR name ~* 'event|state|stream|json|jansson|snapshot|definition|es[ _]'
        OR ident ~* 'event|state|stream|json|jansson|snapshot|definition'
     ORDER BY total_bytes DESC
$$;

-- fail_n(first, last): failed appends number first..last, nine kinds in
-- turn; returns {"kind sqlstate": count}
CREATE FUNCTION fail_n(first bigint, last bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    counts jsonb := '{}';
    deep jsonb := deep_doc();
    kind int;
    k text;
    state text;
BEGIN
    FOR i IN first .. last LOOP
        kind := i % 9;
        BEGIN
            CASE kind
            WHEN 0 THEN   -- exists fails
                PERFORM es_append('playbook-1', 'module_delete', jsonb_build_object('moduleId', 'gone' || i));
            WHEN 1 THEN   -- absent fails
                PERFORM es_append('playbook-1', 'module_add', '{"moduleId": "m1", "module": {"name": "again"}}');
            WHEN 2 THEN   -- fails after two steps changed the state
                PERFORM es_append('playbook-1', 'touch_then_fail',
                                  jsonb_build_object('i', i, 'modules', jsonb_build_object('x' || i, jsonb_build_object('n', i))));
            WHEN 3 THEN   -- schema
                PERFORM es_append('playbook-1', 'module_add', jsonb_build_object('moduleId', i, 'module', '{}'::jsonb));
            WHEN 4 THEN   -- unknown event type
                PERFORM es_append('playbook-1', 'no_such_type_' || (i % 10), '{}');
            WHEN 5 THEN   -- 10,000 levels deep
                PERFORM es_append('playbook-1', 'module_add', jsonb_build_object('moduleId', 'deep' || i, 'module', deep));
            WHEN 6 THEN   -- not an object
                PERFORM es_append('playbook-1', 'module_add', '[1, 2, 3]');
            WHEN 7 THEN   -- batch: the first event applies, the second fails
                PERFORM es_append_batch('playbook-1', jsonb_build_array(
                    jsonb_build_object('event_type', 'module_add',
                                       'data', jsonb_build_object('moduleId', 'b' || i, 'module', '{"name": "b"}'::jsonb)),
                    jsonb_build_object('event_type', 'module_delete',
                                       'data', jsonb_build_object('moduleId', 'gone' || i))));
            ELSE          -- plain INSERT
                INSERT INTO es.events (stream, event_type, data)
                VALUES ('playbook-1', 'module_move', jsonb_build_object('moduleId', 'gone' || i, 'position', 1));
            END CASE;
            state := 'success';
        EXCEPTION WHEN OTHERS THEN
            state := SQLSTATE;
        END;
        k := kind || ' ' || state;
        counts := jsonb_set(counts, ARRAY[k], to_jsonb(coalesce((counts ->> k)::int, 0) + 1));
    END LOOP;
    RETURN counts;
END
$$;

-- ok_n(first, last): successful appends number first..last over 2000
-- streams, each followed by a replay of its stream, every tenth by a
-- replay of another stream; returns the number of replays that were wrong
CREATE FUNCTION ok_n(first bigint, last bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    bad bigint := 0;
    s int;
    t int;
    st jsonb;
    expected bigint;
BEGIN
    FOR i IN first .. last LOOP
        s := i % 2000;
        PERFORM es_append('playbook-p' || s, 'module_add',
            jsonb_build_object('moduleId', 'm' || (i / 2000),
                               'module', jsonb_build_object('name', 'ansible.builtin.copy',
                                                            'params', jsonb_build_object('src', 'file' || i, 'dest', '/etc/motd'),
                                                            'position', jsonb_build_object('x', i % 997, 'y', i % 991))));
        st := es_replay('playbook-p' || s);
        IF NOT coalesce((st -> 'modules') ? ('m' || (i / 2000)), false)
           OR (st #>> ARRAY['modules', 'm' || (i / 2000), 'params', 'src']) IS DISTINCT FROM 'file' || i THEN
            bad := bad + 1;
        END IF;
        IF i % 10 = 0 THEN
            t := (i * 7 + 13) % 2000;
            -- events of stream t among 1..i (stream 0 gets i = 2000, 4000, ...)
            expected := CASE WHEN t = 0 THEN i / 2000
                             WHEN i >= t THEN (i - t) / 2000 + 1
                             ELSE 0 END;
            st := es_replay('playbook-p' || t);
            IF coalesce((SELECT count(*) FROM jsonb_object_keys(st -> 'modules')), 0) <> expected THEN
                bad := bad + 1;
            END IF;
        END IF;
    END LOOP;
    RETURN bad;
END
$$;
SQL

# mem_line FILE LABEL: the fields of the MEM line with that label
mem_field() {
	awk -F'|' -v l="$2" -v f="$3" '$1 == "MEM" && $2 == l { print $f }' "$1"
}

# judge PHASE FILE FROM TO: compare the MEM lines FROM and TO of FILE
judge() {
	local phase=$1 file=$2 from=$3 to=$4 c1 c2 r1 r2 dc dr
	c1=$(mem_field "$file" "$from" 3)
	c2=$(mem_field "$file" "$to" 3)
	r1=$(mem_field "$file" "$from" 4)
	r2=$(mem_field "$file" "$to" 4)
	if [ -z "$c1" ] || [ -z "$c2" ]; then
		fail "$phase: no memory measurement ($from: '$c1', $to: '$c2'); see below"
		tail -n 20 "$file" | sed 's/^/    /'
		return
	fi
	dc=$(((c2 - c1) / 1024))
	log "$phase: contexts $((c1 / 1024)) kB after $from, $((c2 / 1024)) kB after $to (growth $dc kB);" \
		"RssAnon $r1 kB -> $r2 kB (growth $((r2 - r1)) kB);" \
		"CacheMemoryContext $(($(mem_field "$file" "$from" 5) / 1024)) kB -> $(($(mem_field "$file" "$to" 5) / 1024)) kB"
	if [ "$dc" -lt "$BOUND_KB" ]; then
		pass "$phase: memory contexts grew by $dc kB from $from to $to (bound $BOUND_KB kB)"
	else
		fail "$phase: memory contexts grew by $dc kB from $from to $to (bound $BOUND_KB kB): a leak"
	fi
	if [ "$r1" -lt 0 ] || [ "$r2" -lt 0 ]; then
		echo "INFO: $phase: RssAnon not readable; RSS check skipped"
	else
		dr=$((r2 - r1))
		if [ "$dr" -lt "$RSS_BOUND_KB" ]; then
			pass "$phase: RssAnon grew by $dr kB from $from to $to (bound $RSS_BOUND_KB kB)"
		else
			fail "$phase: RssAnon grew by $dr kB from $from to $to (bound $RSS_BOUND_KB kB): a leak outside memory contexts (malloc)"
		fi
	fi
}

# expected SQLSTATE of each kind of fail_n ("*": any error but XX000)
kind_expected() {
	case $1 in
		0 | 1 | 2 | 7 | 8) echo 23S02 ;;
		3) echo 22S01 ;;
		4) echo 42S01 ;;
		5) echo '*' ;;
		6) echo 22023 ;;
	esac
}

# sum_counts: reads the jsonb objects {"kind sqlstate": n, ...} that fail_n
# returned, one per line; writes "kind sqlstate|total" lines
sum_counts() {
	awk '{
		gsub(/[{}"]/, "")
		n = split($0, parts, ", ")
		for (j = 1; j <= n; j++) {
			split(parts[j], kv, ": ")
			total[kv[1]] += kv[2]
		}
	}
	END { for (k in total) print k "|" total[k] }' | LC_ALL=C sort
}

# check_counts LABEL FILE TOTAL: every kind failed with its SQLSTATE; FILE
# has "kind sqlstate|count" lines
check_counts() {
	local label=$1 file=$2 total=$3 bad="" sum=0 key n kind state exp
	log "$label: outcomes (kind sqlstate: count): $(tr '\n' ' ' <"$file")"
	while IFS='|' read -r key n; do
		[ -n "$key" ] || continue
		sum=$((sum + n))
		kind=${key%% *}
		state=${key#* }
		exp=$(kind_expected "$kind")
		if [ "$state" = success ] || [ "$state" = XX000 ] ||
			{ [ "$exp" != '*' ] && [ "$state" != "$exp" ]; }; then
			bad="$bad $key ($n times, expected $exp)"
		fi
	done <"$file"
	check "$label: appends counted" "$sum" "$total"
	if [ -z "$bad" ]; then
		pass "$label: every failure had its expected SQLSTATE"
	else
		fail "$label: unexpected outcomes:$bad"
	fi
}

# ---- phase 1: failed appends in PL/pgSQL, one session ----
first=$((FAIL_TOTAL / 10))
log "phase 1: $FAIL_TOTAL failed appends in one session (measured after $first and $FAIL_TOTAL)"
start=$SECONDS
{
	echo "SELECT mem('start');"
	echo "SELECT 'COUNTS|' || fail_n(1, $first)::text;"
	echo "SELECT mem('first');"
	step=$(((FAIL_TOTAL - first + 8) / 9))
	from=$((first + 1))
	while [ "$from" -le "$FAIL_TOTAL" ]; do
		to=$((from + step - 1))
		[ "$to" -le "$FAIL_TOTAL" ] || to=$FAIL_TOTAL
		echo "SELECT 'COUNTS|' || fail_n($from, $to)::text;"
		from=$((to + 1))
	done
	echo "SELECT mem('last');"
	echo "SELECT * FROM contexts('last');"
} | psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" >"$ES_TMP/phase1.out" 2>&1 ||
	fail "phase 1: psql failed: $(tail -n 5 "$ES_TMP/phase1.out")"
log "phase 1 took $((SECONDS - start)) s"
grep '^COUNTS|' "$ES_TMP/phase1.out" | cut -d'|' -f2- | sum_counts >"$ES_TMP/phase1.counts"
check_counts "phase 1" "$ES_TMP/phase1.counts" "$FAIL_TOTAL"
judge "phase 1 (failed appends, PL/pgSQL)" "$ES_TMP/phase1.out" first last
grep '^CTX|' "$ES_TMP/phase1.out" | sed 's/^/    /'
check "phase 1: nothing stored by the failures" "$(q "$DB" "SELECT es_version('playbook-1')")" 1

# ---- phase 1b: failed appends as top-level statements ----
n_top=$((FAIL_TOTAL / 5))
first_top=$((n_top / 10))
log "phase 1b: $n_top failed top-level appends in one session (measured after $first_top and $n_top)"
start=$SECONDS
awk -v n="$n_top" -v first="$first_top" '
	BEGIN {
		print "SELECT mem(\047start\047);"
		for (i = 1; i <= n; i++) {
			k = i % 9
			if (k == 0) printf "SELECT es_append(\047playbook-1\047, \047module_delete\047, \047{\"moduleId\": \"gone%d\"}\047);\n", i
			else if (k == 1) print "SELECT es_append(\047playbook-1\047, \047module_add\047, \047{\"moduleId\": \"m1\", \"module\": {}}\047);"
			else if (k == 2) printf "SELECT es_append(\047playbook-1\047, \047touch_then_fail\047, \047{\"i\": %d, \"modules\": {\"x%d\": {}}}\047);\n", i, i
			else if (k == 3) printf "SELECT es_append(\047playbook-1\047, \047module_add\047, \047{\"moduleId\": %d, \"module\": {}}\047);\n", i
			else if (k == 4) print "SELECT es_append(\047playbook-1\047, \047no_such_type\047, \047{}\047);"
			else if (k == 5) print "SELECT es_append(\047playbook-1\047, \047module_add\047, jsonb_build_object(\047moduleId\047, \047deep\047, \047module\047, deep_doc()));"
			else if (k == 6) print "SELECT es_append(\047playbook-1\047, \047module_add\047, \047\"text\"\047);"
			else if (k == 7) printf "SELECT es_append_batch(\047playbook-1\047, \047[{\"event_type\": \"module_add\", \"data\": {\"moduleId\": \"b%d\", \"module\": {}}}, {\"event_type\": \"module_delete\", \"data\": {\"moduleId\": \"gone\"}}]\047);\n", i
			else print "INSERT INTO es.events (stream, event_type, data) VALUES (\047playbook-1\047, \047module_move\047, \047{\"moduleId\": \"gone\", \"position\": 1}\047);"
			if (i == first) print "SELECT mem(\047first\047);"
		}
		print "SELECT mem(\047last\047);"
	}' >"$ES_TMP/phase1b.sql"
psql -X -q -At -v ON_ERROR_STOP=0 -v VERBOSITY=sqlstate -d "$DB" -f "$ES_TMP/phase1b.sql" \
	>"$ES_TMP/phase1b.out" 2>"$ES_TMP/phase1b.err" || true
log "phase 1b took $((SECONDS - start)) s"
n=$(grep -c '^psql:.*ERROR:' "$ES_TMP/phase1b.err" || true)
check "phase 1b: statements that failed" "$n" "$n_top"
log "phase 1b: SQLSTATEs: $(sed -n 's/^psql:.*ERROR:  *\([0-9A-Z]*\).*/\1/p' "$ES_TMP/phase1b.err" | sort | uniq -c | tr -s ' \n' ' ')"
n=$(grep -cE 'ERROR: +XX000|server closed|terminated' "$ES_TMP/phase1b.err" || true)
check "phase 1b: internal errors or lost connections" "$n" 0
judge "phase 1b (failed appends, top level)" "$ES_TMP/phase1b.out" first last
check "phase 1b: nothing stored by the failures" "$(q "$DB" "SELECT es_version('playbook-1')")" 1

# ---- phase 2: successful appends and replays with a 1 MB state cache ----
first=$((OK_TOTAL / 10))
log "phase 2: $OK_TOTAL appends + replays, state_cache_size = 1MB (measured after $first and $OK_TOTAL)"
start=$SECONDS
{
	echo "SET eventsourcing.state_cache_size = 1;"
	echo "SET eventsourcing.snapshot_every = 20;"
	echo "SET eventsourcing.notify = off;"
	echo "SELECT 'SETTING|' || current_setting('eventsourcing.state_cache_size');"
	echo "SELECT mem('start');"
	chunk=$((first / 2))
	[ "$chunk" -ge 1 ] || chunk=1
	from=1
	while [ "$from" -le "$OK_TOTAL" ]; do
		to=$((from + chunk - 1))
		[ "$to" -le "$OK_TOTAL" ] || to=$OK_TOTAL
		echo "SELECT 'BAD|' || ok_n($from, $to);"
		if [ "$to" -eq "$first" ]; then
			echo "SELECT mem('first');"
			echo "SELECT * FROM contexts('first');"
		fi
		from=$((to + 1))
	done
	echo "SELECT mem('last');"
	echo "SELECT * FROM contexts('last');"
} | psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" >"$ES_TMP/phase2.out" 2>&1 ||
	fail "phase 2: psql failed: $(tail -n 5 "$ES_TMP/phase2.out")"
log "phase 2 took $((SECONDS - start)) s"
log "phase 2: eventsourcing.state_cache_size = $(sed -n 's/^SETTING|//p' "$ES_TMP/phase2.out")"
bad=$(awk -F'|' '$1 == "BAD" { s += $2; n++ } END { print s + 0 "/" n + 0 }' "$ES_TMP/phase2.out")
check "phase 2: wrong replays / chunks run" "${bad%/*}" 0
check "phase 2: events stored" "$(q "$DB" "SELECT count(*) FROM es.events WHERE stream LIKE 'playbook-p%'")" "$OK_TOTAL"
judge "phase 2 (appends and replays, 1 MB state cache)" "$ES_TMP/phase2.out" first last
grep '^CTX|' "$ES_TMP/phase2.out" | sed 's/^/    /'
log "phase 2: snapshots: $(q "$DB" "SELECT count(*) || ' rows of ' || count(DISTINCT stream) || ' streams' FROM es.snapshots")"

es_finish
