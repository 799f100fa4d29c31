#!/usr/bin/env bash
# Runs the PostgreSQL benchmarks of github.com/sessionx/sessions against a
# private PostgreSQL server with its default settings (fsync and
# synchronous_commit on, as in production), beside scs's pgxstore, and writes
# the "PostgreSQL" section of RESULTS.md (replacing it, keeping the rest).
# The raw output is kept in results-postgres.txt.
#
#   bench/run-postgres.sh              # COUNT=6 rounds: about 4 minutes on 2 cores
#   COUNT=10 bench/run-postgres.sh
#
# The server is initdb'd in a temporary directory and listens on a free
# port of 127.0.0.1 only; as root, it runs as the postgres user (PostgreSQL
# refuses root). The binaries are found in /usr/lib/postgresql/<version>/bin
# (Debian's layout; apt-get install postgresql) or on PATH.
set -euo pipefail

cd "$(dirname "$0")"
COUNT=${COUNT:-6}
BENCHSTAT_VERSION=${BENCHSTAT_VERSION:-latest}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z $bin ]]; then
	bin=$(dirname "$(readlink -f "$(command -v initdb || echo /nonexistent)")")
fi
[[ -x $bin/initdb && -x $bin/postgres ]] || { echo "run-postgres.sh: initdb and postgres not found (apt-get install postgresql)" >&2; exit 1; }

work=$(mktemp -d)
pg_pid=""
as_pg=()
if [[ $(id -u) == 0 ]]; then
	chown postgres: "$work"
	as_pg=(runuser -u postgres --)
fi
# stop_pg stops the server with a fast shutdown, signalling the postmaster
# itself (runuser does not pass signals on), and waits for it.
stop_pg() {
	local pid
	pid=$(head -1 "$work/data/postmaster.pid" 2>/dev/null || true)
	if [[ -n $pid ]]; then
		kill -INT "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	if [[ -n $pg_pid ]]; then
		kill "$pg_pid" 2>/dev/null || true
		wait "$pg_pid" 2>/dev/null || true
	fi
	pg_pid=""
}
cleanup() {
	stop_pg
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

"${as_pg[@]}" "$bin/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log" >&2; exit 1; }
for attempt in 1 2 3 4 5; do
	port=$(free_port)
	"${as_pg[@]}" "$bin/postgres" -D "$work/data" -p "$port" -c listen_addresses=127.0.0.1 \
		-c unix_socket_directories= >"$work/postgres.log" 2>&1 &
	pg_pid=$!
	for _ in $(seq 1 100); do
		"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && break
		kill -0 "$pg_pid" 2>/dev/null || break
		sleep 0.1
	done
	if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
		break
	fi
	stop_pg
	echo "run-postgres.sh: postgres did not start on port $port (attempt $attempt):" >&2
	cat "$work/postgres.log" >&2
done
[[ -n $pg_pid ]] || { echo "run-postgres.sh: could not start postgres" >&2; exit 1; }
export SESSIONS_BENCH_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
pgver=$("$bin/postgres" --version)
echo "run-postgres.sh: $pgver on 127.0.0.1:$port (pid $pg_pid), default settings"

