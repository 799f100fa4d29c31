// Command ratios reads the CSV output of benchstat for the bench suite and
// prints, in Markdown, the headline ratios against scs and whether each of
// the targets is met. It uses benchstat's medians.
//
//	go run ./cmd/ratios results.csv
package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/sessionx/sessions/bench/internal/benchcsv"
	"github.com/sessionx/sessions/bench/internal/mdfmt"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ratios benchstat.csv")
		os.Exit(2)
	}
	t, err := benchcsv.Read(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
	report(os.Stdout, t)
}

// val returns the median of name in unit, or NaN.
func val(t *benchcsv.Table, unit, name string) float64 {
	if v, ok := t.Get(unit, name); ok {
		return v
	}
	return math.NaN()
}

// withCI returns the median in µs with benchstat's interval.
func withCI(t *benchcsv.Table, name string) string {
	v := val(t, "sec/op", name)
	if ci := t.CI("sec/op", name); ci != "" && !math.IsNaN(v) {
		return mdfmt.US(v) + " ± " + ci
	}
	return mdfmt.US(v)
}

type libRow struct {
	name, label, versus string // versus: the scs benchmark it is compared with
}

var rows = []libRow{
	{"sessions-memory", "sessions, memory store", "scs-memstore"},
	{"scs-memstore", "scs v2, memstore", "scs-memstore"},
	{"gorilla-cookie", "gorilla, CookieStore", "scs-memstore"},
	{"gorilla-fs", "gorilla, FilesystemStore", "scs-memstore"},
	{"sessions-redis", "sessions, Redis", "scs-redis"},
	{"sessions-redis-touchevery", "sessions, Redis, refresh every request", "scs-redis"},
	{"scs-redis", "scs v2, goredisstore", "scs-redis"},
	{"scs-redigo", "scs v2, redisstore (redigo)", "scs-redis"},
}

