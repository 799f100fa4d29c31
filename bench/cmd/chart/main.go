// Command chart draws the whole-request comparison of the bench suite as a
// horizontal bar chart in PNG, from benchstat's CSV output (medians).
//
//	go run ./cmd/chart -o requests.png -note "machine, date" results.csv
//
// It uses only the standard library's image packages and the 7x13 bitmap
// font of golang.org/x/image/font/basicfont, drawn at twice its size.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/sessionx/sessions/bench/internal/benchcsv"
)

// row is one library; versus names the scs benchmark its bars are compared
// with in their labels ("" for none).
type row struct{ lib, label, versus string }

type panel struct {
	title string
	rows  []row
	rtt   bool // mark one and two Redis round trips (Store/redis/ping)
}

var panels = []panel{
	{"In-process stores (and gorilla's cookie and file stores)", []row{
		{"sessions-memory", "sessions, memory", "scs-memstore"},
		{"scs-memstore", "scs v2, memstore", ""},
		{"gorilla-cookie", "gorilla, cookie", ""},
		{"gorilla-fs", "gorilla, files", ""},
		{"baseline", "harness, no sessions", ""},
	}, false},
	{"Redis (one local redis-server; dashed: 1 and 2 round trips, a PING each)", []row{
		{"sessions-redis", "sessions, Redis", "scs-redis"},
		{"sessions-redis-touchevery", "sessions, Redis, slide each req.", "scs-redis"},
		{"scs-redis", "scs v2, goredisstore", ""},
		{"scs-redigo", "scs v2, redisstore (redigo)", ""},
	}, true},
}

var (
	white    = color.RGBA{255, 255, 255, 255}
	black    = color.RGBA{20, 20, 20, 255}
	grey     = color.RGBA{120, 120, 120, 255}
	gridGrey = color.RGBA{225, 225, 225, 255}
	readCol  = color.RGBA{52, 101, 164, 255}
	modCol   = color.RGBA{230, 126, 34, 255}
)

const (
	width    = 1400
	scale    = 2 // text is basicfont 7x13 drawn at twice its size
	charW    = 7 * scale
	lineH    = 13 * scale
	margin   = 24
	labelW   = 33 * charW // room for the longest label
	barH     = 24
	rowGap   = 18
	valueW   = 24 * charW // room for the value after the longest bar
	panelGap = 30
)

func main() {
	out := flag.String("o", "requests.png", "output PNG file")
	note := flag.String("note", "", "footnote: machine, Go version, date")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: chart [-o file.png] [-note text] benchstat.csv")
		os.Exit(2)
	}
	t, err := benchcsv.Read(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}

	height := margin + 2*lineH + 10 + lineH + 10 // title, subtitle, legend
	for _, p := range panels {
		height += panelGap + lineH + 8 + len(p.rows)*(2*barH+rowGap) + lineH + 8
	}
	height += lineH + margin
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)

	y := margin
	text(img, margin, y, "Whole request with an existing session: median time per request", black)
	y += lineH
	text(img, margin, y, "(lower is better; benchstat medians; one request = httptest, middleware, handler)", grey)
	y += lineH + 10
	fill(img, margin, y+4, 18, 18, readCol)
	text(img, margin+26, y, "read-only request", black)
	fill(img, margin+26+19*charW, y+4, 18, 18, modCol)
	text(img, margin+26+19*charW+26, y, "modifying request (counter += 1)", black)
	y += lineH + 10

	for _, p := range panels {
		y += panelGap
		text(img, margin, y, p.title, black)
		y += lineH + 8
		maxV := 0.0
		for _, r := range p.rows {
			for _, op := range []string{"read", "modify"} {
				if v, ok := t.Get("sec/op", "Request/"+r.lib+"/"+op); ok {
					maxV = math.Max(maxV, v)
				}
			}
		}
		x0 := margin + labelW
		plotW := width - margin - valueW - x0
		step := niceStep(maxV * 1e6 / 5)
		top := y
		bottom := y + len(p.rows)*(2*barH+rowGap)
		for tick := 0.0; tick <= maxV*1e6+1e-9; tick += step {
			x := x0 + int(float64(plotW)*tick/(maxV*1e6))
			fill(img, x, top, 1, bottom-top, gridGrey)
			lbl := fmt.Sprintf("%g us", tick)
			text(img, x-len([]rune(lbl))*charW/2, bottom+4, lbl, grey)
		}
		if ping, ok := t.Get("sec/op", "Store/redis/ping"); ok && p.rtt {
			for n := 1.0; n <= 2; n++ {
				x := x0 + int(float64(plotW)*n*ping/maxV)
				for dy := top; dy < bottom; dy += 8 {
					fill(img, x, dy, 2, 4, grey)
				}
			}
		}
		for _, r := range p.rows {
			text(img, margin, y+barH-lineH/2, r.label, black)
			for i, op := range []string{"read", "modify"} {
				by := y + i*barH
				v, ok := t.Get("sec/op", "Request/"+r.lib+"/"+op)
				if !ok {
					text(img, x0+4, by, "not measured", grey)
					continue
				}
				c := readCol
				if op == "modify" {
					c = modCol
				}
				w := int(math.Round(float64(plotW) * v / maxV))
				fill(img, x0, by+2, max(w, 2), barH-4, c)
				lbl := formatUS(v)
				if vs, ok := t.Get("sec/op", "Request/"+r.versus+"/"+op); ok && r.versus != "" {
					lbl += fmt.Sprintf("  (%.2fx scs)", v/vs)
				}
				lx, ly := x0+max(w, 2)+6, by+(barH-lineH)/2
				fill(img, lx-2, ly, len([]rune(lbl))*charW+4, lineH, white) // over the dashes
				text(img, lx, ly, lbl, black)
			}
			y += 2*barH + rowGap
		}
		fill(img, x0, top, 1, bottom-top, grey)
		y = bottom + lineH + 8
	}
	if *note != "" {
		text(img, margin, height-margin-lineH, *note, grey)
	}

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	if err := png.Encode(f, img); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func formatUS(sec float64) string {
	us := sec * 1e6
	if us < 10 {
		return fmt.Sprintf("%.1f us", us)
	}
	return fmt.Sprintf("%.0f us", us)
}

// niceStep returns 1, 2 or 5 times a power of ten, at least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, x, y, w, h int, c color.Color) {
	draw.Draw(img, image.Rect(x, y, x+w, y+h), image.NewUniform(c), image.Point{}, draw.Src)
}

// text draws s with its top-left corner at (x, y), basicfont scaled by
// scale (nearest neighbour).
func text(dst *image.RGBA, x, y int, s string, c color.Color) {
	face := basicfont.Face7x13
	n := len([]rune(s))
	small := image.NewAlpha(image.Rect(0, 0, n*7, 13))
	d := font.Drawer{Dst: small, Src: image.Opaque, Face: face, Dot: fixed.P(0, face.Ascent)}
	d.DrawString(s)
	src := image.NewUniform(c)
	for sy := 0; sy < 13; sy++ {
		for sx := 0; sx < n*7; sx++ {
			if small.AlphaAt(sx, sy).A == 0 {
				continue
			}
			r := image.Rect(x+sx*scale, y+sy*scale, x+(sx+1)*scale, y+(sy+1)*scale)
			draw.Draw(dst, r, src, image.Point{}, draw.Over)
		}
	}
}
