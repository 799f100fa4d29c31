// Package samples reads the raw output of `go test -bench` (every run's
// line, not benchstat's summary) and tests two samples for a difference, for
// the commands that write bench/RESULTS.md.
package samples

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
)

// Samples holds, for every benchmark (named as benchcsv names them:
// "SQLiteRequest/scs-sqlite3store/read") and unit, the values of every run,
// in sec/op for ns/op.
type Samples map[string]map[string][]float64

var procsSuffix = regexp.MustCompile(`-\d+$`)

// Read parses the benchmark lines of `go test -bench` output.
func Read(r io.Reader) (Samples, error) {
	s := Samples{}
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

// ReadFile is Read of the file at path.
func ReadFile(path string) (Samples, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Median returns the median of name's values in unit, or NaN.
func (s Samples) Median(name, unit string) float64 { return median(s[name][unit]) }

// median returns the median of v, or NaN when it is empty.
func median(v []float64) float64 {
	v = slices.Clone(v)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Max returns the largest of name's values in unit, or NaN.
func (s Samples) Max(name, unit string) float64 {
	v := s[name][unit]
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Max(v)
}

// Sum returns the sum of name's values in unit, or NaN.
func (s Samples) Sum(name, unit string) float64 {
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

// Runs returns how many runs of name have a sec/op value.
func (s Samples) Runs(name string) int { return len(s[name]["sec/op"]) }

// UTest returns the two-sided p-value of the Mann-Whitney U test of x and
// y: exact (without ties) for samples of up to 25 values each, the normal
// approximation with a continuity correction otherwise; NaN for an empty
// sample.
func UTest(x, y []float64) float64 {
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

// NoSlower judges whether the sample x (this library's times) is no slower
// than y (the competitor's): met when the ratio of their medians is at most
// 1, met within noise when it is above 1 but a two-sided Mann-Whitney U test
// finds no difference at p < 0.05 (as benchstat would print "~"), missed
// otherwise. It returns the ratio and a Markdown verdict.
func NoSlower(x, y []float64) (float64, string) {
	r := median(x) / median(y)
	switch {
	case math.IsNaN(r):
		return r, "not measured"
	case r <= 1:
		return r, "**met**"
	}
	p := UTest(x, y)
	if p >= 0.05 {
		return r, fmt.Sprintf("**met within noise** (%.0f%% slower, not significant: p = %.2f, n = %d and %d)", (r-1)*100, p, len(x), len(y))
	}
	return r, fmt.Sprintf("**MISSED** (%.0f%% slower, p = %.3f)", (r-1)*100, p)
}
