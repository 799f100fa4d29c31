// Package mdfmt formats benchmark figures for the Markdown tables the
// commands of bench/cmd write into RESULTS.md. Every function returns "n/a"
// for a value that was not measured (NaN).
package mdfmt

import (
	"fmt"
	"math"
)

// US formats seconds as microseconds: "12.3 µs".
func US(sec float64) string {
	if math.IsNaN(sec) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f µs", sec*1e6)
}

// Secs formats seconds: "1.23 s".
func Secs(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f s", v)
}

// Num formats a count: whole numbers without decimals, others with two.
func Num(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Bytes formats a byte count: "301 B".
func Bytes(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f B", v)
}

// Ratio formats a/b: "0.97x"; "n/a" also when b is 0.
func Ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// Verdict is a target's verdict: "**met**" when ok, "**MISSED**" when not,
// "not measured" when measured is NaN.
func Verdict(ok bool, measured float64) string {
	switch {
	case math.IsNaN(measured):
		return "not measured"
	case ok:
		return "**met**"
	}
	return "**MISSED**"
}
