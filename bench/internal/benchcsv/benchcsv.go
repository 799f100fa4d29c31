// Package benchcsv reads the CSV output of benchstat (-format csv) for the
// bench commands: the center (median) of every benchmark for every unit.
package benchcsv

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Table holds, for every unit benchstat reported (for example "sec/op",
// "allocs/op", "rtt/op"), the median of every benchmark, keyed by the
// benchmark name without its "Benchmark" prefix and "-GOMAXPROCS" suffix
// ("Request/scs-memstore/read").
type Table struct {
	values map[string]map[string]float64
	cis    map[string]map[string]string
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// Read parses benchstat's CSV output for a single input file.
func Read(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	t := &Table{values: map[string]map[string]float64{}, cis: map[string]map[string]string{}}
	unit := ""
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) < 2 {
			continue
		}
		switch {
		case rec[0] == "" && len(rec) >= 3 && rec[2] == "CI":
			unit = rec[1]
			if t.values[unit] == nil {
				t.values[unit] = map[string]float64{}
				t.cis[unit] = map[string]string{}
			}
			continue
		case rec[0] == "", rec[0] == "geomean", unit == "":
			continue
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(strings.TrimPrefix(rec[0], "Benchmark"), "")
		t.values[unit][name] = v
		if len(rec) >= 3 {
			t.cis[unit][name] = rec[2]
		}
	}
	if len(t.values) == 0 {
		return nil, fmt.Errorf("%s: no benchstat tables found", path)
	}
	return t, nil
}

// Get returns the median of benchmark name in unit, and whether there is one.
func (t *Table) Get(unit, name string) (float64, bool) {
	v, ok := t.values[unit][name]
	return v, ok
}

// CI returns benchstat's confidence interval text for name in unit, such
// as "2%" or "∞".
func (t *Table) CI(unit, name string) string {
	return t.cis[unit][name]
}
