package samples

import (
	"math"
	"strings"
	"testing"
)

func TestUTest(t *testing.T) {
	for _, c := range []struct {
		x, y []float64
		want float64
	}{
		// Fully apart: 2 of the C(12,6) = 924 orderings are as extreme.
		{[]float64{1, 2, 3, 4, 5, 6}, []float64{7, 8, 9, 10, 11, 12}, 2.0 / 924},
		{[]float64{7, 8, 9, 10, 11, 12}, []float64{1, 2, 3, 4, 5, 6}, 2.0 / 924},
		// Interleaved: U = 15 of 36, p = 0.6991 (R's wilcox.test).
		{[]float64{1, 3, 5, 7, 9, 11}, []float64{2, 4, 6, 8, 10, 12}, 0.6991},
		{[]float64{1, 2, 3}, []float64{4, 5, 6}, 0.1},
	} {
		if got := UTest(c.x, c.y); math.Abs(got-c.want) > 1e-3 {
			t.Errorf("UTest(%v, %v) = %.4f, want %.4f", c.x, c.y, got, c.want)
		}
	}
	if !math.IsNaN(UTest(nil, []float64{1})) {
		t.Error("UTest of an empty sample is not NaN")
	}
}

func TestReadSamples(t *testing.T) {
	s, err := Read(strings.NewReader(`goos: linux
BenchmarkSQLiteRequest/sessions-sqlite/read-2   	   54283	     24563 ns/op	         1.000 stmts/op	    4457 B/op	      69 allocs/op
BenchmarkSQLiteRequest/sessions-sqlite/read-2   	   50000	     30000 ns/op	         1.000 stmts/op	    4457 B/op	      69 allocs/op
BenchmarkSQLiteCleanup/sessions-2 	       1	12000000000 ns/op	        42.50 max-request-ms	      3000 requests	         0 failed
PASS
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Median("SQLiteRequest/sessions-sqlite/read", "sec/op"); math.Abs(got-27281.5e-9) > 1e-12 {
		t.Errorf("median = %v", got)
	}
	if got := s.Max("SQLiteCleanup/sessions", "max-request-ms"); got != 42.5 {
		t.Errorf("max-request-ms = %v", got)
	}
	if got := s.Runs("SQLiteRequest/sessions-sqlite/read"); got != 2 {
		t.Errorf("runs = %d", got)
	}
}
