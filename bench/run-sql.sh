#!/usr/bin/env bash
# Runs the SQLite and MySQL benchmarks of github.com/sessionx/sessions
# (issue 19) beside scs's sqlite3store and mysqlstore: the SQLite ones on
# files in temporary directories, the MySQL ones against a private MariaDB
# server with its default settings (innodb_flush_log_at_trx_commit=1, as in
# production). Writes the "SQLite and MariaDB" section of RESULTS.md
# (replacing it, keeping the rest) and prints it; the raw output is kept in
# results-sql.txt.
#
#   bench/run-sql.sh                  # COUNT=6 rounds of the requests, CLEANUPS=3 of each cleanup
#   COUNT=10 CLEANUPS=1 bench/run-sql.sh
#   COUNT=1 CLEANUPS=0 bench/run-sql.sh   # a quick check of the script: no cleanups
#   RESUME=1 bench/run-sql.sh             # go on with an interrupted run (see step below)
#   NOTE='...' bench/run-sql.sh           # a paragraph for the section's header (what was run again, say)
#
# On 2 cores, the whole run takes about 30 minutes: a round of the requests
# about 17 s; one SQLite cleanup step (this library's, scs's and the
# control) about 2 minutes, one MariaDB step about 4 (this library's
# cleanups are the slow part), the cases whose requests write 2 and 3.
#
# The server is installed with mariadb-install-db into a temporary directory
# and listens on a free port of 127.0.0.1 only (and a socket in that
# directory); as root, mariadbd gets --user=root (it refuses root without
# it). The binaries are mariadbd and mariadb-install-db (Debian's
# mariadb-server package), found in $SESSIONS_MARIADB_BIN, on PATH, or in
# /usr/sbin and /usr/bin; mariadb (the client) creates the database.
set -euo pipefail

cd "$(dirname "$0")"
COUNT=${COUNT:-6}
CLEANUPS=${CLEANUPS:-3}
CONTROL_TOUCHEVERY=${CONTROL_TOUCHEVERY:-2m} # the writing requests' control
BENCHSTAT_VERSION=${BENCHSTAT_VERSION:-latest}

find_bin() {
	local name=$1 dir
	if [[ -n ${SESSIONS_MARIADB_BIN:-} ]]; then
		[[ -x $SESSIONS_MARIADB_BIN/$name ]] && { echo "$SESSIONS_MARIADB_BIN/$name"; return; }
		return 1
	fi
	command -v "$name" 2>/dev/null && return
	for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
		[[ -x $dir/$name ]] && { echo "$dir/$name"; return; }
	done
	return 1
}
mariadbd=$(find_bin mariadbd) || { echo "run-sql.sh: mariadbd not found (apt-get install mariadb-server)" >&2; exit 1; }
install_db=$(find_bin mariadb-install-db) || { echo "run-sql.sh: mariadb-install-db not found (apt-get install mariadb-server)" >&2; exit 1; }
client=$(find_bin mariadb) || { echo "run-sql.sh: mariadb (the client) not found (apt-get install mariadb-client)" >&2; exit 1; }

work=$(mktemp -d)
db_pid=""
user_args=()
if [[ $(id -u) == 0 ]]; then
	user_args=(--user=root) # mariadbd refuses to run as root without it
fi
# stop_db stops the server with a normal shutdown (SIGTERM) and waits for
# it, at most 30 s before SIGKILL.
stop_db() {
	if [[ -n $db_pid ]]; then
		kill -TERM "$db_pid" 2>/dev/null || true
		for _ in $(seq 1 300); do
			kill -0 "$db_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$db_pid" 2>/dev/null || true
		wait "$db_pid" 2>/dev/null || true
	fi
	db_pid=""
}
cleanup() {
	stop_db
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	cat >"$work/port.go" <<'GO'
package main

import (
	"fmt"
	"net"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	l.Close()
}
GO
	(cd "$work" && GOFLAGS= GO111MODULE=off go run port.go)
}
sql() { "$client" --no-defaults --protocol=socket --socket="$work/mysqld.sock" -uroot -N -B -e "$1"; }

