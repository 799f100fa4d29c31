// Command pgratios reads the CSV output of benchstat for the PostgreSQL
// benchmarks (bench/run-postgres.sh), and their raw `go test -bench` output,
// and prints, in Markdown, this library's requests against scs's pgxstore,
// the cleanup of 1,000,000 expired rows, and whether each target is met. It
// uses benchstat's medians; a modifying request is judged no slower than
// scs's as samples.NoSlower says, on the raw samples.
//
//	go run ./cmd/pgratios results-postgres.csv results-postgres.txt
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
		fmt.Fprintln(os.Stderr, "usage: pgratios benchstat.csv results.txt")
		os.Exit(2)
	}
	t, err := benchcsv.Read(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgratios:", err)
		os.Exit(1)
	}
	s, err := samples.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgratios:", err)
		os.Exit(1)
	}
	report(os.Stdout, t, s)
}

// val returns the median of name in unit, or NaN.
func val(t *benchcsv.Table, unit, name string) float64 {
	if v, ok := t.Get(unit, name); ok {
		return v
	}
	return math.NaN()
}

func withCI(t *benchcsv.Table, name string) string {
	v := val(t, "sec/op", name)
	if ci := t.CI("sec/op", name); ci != "" && !math.IsNaN(v) {
		return mdfmt.US(v) + " ± " + ci
	}
	return mdfmt.US(v)
}

func report(w io.Writer, t *benchcsv.Table, s samples.Samples) {
	req := func(lib, op string) string { return "Request/" + lib + "/" + op }
	fmt.Fprintln(w, "### Whole requests on PostgreSQL, one existing session")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians of benchstat; \"vs scs\" divides by scs v2 on pgxstore; \"WAL\": the bytes the server wrote to its write-ahead log per request.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| library, store | read-only | vs scs | allocs | statements | WAL | modifying | vs scs | allocs | statements | WAL |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range []struct{ name, label string }{
		{"sessions-postgres", "sessions, PostgreSQL"},
		{"sessions-postgres-touchevery", "sessions, PostgreSQL, refresh every request"},
		{"scs-pgxstore", "scs v2, pgxstore"},
	} {
		cells := []string{r.label}
		for _, op := range []string{"read", "modify"} {
			me, them := val(t, "sec/op", req(r.name, op)), val(t, "sec/op", req("scs-pgxstore", op))
			cells = append(cells, withCI(t, req(r.name, op)), mdfmt.Ratio(me, them),
				mdfmt.Num(val(t, "allocs/op", req(r.name, op))), mdfmt.Num(val(t, "stmts/op", req(r.name, op))), mdfmt.Bytes(s.Median(req(r.name, op), "log-B/op")))
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Cleanup of 1,000,000 expired rows, requests served meanwhile")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| library | cleanup | longest concurrent request | requests served meanwhile |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range []struct{ name, label string }{
		{"sessions", "sessions: batches of 1,000 rows"},
		{"scs", "scs v2, pgxstore: one DELETE"},
		{"none", "control: sessions' requests alone, no cleanup (10 s)"},
	} {
		name := "PostgresCleanup/" + r.name
		fmt.Fprintf(w, "| %s | %.2f s | %s ms | %s |\n", r.label, val(t, "sec/op", name),
			mdfmt.Num(val(t, "max-request-ms", name)), mdfmt.Num(val(t, "requests", name)))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### PostgreSQL targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | limit | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, op := range []struct {
		op, label string
		limit     float64
		stmts     float64
	}{{"read", "read-only", 0.6, 1}, {"modify", "modifying (conditional)", 1.0, 2}} {
		me, them := val(t, "sec/op", req("sessions-postgres", op.op)), val(t, "sec/op", req("scs-pgxstore", op.op))
		r := me / them
		v := mdfmt.Verdict(r <= op.limit, r)
		if op.limit == 1 {
			_, v = samples.NoSlower(s[req("sessions-postgres", op.op)]["sec/op"], s[req("scs-pgxstore", op.op)]["sec/op"])
		}
		fmt.Fprintf(w, "| %s request: time vs scs pgxstore | %s (%s vs %s) | ≤ %.1fx | %s |\n", op.label, mdfmt.Ratio(me, them), mdfmt.US(me), mdfmt.US(them), op.limit, v)
		if l, lt := s.Median(req("sessions-postgres", op.op), "log-B/op"), s.Median(req("scs-pgxstore", op.op), "log-B/op"); !math.IsNaN(l) {
			fmt.Fprintf(w, "| %s request: WAL bytes vs scs pgxstore | %s (%s vs %s) | reported | |\n", op.label, mdfmt.Ratio(l, lt), mdfmt.Bytes(l), mdfmt.Bytes(lt))
		}
		n := val(t, "stmts/op", req("sessions-postgres", op.op))
		fmt.Fprintf(w, "| %s request: statements | %s (scs: %s) | %s | %s |\n", op.label, mdfmt.Num(n), mdfmt.Num(val(t, "stmts/op", req("scs-pgxstore", op.op))), mdfmt.Num(op.stmts), mdfmt.Verdict(n <= op.stmts, n))
	}
	m, c := val(t, "max-request-ms", "PostgresCleanup/sessions"), val(t, "max-request-ms", "PostgresCleanup/none")
	v := mdfmt.Verdict(m <= 100, m)
	if m > 100 && c > 100 {
		v = "**inconclusive**: the machine alone made a request wait " + mdfmt.Num(c) + " ms"
	}
	fmt.Fprintf(w, "| cleanup of 1,000,000 expired rows: longest concurrent request | %s ms (cleanup %.2f s; with no cleanup: %s ms) | ≤ 100 ms | %s |\n",
		mdfmt.Num(m), val(t, "sec/op", "PostgresCleanup/sessions"), mdfmt.Num(c), v)
}
