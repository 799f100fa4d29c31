// Command sqlratios reads the results of the SQLite and MySQL benchmarks
// (bench/run-sql.sh): benchstat's CSV, for the confidence intervals, and
// the raw `go test -bench` output, for the samples. It prints, in Markdown,
// this library's requests against scs's sqlite3store and mysqlstore, the
// cleanups of 1,000,000 expired rows, and whether each target of issue 19
// is met:
//
//   - a read-only request takes at most 0.6x of scs's time (medians);
//   - a modifying request is no slower than scs's: a median ratio of at
//     most 1.0, or above it by no more than noise (samples.NoSlower);
//   - the cleanup of 1,000,000 expired rows makes no concurrent request
//     wait more than 100 ms (the worst of all runs, not the median) and
//     makes none fail.
//
// Usage:
//
//	go run ./cmd/sqlratios results-sql.csv results-sql.txt
package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/sessionx/sessions/bench/internal/benchcsv"
	"github.com/sessionx/sessions/bench/internal/mdfmt"
	"github.com/sessionx/sessions/bench/internal/samples"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sqlratios benchstat.csv results.txt")
		os.Exit(2)
	}
	t, err := benchcsv.Read(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlratios:", err)
		os.Exit(1)
	}
	s, err := samples.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlratios:", err)
		os.Exit(1)
	}
	report(os.Stdout, t, s)
}

func withCI(t *benchcsv.Table, s samples.Samples, name string) string {
	v := s.Median(name, "sec/op")
	if ci := t.CI("sec/op", name); ci != "" && !math.IsNaN(v) {
		return mdfmt.US(v) + " ± " + ci
	}
	return mdfmt.US(v)
}

// store is one database the benchmarks ran on.
type store struct {
	title   string // "SQLite"
	bench   string // benchmark name prefix: "SQLite" for SQLiteRequest, SQLiteCleanup
	ours    string // "sessions-sqlite"
	scs     string // "scs-sqlite3store"
	scsName string // "sqlite3store"
}

var stores = []store{
	{"SQLite", "SQLite", "sessions-sqlite", "scs-sqlite3store", "sqlite3store"},
	{"MariaDB", "MySQL", "sessions-mysql", "scs-mysqlstore", "mysqlstore"},
}