echo "run-postgres.sh: building benchstat@$BENCHSTAT_VERSION"
(cd "$work" && GOFLAGS= GOBIN="$work/bin" go install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION")
benchstat="$work/bin/benchstat"

go test -c -o "$work/bench.test" .
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$SECONDS
: >results-postgres.txt
# Each round runs every benchmark once (-count 1), so that drifts and other
# load on the machine spread over all of them alike.
for round in $(seq 1 "$COUNT"); do
	echo "run-postgres.sh: round $round of $COUNT ($((SECONDS - t0)) s so far)"
	"$work/bench.test" -test.run '^$' -test.benchmem -test.count 1 -test.benchtime 1s -test.timeout 30m \
		-test.bench '^BenchmarkRequest$/^(baseline|sessions-postgres|sessions-postgres-touchevery|scs-pgxstore)/' >>results-postgres.txt
done
echo "run-postgres.sh: the cleanup of 1,000,000 expired rows, and the control, 3 times each"
"$work/bench.test" -test.run '^$' -test.benchmem -test.count 3 -test.benchtime 1x -test.timeout 30m \
	-test.bench '^BenchmarkPostgresCleanup$' >>results-postgres.txt
elapsed=$((SECONDS - t0))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$benchstat" -filter '.unit:(sec/op OR B/op OR allocs/op OR stmts/op OR log-B/op)' results-postgres.txt >"$work/tables.txt" 2>&1 ||
	"$benchstat" results-postgres.txt >"$work/tables.txt" 2>&1
"$benchstat" -format csv results-postgres.txt >"$work/pg.csv" 2>/dev/null
go run ./cmd/pgratios "$work/pg.csv" results-postgres.txt >"$work/ratios.md"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
	echo "<!-- postgres: written by bench/run-postgres.sh; do not edit by hand -->"
	echo "## PostgreSQL"
	echo
	echo "Written by \`bench/run-postgres.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $cpu, $(nproc) cores,"
	echo "$(go version | cut -d' ' -f3), $pgver (private, on loopback, default settings: fsync and synchronous_commit on),"
	echo "$(go list -m -f '{{.Path}} {{.Version}}' github.com/alexedwards/scs/pgxstore github.com/jackc/pgx/v5 | paste -sd, - | sed 's/,/, /g');"
	echo "$COUNT rounds of the requests, 3 cleanups each, $elapsed s in all; load average (1, 5, 15 min) before: $load_before,"
	echo "after: $load_after (the machine is shared: other processes' load widens the intervals and the cleanup's longest wait)."
	echo
	cat "$work/ratios.md"
	echo
	echo "- **BenchmarkRequest** (PostgreSQL rows): the same handlers and data as the other rows; this library"
	echo "  with its defaults (TouchInterval 3 min: a read-only request writes nothing) and with TouchInterval"
	echo "  1 ns (\`touchevery\`: every request slides the deadline, in the load's statement); scs with"
	echo "  IdleTimeout 30 min on pgxstore (a read-only request commits an upsert). \`stmts/op\` counts the"
	echo "  statements with a pgx QueryTracer; after warm-up each is one round trip. \`log-B/op\` (WAL) is how far"
	echo "  the server's WAL position (\`pg_current_wal_insert_lsn()\`) moved over the timed loop, per request: what"
	echo "  each request made the server write (this library's modifying request is an in-place HOT update: a"
	echo "  save before a refresh is due keeps the indexed idle deadline)."
	echo "- **BenchmarkPostgresCleanup**: 1,000,000 expired rows removed while another goroutine keeps sending"
	echo "  read-only requests of a live session through the same library; \`max-request-ms\` is the longest of"
	echo "  those requests. This library: \`Store.Cleanup\`, batches of 1,000 rows, each its own statement; scs:"
	echo "  its single \`DELETE FROM sessions WHERE expiry < current_timestamp\`; \`none\`: this library's requests"
	echo "  alone for 10 s, no cleanup, as a control: how long the machine by itself made a request wait."
	echo
	echo '```'
	cat "$work/tables.txt"
	echo '```'
	echo "<!-- /postgres -->"
} >"$work/section.md"

# Replace the section in RESULTS.md, or append it.
if grep -q '^<!-- postgres:' RESULTS.md 2>/dev/null; then
	awk -v f="$work/section.md" '
		/^<!-- postgres:/ { while ((getline l < f) > 0) print l; skip = 1; next }
		/^<!-- \/postgres -->/ { skip = 0; next }
		!skip' RESULTS.md >"$work/RESULTS.md"
	cp "$work/RESULTS.md" RESULTS.md
else
	{ echo; cat "$work/section.md"; } >>RESULTS.md
fi
echo "run-postgres.sh: wrote the PostgreSQL section of RESULTS.md and results-postgres.txt in $elapsed s of benchmarks"