echo "run-sql.sh: mariadb-install-db into $work/data"
TZ=UTC "$install_db" --no-defaults --datadir="$work/data" --auth-root-authentication-method=normal \
	--skip-test-db --skip-name-resolve --skip-log-bin "${user_args[@]}" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; exit 1; }
for attempt in 1 2 3 4 5; do
	port=$(free_port)
	# TZ=UTC: scs's TIMESTAMP column is read in the server's time zone.
	TZ=UTC "$mariadbd" --no-defaults --datadir="$work/data" --socket="$work/mysqld.sock" \
		--pid-file="$work/mysqld.pid" --tmpdir="$work" --port="$port" --bind-address=127.0.0.1 \
		--skip-name-resolve --skip-log-bin "${user_args[@]}" >"$work/mariadbd.log" 2>&1 &
	db_pid=$!
	for _ in $(seq 1 300); do
		sql 'SELECT 1' >/dev/null 2>&1 && break
		kill -0 "$db_pid" 2>/dev/null || break
		sleep 0.1
	done
	if sql 'SELECT 1' >/dev/null 2>&1; then
		break
	fi
	stop_db
	echo "run-sql.sh: mariadbd did not start on port $port (attempt $attempt):" >&2
	tail -20 "$work/mariadbd.log" >&2
done
[[ -n $db_pid ]] || { echo "run-sql.sh: could not start mariadbd" >&2; exit 1; }
# root over TCP from 127.0.0.1, without a password: a private server on
# loopback.
sql "CREATE DATABASE bench; CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
export SESSIONS_BENCH_MYSQL="root@tcp(127.0.0.1:$port)/bench?interpolateParams=true&parseTime=true&timeout=5s"
dbver=$(sql 'SELECT VERSION()')
bufpool=$(sql 'SELECT @@innodb_buffer_pool_size DIV 1048576')
flush=$(sql 'SELECT @@innodb_flush_log_at_trx_commit')
echo "run-sql.sh: MariaDB $dbver on 127.0.0.1:$port (pid $db_pid), default settings"