func report(w io.Writer, t *benchcsv.Table, s samples.Samples) {
	for _, st := range stores {
		req := func(lib, op string) string { return st.bench + "Request/" + lib + "/" + op }
		fmt.Fprintf(w, "### Whole requests on %s, one existing session\n\n", st.title)
		fmt.Fprintf(w, "Medians of %d runs; \"vs scs\" divides by scs v2 on %s; \"logged\": the bytes the database wrote to its log per request (InnoDB's redo log; not measured on SQLite).\n\n", s.Runs(req(st.scs, "read")), st.scsName)
		fmt.Fprintln(w, "| library, store | read-only | vs scs | allocs | statements | logged | modifying | vs scs | allocs | statements | logged |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range []struct{ name, label string }{
			{st.ours, "sessions, " + st.title},
			{st.ours + "-touchevery", "sessions, " + st.title + ", refresh every request"},
			{st.scs, "scs v2, " + st.scsName},
		} {
			cells := []string{r.label}
			for _, op := range []string{"read", "modify"} {
				me, them := s.Median(req(r.name, op), "sec/op"), s.Median(req(st.scs, op), "sec/op")
				cells = append(cells, withCI(t, s, req(r.name, op)), mdfmt.Ratio(me, them),
					mdfmt.Num(s.Median(req(r.name, op), "allocs/op")), mdfmt.Num(s.Median(req(r.name, op), "stmts/op")), mdfmt.Bytes(s.Median(req(r.name, op), "log-B/op")))
			}
			fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "### Cleanup of 1,000,000 expired rows, requests served meanwhile")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Cleanup time, 99th percentile and requests served: medians; longest concurrent request: the worst run,")
	fmt.Fprintln(w, "then the median; requests over 100 ms and failed requests: all runs together.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| store | library | runs | cleanup | longest concurrent request: worst (median) | p99 | requests served meanwhile | over 100 ms | failed |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, st := range stores {
		for _, r := range []struct{ name, label string }{
			{"sessions", "sessions: batches of 1,000 rows"},
			{"sessions-touchevery", "sessions, every request sliding the deadline (writing)"},
			{"scs", "scs v2, " + st.scsName + ": one DELETE"},
			{"none", "control: sessions' requests alone, no cleanup"},
			{"none-touchevery", "control: sessions' requests that write, alone, no cleanup"},
		} {
			name := st.bench + "Cleanup/" + r.name
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s ms (%s ms) | %s ms | %s | %s | %s |\n", st.title, r.label, s.Runs(name),
				mdfmt.Secs(s.Median(name, "sec/op")), mdfmt.Num(s.Max(name, "max-request-ms")), mdfmt.Num(s.Median(name, "max-request-ms")),
				mdfmt.Num(s.Median(name, "p99-request-ms")), mdfmt.Num(s.Median(name, "requests")),
				mdfmt.Num(s.Sum(name, "slow-requests")), mdfmt.Num(s.Sum(name, "failed")))
		}
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### SQLite and MariaDB targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| store | target | measured | limit | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, st := range stores {
		req := func(lib, op string) string { return st.bench + "Request/" + lib + "/" + op }
		me, them := s.Median(req(st.ours, "read"), "sec/op"), s.Median(req(st.scs, "read"), "sec/op")
		r := me / them
		fmt.Fprintf(w, "| %s | read-only request: time vs scs %s | %s (%s vs %s) | ≤ 0.6x | %s |\n",
			st.title, st.scsName, mdfmt.Ratio(me, them), mdfmt.US(me), mdfmt.US(them), mdfmt.Verdict(r <= 0.6, r))

		me, them = s.Median(req(st.ours, "modify"), "sec/op"), s.Median(req(st.scs, "modify"), "sec/op")
		_, v := samples.NoSlower(s[req(st.ours, "modify")]["sec/op"], s[req(st.scs, "modify")]["sec/op"])
		fmt.Fprintf(w, "| %s | modifying request: time vs scs %s | %s (%s vs %s) | ≤ 1.0x | %s |\n",
			st.title, st.scsName, mdfmt.Ratio(me, them), mdfmt.US(me), mdfmt.US(them), v)

		if l, lt := s.Median(req(st.ours, "modify"), "log-B/op"), s.Median(req(st.scs, "modify"), "log-B/op"); !math.IsNaN(l) {
			fmt.Fprintf(w, "| %s | modifying request: bytes the database logged (redo) vs scs %s | %s (%s B vs %s B) | reported | |\n",
				st.title, st.scsName, mdfmt.Ratio(l, lt), mdfmt.Num(l), mdfmt.Num(lt))
		}

		for _, k := range []struct{ name, control, label string }{
			{"sessions", "none", "read-only requests"},
			{"sessions-touchevery", "none-touchevery", "requests that write (each slides the deadline)"},
		} {
			clean := st.bench + "Cleanup/" + k.name
			c := s.Max(st.bench+"Cleanup/"+k.control, "max-request-ms")
			m := s.Max(clean, "max-request-ms")
			v := mdfmt.Verdict(m <= 100, m)
			if m > 100 && c > 100 {
				v = "**inconclusive**: the machine alone made a request wait " + mdfmt.Num(c) + " ms"
			}
			fmt.Fprintf(w, "| %s | cleanup of 1,000,000 expired rows, %s: longest concurrent request (worst of %d run(s)) | %s ms (%s over 100 ms; cleanup %s; with no cleanup: %s ms) | ≤ 100 ms | %s |\n",
				st.title, k.label, s.Runs(clean), mdfmt.Num(m), mdfmt.Num(s.Sum(clean, "slow-requests")), mdfmt.Secs(s.Median(clean, "sec/op")), mdfmt.Num(c), v)
			failed := s.Sum(clean, "failed")
			fmt.Fprintf(w, "| %s | cleanup of 1,000,000 expired rows, %s: failed concurrent requests (all runs) | %s (scs: %s) | 0 | %s |\n",
				st.title, k.label, mdfmt.Num(failed), mdfmt.Num(s.Sum(st.bench+"Cleanup/scs", "failed")), mdfmt.Verdict(failed == 0, failed))
		}
	}
}
