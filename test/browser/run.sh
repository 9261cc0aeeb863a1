#!/usr/bin/env bash
# test/browser/run.sh - the playbook editor (relay/web/) in two headless
# chromium pages, through the real relay and database.
#
# Usage: test/browser/run.sh
#
# Builds relay/es-relay (make -C relay), starts a private cluster
# (test/cluster.sh, library preloaded) on a free port below 32768, creates a
# database with the extension and examples/playbook.sql, installs
# puppeteer-core with npm if test/browser/node_modules lacks it (it downloads
# no browser: Debian's /usr/bin/chromium is used), then runs
# test/browser/editor.test.js, which starts and restarts the relay itself
# (relay/es-relay --web relay/web) and drives the pages.  Prints one
# PASS:/FAIL: line per check, saves screenshots in test/browser/output/, and
# exits 1 if any check failed.
#
# Environment: ES_BROWSER_PG_PORT, ES_BROWSER_RELAY_PORT (ports; default:
# free ones), CHROMIUM (default /usr/bin/chromium), ES_BROWSER_HEADFUL=1 (show
# the browser, if there is a display).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
HERE="$REPO/test/browser"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

FAILED=0
pass() { echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
log() { echo "[browser $(date +%H:%M:%S)] $*"; }

# free_port: a TCP port below 32768 nobody listens on
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

for cmd in node npm "$CHROMIUM"; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		fail "$cmd is missing (test/deps.sh installs chromium, nodejs and npm)"
		exit 1
	fi
done

WORK=$(mktemp -d /tmp/es-browser-test.XXXXXX)
chmod 755 "$WORK"
PG_PORT=${ES_BROWSER_PG_PORT:-$(free_port)}
RELAY_PORT=${ES_BROWSER_RELAY_PORT:-$(free_port)}
while [ "$RELAY_PORT" = "$PG_PORT" ]; do RELAY_PORT=$(free_port); done
CLUSTER=("$REPO/test/cluster.sh" "$WORK/pg" "$PG_PORT")
DB=es_browser
DSN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=$DB"

cleanup() {
	local rc=$?
	set +e
	"${CLUSTER[@]}" destroy >/dev/null 2>&1
	if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
		echo "(relay log kept in $WORK)"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

log "building the relay"
if make -s -C "$REPO/relay" >"$WORK/make.log" 2>&1; then
	pass "relay builds"
else
	cat "$WORK/make.log"
	fail "relay builds"
	exit 1
fi

if [ ! -d "$HERE/node_modules/puppeteer-core" ]; then
	log "npm install (puppeteer-core)"
	if ! (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1); then
		cat "$WORK/npm.log"
		fail "npm install puppeteer-core"
		exit 1
	fi
fi

log "cluster on port $PG_PORT, relay on port $RELAY_PORT ($WORK)"
if ! ES_EXTRA_CONF="shared_preload_libraries = 'eventsourcing'" "${CLUSTER[@]}" start >"$WORK/cluster.log" 2>&1; then
	cat "$WORK/cluster.log"
	fail "cluster starts"
	exit 1
fi
if createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres "$DB" &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$DSN" -c "CREATE EXTENSION eventsourcing" >/dev/null &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$DSN" -f "$REPO/examples/playbook.sql" >/dev/null; then
	pass "database with the extension and examples/playbook.sql"
else
	fail "database with the extension and examples/playbook.sql"
	exit 1
fi

mkdir -p "$HERE/output"
rm -f "$HERE/output/"*.png
rc=0
timeout 600 node "$HERE/editor.test.js" \
	--relay "$REPO/relay/es-relay" --port "$RELAY_PORT" --dsn "$DSN" --web "$REPO/relay/web" \
	--cluster "${CLUSTER[*]}" --relay-log "$WORK/relay.log" --out "$HERE/output" \
	--chromium "$CHROMIUM" || rc=$?
if [ "$rc" -ne 0 ]; then
	fail "editor.test.js exited with status $rc"
	[ -f "$WORK/relay.log" ] && tail -n 30 "$WORK/relay.log"
fi
echo "screenshots: $HERE/output/"
[ "$FAILED" -eq 0 ]
