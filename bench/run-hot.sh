#!/usr/bin/env bash
# Runs BenchmarkHotSession (one session, 32 connections, ours and scs side
# by side) against a private redis-server, ROUNDS times (default 5), each
# round running every case once so that the machine's load spreads over
# all cases alike, and prints the median requests per second of each case,
# the ratios ours/scs and the issue's targets, in Markdown. The raw output
# goes to results-hot.txt beside this script.
#
#   bench/run-hot.sh              # 5 rounds: about 5 minutes on 2 cores
#   ROUNDS=3 bench/run-hot.sh
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-5}

command -v redis-server >/dev/null || { echo "run-hot.sh: redis-server not on PATH" >&2; exit 1; }
work=$(mktemp -d)
redis_pid=""
cleanup() {
	[[ -n $redis_pid ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: bind port 0 through redis-server itself is not
# possible, so try random high ports until one starts.
for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
	redis_pid=$!
	for _ in $(seq 50); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
		sleep 0.1
	done
	if kill -0 "$redis_pid" 2>/dev/null; then break; fi
	redis_pid=""
done
[[ -n $redis_pid ]] || { echo "run-hot.sh: could not start redis-server" >&2; cat "$work/redis.log" >&2; exit 1; }
export SESSIONS_BENCH_REDIS="127.0.0.1:$port"

out=results-hot.txt
: >"$out"
echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3) $(redis-server --version | grep -o 'v=[^ ]*'), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"
for round in $(seq "$ROUNDS"); do
	echo "run-hot.sh: round $round of $ROUNDS" >&2
	go test -run '^$' -bench '^BenchmarkHotSession$' -count=1 . | grep '^BenchmarkHotSession' >>"$out"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"

# Medians of req/s (and kept%, rtt/op) per case, then the ratios.
awk '
function median(arr, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j-1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j-1]; arr[j-1] = t }
	return n % 2 ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
}
/^BenchmarkHotSession/ {
	name = $1; sub(/^BenchmarkHotSession\//, "", name); sub(/-[0-9]+$/, "", name)
	k = ++n[name]
	for (i = 3; i < NF; i++) {
		if ($(i+1) == "req/s") rps[name, k] = $i
		if ($(i+1) == "kept%") kept[name, k] = $i
		if ($(i+1) == "rtt/op") rtt[name, k] = $i
	}
	names[name] = 1
}
END {
	for (name in names) {
		delete a; for (k = 1; k <= n[name]; k++) a[k] = rps[name, k]; med[name] = median(a, n[name])
		delete a; m = 0; for (k = 1; k <= n[name]; k++) if ((name, k) in kept) a[++m] = kept[name, k]; if (m) mk[name] = median(a, m)
		delete a; m = 0; for (k = 1; k <= n[name]; k++) if ((name, k) in rtt) a[++m] = rtt[name, k]; if (m) mr[name] = median(a, m)
	}
	printf "| mode | ours req/s | scs req/s | ours/scs | target | increments kept: ours / scs | Redis round trips per request: ours / scs |\n|---|---|---|---|---|---|---|\n"
	split("memory/read memory/increment redis/read redis/increment", modes, " ")
	split("2.0 2.0 1.8 1.5", targets, " ")
	for (i = 1; i <= 4; i++) {
		split(modes[i], p, "/"); o = "sessions-" p[1] "/" p[2]; s = (p[1] == "memory" ? "scs-memstore" : "scs-redis") "/" p[2]
		r = med[o] / med[s]
		printf "| %s, %s | %.0f | %.0f | %.2fx | >= %sx: %s | %s | %s |\n", p[1], p[2], med[o], med[s], r, targets[i], (r >= targets[i] ? "met" : "**missed**"),
			(p[2] == "increment" ? sprintf("%.2f%% / %.2f%%", mk[o], mk[s]) : ""),
			(p[1] == "redis" ? sprintf("%.3f / %.3f", mr[o], mr[s]) : "")
	}
}' "$out"