echo "run-sql.sh: building benchstat@$BENCHSTAT_VERSION"
(cd "$work" && GOFLAGS= GOBIN="$work/bin" go install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION")
benchstat="$work/bin/benchstat"

go vet ./...
go test -c -o "$work/bench.test" .
tmpdir=${TMPDIR:-/tmp}
tmpfs=$(df -PT "$tmpdir" | awk 'NR == 2 { print $2 }')
# The run is a list of steps, each appended to results-sql.txt only once it
# has finished, followed by a line "# run-sql: done STEP in N s" (benchstat
# ignores lines starting with #). With RESUME=1, a run that was interrupted
# (the machine is shared) goes on where it stopped: the steps already done
# are skipped, on a new MariaDB server.
if [[ ${RESUME:-0} == 1 && -s results-sql.txt ]] && grep -q '^# run-sql: load-before ' results-sql.txt; then
	echo "run-sql.sh: resuming: $(grep -c '^# run-sql: done ' results-sql.txt) step(s) already done"
else
	echo "# run-sql: load-before $(cut -d' ' -f1-3 /proc/loadavg)" >results-sql.txt
	echo "# run-sql: started $(date -u '+%Y-%m-%d %H:%M UTC')" >>results-sql.txt
fi
# step NAME ARGS...: runs the benchmark binary with ARGS unless step NAME is
# done, and appends its output.
step() {
	local name=$1
	shift
	if grep -q "^# run-sql: done $name in " results-sql.txt; then
		return
	fi
	echo "run-sql.sh: $name"
	local t=$SECONDS
	"$work/bench.test" -test.run '^$' -test.benchmem "$@" >"$work/step.txt"
	cat "$work/step.txt" >>results-sql.txt
	echo "# run-sql: done $name in $((SECONDS - t)) s" >>results-sql.txt
}
# Each round runs every request benchmark once (-count 1), SQLite's and
# MariaDB's, so that drifts and other load on the machine spread over all
# of them alike.
for round in $(seq 1 "$COUNT"); do
	step "requests-round-$round" -test.count 1 -test.benchtime 1s -test.timeout 30m \
		-test.bench '^Benchmark(SQLite|MySQL)Request$'
done
# The cleanups: SQLite's first, so that they do not share the disk with
# InnoDB's purge of MariaDB's deletes; each MariaDB run waits for the purge
# of the one before (settleMySQL). The cases whose every request writes
# (sessions-touchevery) run once.
if ((CLEANUPS > 0)); then
	for b in SQLite MySQL; do
		for i in $(seq 1 "$CLEANUPS"); do
			step "$b-cleanup-$i" -test.count 1 -test.benchtime 1x -test.timeout 60m \
				-test.bench "^Benchmark${b}Cleanup\$/^(sessions|scs|none)\$"
		done
		step "$b-cleanup-touchevery" -test.count 1 -test.benchtime 1x -test.timeout 60m \
			-test.bench "^Benchmark${b}Cleanup\$/^sessions-touchevery\$"
		# Its control: the same writing requests alone, for about as long
		# as the writing cleanup lasts, so that its longest wait compares.
		SESSIONS_BENCH_CONTROL=$CONTROL_TOUCHEVERY step "$b-control-touchevery" -test.count 1 -test.benchtime 1x \
			-test.timeout 60m -test.bench "^Benchmark${b}Cleanup\$/^none-touchevery\$"
	done
fi
elapsed=$(awk '/^# run-sql: done / { t += $(NF - 1) } END { print t + 0 }' results-sql.txt)
load_before=$(awk '/^# run-sql: load-before / { print $4, $5, $6; exit }' results-sql.txt)
started=$(awk '/^# run-sql: started / { sub(/^# run-sql: started /, ""); print; exit }' results-sql.txt)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$benchstat" -filter '.unit:(sec/op OR B/op OR allocs/op OR stmts/op OR log-B/op OR max-request-ms OR p99-request-ms OR requests OR slow-requests OR failed)' \
	results-sql.txt >"$work/tables.txt" 2>&1 || "$benchstat" results-sql.txt >"$work/tables.txt" 2>&1
"$benchstat" -format csv results-sql.txt >"$work/sql.csv" 2>/dev/null
go run ./cmd/sqlratios "$work/sql.csv" results-sql.txt >"$work/ratios.md"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
	echo "<!-- sql: written by bench/run-sql.sh; do not edit by hand -->"
	echo "## SQLite and MariaDB"
	echo
	echo "Written by \`bench/run-sql.sh\` (started $started, finished $(date -u '+%Y-%m-%d %H:%M UTC')): $cpu, $(nproc) cores, $(go version | cut -d' ' -f3),"
	echo "$(go list -m -f '{{.Path}} {{.Version}}' modernc.org/sqlite github.com/go-sql-driver/mysql github.com/alexedwards/scs/sqlite3store github.com/alexedwards/scs/mysqlstore | paste -sd, - | sed 's/,/, /g');"
	echo "SQLite files in $tmpdir ($tmpfs); MariaDB $dbver (private, on loopback, default settings:"
	echo "innodb_flush_log_at_trx_commit=$flush, a $bufpool MiB buffer pool, no binary log);"
	echo "$COUNT rounds of the requests, $CLEANUPS cleanup(s) each, $elapsed s in all; load average (1, 5, 15 min) before: $load_before,"
	echo "after: $load_after (the machine is shared: other processes' load widens the intervals and the cleanups' longest waits)."
	if [[ -n ${NOTE:-} ]]; then
		echo
		echo "$NOTE"
	fi
	echo
	cat "$work/ratios.md"
	echo
	echo "- **BenchmarkSQLiteRequest**, **BenchmarkMySQLRequest**: the handlers, data and loop of BenchmarkRequest."
	echo "  This library with its defaults (TouchInterval 3 min: a read-only request writes nothing) and with"
	echo "  TouchInterval 1 ns (\`touchevery\`: every request slides the deadline); scs v2 with IdleTimeout 30 min"
	echo "  (every request commits: REPLACE on sqlite3store, INSERT ... ON DUPLICATE KEY UPDATE on mysqlstore)."
	echo "  SQLite: each library on a file of its own, both through modernc.org/sqlite with WAL, busy_timeout 5 s"
	echo "  and synchronous=NORMAL and the same pool (max(4, GOMAXPROCS) connections); this library's file is"
	echo "  opened with \`sqlite.DSN\` (which also turns SQLite's automatic checkpoints off: the store checkpoints"
	echo "  from a goroutine of its own), scs's keeps SQLite's automatic checkpoints. MariaDB: one database, the"
	echo "  DSN \`interpolateParams=true&parseTime=true&timeout=5s\` for both (one round trip per statement)."
	echo "  \`stmts/op\` counts the statements with a database/sql driver wrapper (every Exec and Query, BEGIN and"
	echo "  COMMIT; not the SQLite store's background \`PRAGMA wal_checkpoint\`). \`log-B/op\` (MariaDB only) is how far"
	echo "  InnoDB's log sequence number (\`Innodb_lsn_current\`) moved over the timed loop, per request: the redo"
	echo "  each request made the server write."
	echo "- **BenchmarkSQLiteCleanup**, **BenchmarkMySQLCleanup**: 1,000,000 expired rows (inserted by one"
	echo "  INSERT ... SELECT, then checkpointed: SQLite's \`wal_checkpoint(TRUNCATE)\`; InnoDB's ANALYZE TABLE and"
	echo "  buffer pool flushed) removed while another goroutine keeps sending read-only requests of a live"
	echo "  session through the same library; \`max-request-ms\` is the longest of those requests, \`p99-request-ms\`"
	echo "  their 99th percentile, \`slow-requests\` how many took over 100 ms, \`failed\` how many did not"
	echo "  answer 200. The rows' deadlines are spread over the day before, in no relation to their random keys"
	echo "  (SQLite: in rowid order; MariaDB: inserted sorted by key, for speed). This library:"
	echo "  \`Store.Cleanup\`, batches of 1,000 rows, with its defaults (a read-only request writes nothing,"
	echo "  unless the cleanup outlasts the 3-minute TouchInterval: then one request slides the deadline) and,"
	echo "  once, with TouchInterval 1 ns (\`sessions-touchevery\`: every request writes, as every scs request"
	echo "  does); scs: its single"
	echo "  DELETE (sqlite3store: \`expiry < julianday('now')\`; mysqlstore: \`expiry < UTC_TIMESTAMP(6)\`);"
	echo "  \`none\`: this library's requests alone for 10 s, no cleanup: how long the machine by itself made a"
	echo "  request wait; \`none-touchevery\`: the writing requests alone, for $CONTROL_TOUCHEVERY (about as long as the"
	echo "  writing cleanup), the writing case's control."
	echo
	echo '```'
	cat "$work/tables.txt"
	echo '```'
	echo "<!-- /sql -->"
} >"$work/section.md"

# Replace the section in RESULTS.md (between its markers, or, written by
# hand, from its heading to the next "## " heading), or append it.
if grep -q '^<!-- sql:' RESULTS.md 2>/dev/null; then
	awk -v f="$work/section.md" '
		/^<!-- sql:/ { while ((getline l < f) > 0) print l; skip = 1; next }
		/^<!-- \/sql -->/ { skip = 0; next }
		!skip' RESULTS.md >"$work/RESULTS.md"
	cp "$work/RESULTS.md" RESULTS.md
elif grep -q '^## SQLite and MariaDB' RESULTS.md 2>/dev/null; then
	awk -v f="$work/section.md" '
		/^## SQLite and MariaDB/ { while ((getline l < f) > 0) print l; skip = 1; next }
		skip && /^## / { skip = 0; print ""; }
		!skip' RESULTS.md >"$work/RESULTS.md"
	cp "$work/RESULTS.md" RESULTS.md
else
	{ echo; cat "$work/section.md"; } >>RESULTS.md
fi
cat "$work/section.md"
echo "run-sql.sh: wrote the SQLite and MariaDB section of RESULTS.md and results-sql.txt in $elapsed s of benchmarks"
