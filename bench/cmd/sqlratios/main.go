// Command sqlratios reads the results of the SQLite and MySQL benchmarks
// (bench/run-sql.sh): benchstat's CSV, for the confidence intervals, and
// the raw `go test -bench` output, for the samples. It prints, in Markdown,
// this library's requests against scs's sqlite3store and mysqlstore, the
// cleanups of 1,000,000 expired rows, and whether each target of issue 19
// is met:
//
//   - a read-only request takes at most 0.6x of scs's time (medians);
//   - a modifying request is no slower than scs's: a median ratio of at
//     most 1.0, or above it by no more than noise (a two-sided
//     Mann-Whitney U test of the two samples, as benchstat runs, at
//     p < 0.05 tells a real difference);
//   - the cleanup of 1,000,000 expired rows makes no concurrent request
//     wait more than 100 ms (the worst of all runs, not the median) and
//     makes none fail.
//
// Usage:
//
//	go run ./cmd/sqlratios results-sql.csv results-sql.txt
package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sessionx/sessions/bench/internal/benchcsv"
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
	f, err := os.Open(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlratios:", err)
		os.Exit(1)
	}
	defer f.Close()
	s, err := readSamples(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlratios:", err)
		os.Exit(1)
	}
	report(os.Stdout, t, s)
}

// samples holds, for every benchmark (named as benchcsv names them:
// "SQLiteRequest/scs-sqlite3store/read") and unit, the values of every run,
// in sec/op for ns/op.
type samples map[string]map[string][]float64

var procsSuffix = regexp.MustCompile(`-\d+$`)

// readSamples parses the benchmark lines of `go test -bench` output.
func readSamples(r io.Reader) (samples, error) {
	s := samples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			unit := f[i+1]
			if unit == "ns/op" {
				unit, v = "sec/op", v/1e9
			}
			if s[name] == nil {
				s[name] = map[string][]float64{}
			}
			s[name][unit] = append(s[name][unit], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("no benchmark results found")
	}
	return s, nil
}