func report(w io.Writer, t *benchcsv.Table) {
	req := func(lib, op string) string { return "Request/" + lib + "/" + op }
	base := func(op string) float64 { return val(t, "sec/op", req("baseline", op)) }

	fmt.Fprintln(w, "### Whole requests, one existing session")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians of benchstat. \"vs scs\" divides by scs on the same kind of store (memstore for the")
	fmt.Fprintln(w, "in-process rows, goredisstore for the Redis rows); \"net\" first subtracts the harness")
	fmt.Fprintf(w, "(the baseline benchmark without sessions: %s read, %s modify) from both.\n", mdfmt.US(base("read")), mdfmt.US(base("modify")))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| library, store | read-only | vs scs | net | allocs | modifying | vs scs | net | allocs | modifying allocs vs scs | Redis cmds / round trips (read; modify) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		var cells []string
		cells = append(cells, r.label)
		for _, op := range []string{"read", "modify"} {
			me, them := val(t, "sec/op", req(r.name, op)), val(t, "sec/op", req(r.versus, op))
			cells = append(cells, withCI(t, req(r.name, op)), mdfmt.Ratio(me, them), mdfmt.Ratio(me-base(op), them-base(op)),
				mdfmt.Num(val(t, "allocs/op", req(r.name, op))))
		}
		cells = append(cells, mdfmt.Ratio(val(t, "allocs/op", req(r.name, "modify")), val(t, "allocs/op", req(r.versus, "modify"))))
		rt := "-"
		if c, ok := t.Get("cmds/op", req(r.name, "read")); ok {
			rt = fmt.Sprintf("%s / %s; %s / %s", mdfmt.Num(c), mdfmt.Num(val(t, "rtt/op", req(r.name, "read"))),
				mdfmt.Num(val(t, "cmds/op", req(r.name, "modify"))), mdfmt.Num(val(t, "rtt/op", req(r.name, "modify"))))
		}
		cells = append(cells, rt)
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | limit | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|")
	check := func(what string, measured float64, limit string, ok bool, detail string) {
		verdict := "**met**"
		switch {
		case math.IsNaN(measured):
			verdict = "not measured"
		case !ok:
			verdict = "**MISSED**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", what, detail, limit, verdict)
	}
	timeRatio := func(lib, versus, op string) float64 {
		return val(t, "sec/op", req(lib, op)) / val(t, "sec/op", req(versus, op))
	}
	allocRatio := func(lib, versus, op string) float64 {
		return val(t, "allocs/op", req(lib, op)) / val(t, "allocs/op", req(versus, op))
	}
	r := timeRatio("sessions-memory", "scs-memstore", "modify")
	check("memory, modifying request: time vs scs memstore", r, "≤ 0.2x", r <= 0.2,
		fmt.Sprintf("%.2fx (%s vs %s)", r, mdfmt.US(val(t, "sec/op", req("sessions-memory", "modify"))), mdfmt.US(val(t, "sec/op", req("scs-memstore", "modify")))))
	r = allocRatio("sessions-memory", "scs-memstore", "modify")
	check("memory, modifying request: allocations vs scs memstore", r, "≤ 0.2x", r <= 0.2,
		fmt.Sprintf("%.2fx (%s vs %s allocs)", r, mdfmt.Num(val(t, "allocs/op", req("sessions-memory", "modify"))), mdfmt.Num(val(t, "allocs/op", req("scs-memstore", "modify")))))
	r = timeRatio("sessions-memory", "scs-memstore", "read")
	check("memory, read-only request: time vs scs memstore", r, "≤ 0.2x", r <= 0.2,
		fmt.Sprintf("%.2fx (%s vs %s)", r, mdfmt.US(val(t, "sec/op", req("sessions-memory", "read"))), mdfmt.US(val(t, "sec/op", req("scs-memstore", "read")))))
	for _, lib := range []string{"sessions-redis", "sessions-redis-touchevery"} {
		what := "Redis, read-only request"
		if lib == "sessions-redis-touchevery" {
			what += ", deadline slid on every request"
		}
		rtt, scsRTT := val(t, "rtt/op", req(lib, "read")), val(t, "rtt/op", req("scs-redis", "read"))
		check(what+": round trips", rtt, "1 (scs: 2)", rtt <= 1, fmt.Sprintf("%s (scs: %s)", mdfmt.Num(rtt), mdfmt.Num(scsRTT)))
		r = timeRatio(lib, "scs-redis", "read")
		check(what+": time vs scs goredisstore", r, "≤ 0.6x", r <= 0.6,
			fmt.Sprintf("%.2fx (%s vs %s)", r, mdfmt.US(val(t, "sec/op", req(lib, "read"))), mdfmt.US(val(t, "sec/op", req("scs-redis", "read")))))
	}
	rtt, scsRTT := val(t, "rtt/op", req("sessions-redis", "modify")), val(t, "rtt/op", req("scs-redis", "modify"))
	check("Redis, modifying request: round trips", rtt, "2", rtt <= 2, fmt.Sprintf("%s (scs: %s)", mdfmt.Num(rtt), mdfmt.Num(scsRTT)))
	r = timeRatio("sessions-redis", "scs-redis", "modify")
	check("Redis, modifying request: time vs scs goredisstore", r, "≤ 0.8x", r <= 0.8,
		fmt.Sprintf("%.2fx (%s vs %s)", r, mdfmt.US(val(t, "sec/op", req("sessions-redis", "modify"))), mdfmt.US(val(t, "sec/op", req("scs-redis", "modify")))))
	ceiling := val(t, "sec/op", "Store/ceiling/serial") / val(t, "sec/op", "Store/ceiling/parallel")
	for _, op := range []string{"get", "set", "touch"} {
		name := "Store/memory/" + op
		s, p := val(t, "sec/op", name+"/serial"), val(t, "sec/op", name+"/parallel")
		detail := fmt.Sprintf("%.2fx (serial %.0f ns/op, parallel %.0f ns/op; CPU-only ceiling in the same run: %.2fx", s/p, s*1e9, p*1e9, ceiling)
		if cs, cp := val(t, "cores", name+"/serial"), val(t, "cores", name+"/parallel"); !math.IsNaN(cs) && !math.IsNaN(cp) {
			detail += fmt.Sprintf("; cores busy: serial %.2f, parallel %.2f", cs, cp)
		}
		check("memory store "+op+": RunParallel vs serial throughput", s/p, "≥ 1.6x", s/p >= 1.6, detail+")")
	}
	sweep, maxGet := val(t, "sec/sweep", "MillionSessions"), val(t, "max-get-sec", "MillionSessions")
	check("1,000,000 sessions: one sweep does not stop the world", maxGet,
		"longest wait of a concurrent Get < 10% of the sweep", maxGet < sweep/10,
		fmt.Sprintf("sweep %.1f ms, longest concurrent Get %.2f ms (%.1f%%), %s Gets served during the sweep",
			sweep*1e3, maxGet*1e3, 100*maxGet/sweep, mdfmt.Num(math.Round(val(t, "gets/sweep", "MillionSessions")))))
	fmt.Fprintln(w)
	if ping := val(t, "sec/op", "Store/redis/ping"); !math.IsNaN(ping) {
		fmt.Fprintf(w, "One Redis round trip on this machine (a go-redis PING, `Store/redis/ping`) costs %s. "+
			"Round trips alone put a floor under the Redis ratios, even if this library and its Lua scripts "+
			"took no time at all: read-only 1 × %s / scs %s = %s; modifying 2 × %s / scs %s = %s.\n",
			mdfmt.US(ping), mdfmt.US(ping), mdfmt.US(val(t, "sec/op", req("scs-redis", "read"))), mdfmt.Ratio(ping, val(t, "sec/op", req("scs-redis", "read"))),
			mdfmt.US(ping), mdfmt.US(val(t, "sec/op", req("scs-redis", "modify"))), mdfmt.Ratio(2*ping, val(t, "sec/op", req("scs-redis", "modify"))))
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "### RunParallel vs serial throughput")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Serial ns/op divided by parallel ns/op (GOMAXPROCS goroutines); the ceiling is CPU-only work sharing nothing.")
	fmt.Fprintln(w, "\"Cores\" is the process's CPU time over the elapsed time, the garbage collector's included: a serial")
	fmt.Fprintln(w, "run that allocates keeps the second core partly busy with the collector's work. \"CPU per op\" is")
	fmt.Fprintln(w, "ns/op times cores; \"parallel CPU / serial CPU\" near 1 means an operation costs as much CPU in")
	fmt.Fprintln(w, "parallel as alone, so the gain is bounded by how much of the second core the serial run used.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | serial | parallel | gain | cores (serial; parallel) | CPU per op (serial; parallel) | parallel CPU / serial CPU |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, name := range []string{"Store/ceiling", "Store/memory/get", "Store/memory/set", "Store/memory/touch",
		"RequestParallel/sessions-memory/read", "RequestParallel/sessions-memory/modify",
		"RequestParallel/scs-memstore/read", "RequestParallel/scs-memstore/modify"} {
		s, p := val(t, "sec/op", name+"/serial"), val(t, "sec/op", name+"/parallel")
		cs, cp := val(t, "cores", name+"/serial"), val(t, "cores", name+"/parallel")
		cores, cpu := "n/a", "n/a"
		if !math.IsNaN(cs) && !math.IsNaN(cp) {
			cores = fmt.Sprintf("%.2f; %.2f", cs, cp)
			cpu = fmt.Sprintf("%.0f ns; %.0f ns", s*cs*1e9, p*cp*1e9)
		}
		fmt.Fprintf(w, "| %s | %.0f ns | %.0f ns | %s | %s | %s | %s |\n", name, s*1e9, p*1e9, mdfmt.Ratio(s, p), cores, cpu, mdfmt.Ratio(p*cp, s*cs))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### 1,000,000 small sessions in the memory store")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- %.0f bytes per session (heap growth after GC / 1,000,000: 43-byte key, the %s-byte stored value, map slot)\n",
		val(t, "B/session", "MillionSessions"), "~100")
	fmt.Fprintf(w, "- one sweep removing %s expired of 1,000,000: %.1f ms, %.2f ms per shard on average (64 shards, one at a time; deletes by compare-and-swap, no lock)\n",
		mdfmt.Num(val(t, "removed/sweep", "MillionSessions")), sweep*1e3, val(t, "sec/shard", "MillionSessions")*1e3)
	fmt.Fprintf(w, "- longest wait of a Get on another goroutine during the sweep: %.2f ms\n", maxGet*1e3)
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Codecs, small value (round trip: Marshal + Unmarshal)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| codec | small round trip | allocs | bytes | large round trip | allocs | bytes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, c := range []string{"msgpack", "gob", "json"} {
		s, l := "Codec/"+c+"/small/roundtrip", "Codec/"+c+"/large/roundtrip"
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", c,
			mdfmt.US(val(t, "sec/op", s)), mdfmt.Num(val(t, "allocs/op", s)), mdfmt.Num(val(t, "bytes", s)),
			mdfmt.US(val(t, "sec/op", l)), mdfmt.Num(val(t, "allocs/op", l)), mdfmt.Num(val(t, "bytes", l)))
	}
	g, m := val(t, "sec/op", "Codec/gob/small/roundtrip"), val(t, "sec/op", "Codec/msgpack/small/roundtrip")
	fmt.Fprintf(w, "\ngob / msgpack, small round trip: %s.\n", mdfmt.Ratio(g, m))
}