func (s samples) median(name, unit string) float64 {
	v := slices.Clone(s[name][unit])
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (s samples) max(name, unit string) float64 {
	v := s[name][unit]
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Max(v)
}

func (s samples) sum(name, unit string) float64 {
	v := s[name][unit]
	if len(v) == 0 {
		return math.NaN()
	}
	var t float64
	for _, x := range v {
		t += x
	}
	return t
}

func (s samples) runs(name string) int { return len(s[name]["sec/op"]) }

// uTest returns the two-sided p-value of the Mann-Whitney U test of x and
// y: exact (without ties) for samples of up to 25 values each, the normal
// approximation with a continuity correction otherwise; NaN for an empty
// sample.
func uTest(x, y []float64) float64 {
	n, m := len(x), len(y)
	if n == 0 || m == 0 {
		return math.NaN()
	}
	// U counts the pairs in which x's value is above y's (a tie counts half).
	var u float64
	for _, a := range x {
		for _, b := range y {
			switch {
			case a > b:
				u++
			case a == b:
				u += 0.5
			}
		}
	}
	if n <= 25 && m <= 25 {
		// counts[k] is the number of orderings of n+m distinct values
		// whose U is k, built by the recurrence on the largest value.
		counts := uCounts(n, m)
		var total, below, above float64
		for k, c := range counts {
			total += c
			if float64(k) <= u {
				below += c
			}
			if float64(k) >= u {
				above += c
			}
		}
		return math.Min(1, 2*math.Min(below, above)/total)
	}
	mu := float64(n*m) / 2
	sigma := math.Sqrt(float64(n*m*(n+m+1)) / 12)
	z := (math.Abs(u-mu) - 0.5) / sigma
	return math.Min(1, math.Erfc(z/math.Sqrt2))
}

// uCounts returns how many arrangements of n x-values and m y-values give
// each U from 0 to n*m.
func uCounts(n, m int) []float64 {
	// f[i][j][k]: arrangements of i x's and j y's with U = k.
	memo := map[[3]int]float64{}
	var f func(i, j, k int) float64
	f = func(i, j, k int) float64 {
		if k < 0 || k > i*j {
			return 0
		}
		if i == 0 || j == 0 {
			if k == 0 {
				return 1
			}
			return 0
		}
		key := [3]int{i, j, k}
		if v, ok := memo[key]; ok {
			return v
		}
		// The largest value is an x (above all j y's) or a y.
		v := f(i-1, j, k-j) + f(i, j-1, k)
		memo[key] = v
		return v
	}
	out := make([]float64, n*m+1)
	for k := range out {
		out[k] = f(n, m, k)
	}
	return out
}

func us(sec float64) string {
	if math.IsNaN(sec) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f µs", sec*1e6)
}

func secs(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f s", v)
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func withCI(t *benchcsv.Table, s samples, name string) string {
	v := s.median(name, "sec/op")
	if ci := t.CI("sec/op", name); ci != "" && !math.IsNaN(v) {
		return us(v) + " ± " + ci
	}
	return us(v)
}

func verdict(ok bool, measured float64) string {
	switch {
	case math.IsNaN(measured):
		return "not measured"
	case ok:
		return "**met**"
	}
	return "**MISSED**"
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

func report(w io.Writer, t *benchcsv.Table, s samples) {
	for _, st := range stores {
		req := func(lib, op string) string { return st.bench + "Request/" + lib + "/" + op }
		fmt.Fprintf(w, "### Whole requests on %s, one existing session\n\n", st.title)
		fmt.Fprintf(w, "Medians of %d runs; \"vs scs\" divides by scs v2 on %s.\n\n", s.runs(req(st.scs, "read")), st.scsName)
		fmt.Fprintln(w, "| library, store | read-only | vs scs | allocs | statements | modifying | vs scs | allocs | statements |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
		for _, r := range []struct{ name, label string }{
			{st.ours, "sessions, " + st.title},
			{st.ours + "-touchevery", "sessions, " + st.title + ", refresh every request"},
			{st.scs, "scs v2, " + st.scsName},
		} {
			cells := []string{r.label}
			for _, op := range []string{"read", "modify"} {
				me, them := s.median(req(r.name, op), "sec/op"), s.median(req(st.scs, op), "sec/op")
				cells = append(cells, withCI(t, s, req(r.name, op)), ratio(me, them),
					num(s.median(req(r.name, op), "allocs/op")), num(s.median(req(r.name, op), "stmts/op")))
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
			{"none", "control: sessions' requests alone, no cleanup (10 s)"},
		} {
			name := st.bench + "Cleanup/" + r.name
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s ms (%s ms) | %s ms | %s | %s | %s |\n", st.title, r.label, s.runs(name),
				secs(s.median(name, "sec/op")), num(s.max(name, "max-request-ms")), num(s.median(name, "max-request-ms")),
				num(s.median(name, "p99-request-ms")), num(s.median(name, "requests")),
				num(s.sum(name, "slow-requests")), num(s.sum(name, "failed")))
		}
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### SQLite and MariaDB targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| store | target | measured | limit | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, st := range stores {
		req := func(lib, op string) string { return st.bench + "Request/" + lib + "/" + op }
		me, them := s.median(req(st.ours, "read"), "sec/op"), s.median(req(st.scs, "read"), "sec/op")
		r := me / them
		fmt.Fprintf(w, "| %s | read-only request: time vs scs %s | %s (%s vs %s) | ≤ 0.6x | %s |\n",
			st.title, st.scsName, ratio(me, them), us(me), us(them), verdict(r <= 0.6, r))

		me, them = s.median(req(st.ours, "modify"), "sec/op"), s.median(req(st.scs, "modify"), "sec/op")
		r = me / them
		p := uTest(s[req(st.ours, "modify")]["sec/op"], s[req(st.scs, "modify")]["sec/op"])
		v := verdict(r <= 1.0, r)
		switch {
		case math.IsNaN(r):
		case r > 1.0 && p >= 0.05:
			v = fmt.Sprintf("**met within noise** (%.0f%% slower, not significant: p = %.2f)", (r-1)*100, p)
		case r > 1.0:
			v = fmt.Sprintf("**MISSED** (%.0f%% slower, p = %.3f)", (r-1)*100, p)
		}
		fmt.Fprintf(w, "| %s | modifying request: time vs scs %s | %s (%s vs %s) | ≤ 1.0x | %s |\n",
			st.title, st.scsName, ratio(me, them), us(me), us(them), v)

		none := st.bench + "Cleanup/none"
		c := s.max(none, "max-request-ms")
		for _, k := range []struct{ name, label string }{
			{"sessions", "read-only requests"},
			{"sessions-touchevery", "requests that write (each slides the deadline)"},
		} {
			clean := st.bench + "Cleanup/" + k.name
			m := s.max(clean, "max-request-ms")
			v := verdict(m <= 100, m)
			if m > 100 && c > 100 {
				v = "**inconclusive**: the machine alone made a request wait " + num(c) + " ms"
			}
			fmt.Fprintf(w, "| %s | cleanup of 1,000,000 expired rows, %s: longest concurrent request (worst of %d run(s)) | %s ms (%s over 100 ms; cleanup %s; with no cleanup: %s ms) | ≤ 100 ms | %s |\n",
				st.title, k.label, s.runs(clean), num(m), num(s.sum(clean, "slow-requests")), secs(s.median(clean, "sec/op")), num(c), v)
			failed := s.sum(clean, "failed")
			fmt.Fprintf(w, "| %s | cleanup of 1,000,000 expired rows, %s: failed concurrent requests (all runs) | %s (scs: %s) | 0 | %s |\n",
				st.title, k.label, num(failed), num(s.sum(st.bench+"Cleanup/scs", "failed")), verdict(failed == 0, failed))
		}
	}
}
