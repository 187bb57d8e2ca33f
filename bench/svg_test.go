package bench

import (
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
)

// Ticks are round (1, 2 or 5 times a power of ten), evenly spaced, cover the values, and are few.
func TestNiceTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ lo, hi float64 }{
		{0, 1}, {0, 97}, {0, 100}, {0, 12345}, {0, 0.0042}, {3, 17}, {-5, 5}, {0.3, 0.30001}, {0, 1e9}, {1e-9, 3e-9},
	} {
		ticks := niceTicks(tc.lo, tc.hi, 5)
		if len(ticks) < 2 || len(ticks) > 8 {
			t.Errorf("[%g, %g]: %d ticks %v", tc.lo, tc.hi, len(ticks), ticks)
			continue
		}
		step := ticks[1] - ticks[0]
		if ticks[0] > tc.lo || ticks[len(ticks)-1] < tc.hi {
			t.Errorf("[%g, %g]: ticks %v do not cover it", tc.lo, tc.hi, ticks)
		}
		mant := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
		if !near(mant, 1) && !near(mant, 2) && !near(mant, 5) {
			t.Errorf("[%g, %g]: step %g is not 1, 2 or 5 times a power of ten", tc.lo, tc.hi, step)
		}
		for i := 1; i < len(ticks); i++ {
			if !near((ticks[i]-ticks[i-1])/step, 1) {
				t.Errorf("[%g, %g]: ticks %v are not evenly spaced", tc.lo, tc.hi, ticks)
				break
			}
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestLinearAxis(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name            string
		lo, hi          float64
		fromZero        bool
		wantLo, wantHi  float64
		wantFirstLabel  string
		wantSecondLabel string
	}{
		{"no values: 0 to 1", inf, -inf, true, 0, 1, "0", "0.2"},
		{"NaN and Inf: 0 to 1", nan, inf, true, 0, 1, "0", "0.2"},
		{"all zero: 0 to 1", 0, 0, true, 0, 1, "0", "0.2"},
		{"one value from zero", 7, 7, true, 0, 8, "0", "2"},
		{"one value around it", 7, 7, false, 2, 12, "2", "4"},
		{"from zero", 12, 97, true, 0, 100, "0", "20"},
		{"not from zero", 32, 97, false, 20, 100, "20", "40"},
		{"fractions", 0, 0.0042, true, 0, 0.005, "0", "0.001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := linearAxis("y", tc.lo, tc.hi, tc.fromZero)
			if a.lo != tc.wantLo || a.hi != tc.wantHi || a.log {
				t.Errorf("axis %g to %g (log %v), want %g to %g", a.lo, a.hi, a.log, tc.wantLo, tc.wantHi)
			}
			if got := [2]string{a.tickLabel(a.ticks[0]), a.tickLabel(a.ticks[1])}; got != [2]string{tc.wantFirstLabel, tc.wantSecondLabel} {
				t.Errorf("first labels %v, want %s, %s", got, tc.wantFirstLabel, tc.wantSecondLabel)
			}
			if a.frac(a.lo) != 0 || a.frac(a.hi) != 1 || a.frac(a.hi*2+1) != 1 || a.frac(a.lo-100) != 0 || a.frac(math.NaN()) != 0 {
				t.Errorf("frac: ends %g, %g; beyond %g, %g; NaN %g", a.frac(a.lo), a.frac(a.hi), a.frac(a.hi*2+1), a.frac(a.lo-100), a.frac(math.NaN()))
			}
		})
	}
}

func TestLogAxis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		lo, hi         float64
		wantLo, wantHi float64
		wantTicks      int
	}{
		{"decades around the values", 0.5, 40, 0.1, 100, 4},
		{"within one decade: 2 and 5 too", 2, 3, 1, 10, 4},
		{"a power of ten alone", 10, 10, 10, 100, 4},
		{"no positive value: 1 to 10", 0, 0, 1, 10, 4},
		{"no values", math.Inf(1), math.Inf(-1), 1, 10, 4},
		{"many decades: powers only", 0.001, 1e5, 0.001, 1e5, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := logAxis("x", tc.lo, tc.hi)
			if !near(a.lo, tc.wantLo) || !near(a.hi, tc.wantHi) || len(a.ticks) != tc.wantTicks || !a.log {
				t.Errorf("axis %g to %g, ticks %v, want %g to %g with %d", a.lo, a.hi, a.ticks, tc.wantLo, tc.wantHi, tc.wantTicks)
			}
			mid := math.Sqrt(a.lo * a.hi)
			if a.frac(a.lo) != 0 || a.frac(a.hi) != 1 || !near(a.frac(mid), 0.5) || a.frac(0) != 0 || a.frac(-1) != 0 {
				t.Errorf("frac: ends %g, %g, geometric middle %g, 0 %g", a.frac(a.lo), a.frac(a.hi), a.frac(mid), a.frac(0))
			}
		})
	}
}

// drawing is a chart's SVG, parsed, with what it draws.
type drawing struct {
	svg               svgElement
	polylines         [][]xy
	circles, rects    []xy // centres; the bars' top-left corners
	rectSizes         []xy
	width, height     float64
	noData            bool
	title, desc, text string
}

// parseChart checks the chart is well-formed XML without NaN or Inf and reads what it draws.
func parseChart(t *testing.T, s string) drawing {
	t.Helper()
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(s, bad) {
			t.Errorf("the chart has %s:\n%s", bad, s)
		}
	}
	var d drawing
	if err := xml.Unmarshal([]byte(s), &d.svg); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, s)
	}
	f := func(e svgElement, name string) float64 {
		v, err := strconv.ParseFloat(e.attr(name), 64)
		if err != nil {
			t.Fatalf("%s %s=%q: %v", e.XMLName.Local, name, e.attr(name), err)
		}
		return v
	}
	vb := strings.Fields(d.svg.attr("viewBox"))
	if len(vb) != 4 {
		t.Fatalf("viewBox %q", d.svg.attr("viewBox"))
	}
	d.width, _ = strconv.ParseFloat(vb[2], 64)
	d.height, _ = strconv.ParseFloat(vb[3], 64)
	d.svg.walk(func(e svgElement) {
		switch e.XMLName.Local {
		case "title":
			d.title = e.Text
		case "desc":
			d.desc = e.Text
		case "text":
			d.text += e.Text + "|"
			d.noData = d.noData || e.attr("class") == "no-data"
		}
		if e.attr("class") != "series" {
			return
		}
		for _, m := range e.Children {
			switch m.XMLName.Local {
			case "polyline":
				var pts []xy
				for _, p := range strings.Fields(m.attr("points")) {
					x, y, _ := strings.Cut(p, ",")
					px, err1 := strconv.ParseFloat(x, 64)
					py, err2 := strconv.ParseFloat(y, 64)
					if err1 != nil || err2 != nil {
						t.Fatalf("point %q", p)
					}
					pts = append(pts, xy{px, py})
				}
				d.polylines = append(d.polylines, pts)
			case "circle":
				d.circles = append(d.circles, xy{f(m, "cx"), f(m, "cy")})
			case "rect":
				d.rects = append(d.rects, xy{f(m, "x"), f(m, "y")})
				d.rectSizes = append(d.rectSizes, xy{f(m, "width"), f(m, "height")})
			}
		}
	})
	return d
}

// inside says every drawn point lies in the plot area of a chart without legend rows.
func (d drawing) inside(legendRows int) bool {
	top := float64(marginTop + legendRows*legendRow)
	in := func(p xy) bool {
		return p.x >= marginLeft && p.x <= chartWidth-marginRight && p.y >= top && p.y <= top+plotHeight
	}
	for _, l := range d.polylines {
		for _, p := range l {
			if !in(p) {
				return false
			}
		}
	}
	for _, p := range append(d.circles, d.rects...) {
		if !in(p) {
			return false
		}
	}
	return true
}

func testChart(x, y axis) svgChart {
	return svgChart{id: "c", title: "A title", desc: "A description", x: x, y: y}
}

func TestLineChart(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	x, y := linearAxis("seconds", 0, 10, true), linearAxis("per second", 0, 100, true)
	t.Run("no series", func(t *testing.T) {
		d := parseChart(t, string(testChart(x, y).lines(nil)))
		if !d.noData || len(d.polylines)+len(d.circles) != 0 {
			t.Errorf("no data %v, %d lines", d.noData, len(d.polylines))
		}
		if d.svg.attr("role") != "img" || d.title != "A title" || d.desc != "A description" || d.svg.attr("aria-labelledby") != "c-title c-desc" {
			t.Errorf("role %q, title %q, desc %q", d.svg.attr("role"), d.title, d.desc)
		}
		if !strings.Contains(d.text, "seconds|") || !strings.Contains(d.text, "per second|") || !strings.Contains(d.text, "100|") {
			t.Errorf("axes' labels and ticks missing: %s", d.text)
		}
	})
	t.Run("an empty series and one of NaN", func(t *testing.T) {
		d := parseChart(t, string(testChart(x, y).lines([]lineSeries{{name: "a", colour: palette[0]}, {name: "b", colour: palette[1], pts: []xy{{1, nan}, {nan, 2}}}})))
		if !d.noData || len(d.polylines)+len(d.circles) != 0 || !strings.Contains(d.text, "a|") || !strings.Contains(d.text, "b|") {
			t.Errorf("no data %v, %d lines, %d dots, legend %s", d.noData, len(d.polylines), len(d.circles), d.text)
		}
	})
	t.Run("one point is a dot", func(t *testing.T) {
		d := parseChart(t, string(testChart(x, y).lines([]lineSeries{{name: "a", colour: palette[0], pts: []xy{{5, 50}}}})))
		if d.noData || len(d.polylines) != 0 || len(d.circles) != 1 || !d.inside(1) {
			t.Fatalf("no data %v, %d lines, dots %v", d.noData, len(d.polylines), d.circles)
		}
		mid := xy{marginLeft + (chartWidth-marginLeft-marginRight)/2.0, marginTop + legendRow + plotHeight/2.0}
		if c := d.circles[0]; math.Abs(c.x-mid.x) > 0.1 || math.Abs(c.y-mid.y) > 0.1 {
			t.Errorf("the dot of (5, 50) on 0..10 × 0..100 is at %v, want the middle %v", c, mid)
		}
	})
	t.Run("a missing value breaks the line", func(t *testing.T) {
		pts := []xy{{0, 0}, {1, 10}, {2, nan}, {3, 30}, {4, 40}, {5, 50}, {6, nan}, {7, 70}}
		d := parseChart(t, string(testChart(x, y).lines([]lineSeries{{name: "a", colour: palette[0], dashed: true, pts: pts}})))
		if len(d.polylines) != 2 || len(d.polylines[0]) != 2 || len(d.polylines[1]) != 3 || len(d.circles) != 1 || !d.inside(1) {
			t.Fatalf("lines %v, dots %v", d.polylines, d.circles)
		}
		// Up is smaller y: a rising series rises; equal steps in x are equal steps on the page.
		l := d.polylines[1]
		if !(l[0].y > l[1].y && l[1].y > l[2].y) || !near(l[1].x-l[0].x, l[2].x-l[1].x) {
			t.Errorf("points %v", l)
		}
		if d.polylines[0][0] != (xy{marginLeft, marginTop + legendRow + plotHeight}) {
			t.Errorf("(0, 0) is at %v, want the plot's bottom left", d.polylines[0][0])
		}
	})
	t.Run("values beyond the axes stay inside the plot", func(t *testing.T) {
		d := parseChart(t, string(testChart(x, y).lines([]lineSeries{{name: "a", colour: palette[0], pts: []xy{{-5, -1}, {50, 1e6}, {math.Inf(1), 3}}}})))
		if len(d.polylines) != 1 || !d.inside(1) {
			t.Errorf("lines %v", d.polylines)
		}
	})
	t.Run("a long legend wraps", func(t *testing.T) {
		var series []lineSeries
		for i := range 12 {
			series = append(series, lineSeries{name: strings.Repeat("x", 20) + strconv.Itoa(i), colour: palette[i%len(palette)], pts: []xy{{0, 1}, {1, 2}}})
		}
		rows := len(legendRows(func() []legendEntry {
			var e []legendEntry
			for _, s := range series {
				e = append(e, legendEntry{name: s.name})
			}
			return e
		}()))
		d := parseChart(t, string(testChart(x, y).lines(series)))
		if rows < 3 || !d.inside(rows) || d.height != float64(marginTop+rows*legendRow+plotHeight+marginBottom) {
			t.Errorf("%d legend rows, height %g", rows, d.height)
		}
	})
	t.Run("text is escaped", func(t *testing.T) {
		c := testChart(x, y)
		c.title, c.desc = `a <b> & "c"`, "</desc><script>"
		d := parseChart(t, string(c.lines([]lineSeries{{name: "<i>", colour: palette[0], pts: []xy{{1, 1}, {2, 2}}}})))
		if d.title != `a <b> & "c"` || d.desc != "</desc><script>" || !strings.Contains(d.text, "<i>|") {
			t.Errorf("title %q, desc %q, texts %q", d.title, d.desc, d.text)
		}
	})
}

func TestBarCharts(t *testing.T) {
	t.Parallel()
	y := linearAxis("share", 0, 50, true)
	t.Run("categories", func(t *testing.T) {
		names := []string{"ep-1", "ep-2", "ep-3", "ep-4"}
		series := []barSeries{
			{name: "a", colour: palette[0], values: []float64{10, 20, 0, math.NaN()}},
			{name: "b", colour: palette[1], values: []float64{50, 25}}, // shorter than the categories
		}
		d := parseChart(t, string(testChart(axis{label: "endpoint"}, y).categoryBars(names, series)))
		if len(d.rects) != 4 || !d.inside(1) || d.noData {
			t.Fatalf("bars %v (0, NaN and missing values draw none)", d.rects)
		}
		// a's 20 is twice the height of its 10, b's 50 reaches the top; bars of a slot do not overlap.
		if !near(d.rectSizes[1].y, 2*d.rectSizes[0].y) || !near(d.rects[2].y, marginTop+legendRow) || d.rects[0].x+d.rectSizes[0].x > d.rects[2].x {
			t.Errorf("bars %v sizes %v", d.rects, d.rectSizes)
		}
		for _, n := range names {
			if !strings.Contains(d.text, n+"|") {
				t.Errorf("no label %s: %s", n, d.text)
			}
		}
	})
	t.Run("many categories: at most 10 labels", func(t *testing.T) {
		var names []string
		vals := make([]float64, 100)
		for i := range 100 {
			names, vals[i] = append(names, "ep-"+strconv.Itoa(i)), float64(i%50)
		}
		d := parseChart(t, string(testChart(axis{label: "endpoint"}, y).categoryBars(names, []barSeries{{name: "a", colour: palette[0], values: vals}})))
		if labels := strings.Count(d.text, "ep-"); labels > 10 || labels < 5 || len(d.rects) != 98 || !d.inside(1) {
			t.Errorf("%d labels, %d bars", labels, len(d.rects))
		}
	})
	t.Run("no categories", func(t *testing.T) {
		d := parseChart(t, string(testChart(axis{label: "endpoint"}, y).categoryBars(nil, nil)))
		if !d.noData || len(d.rects) != 0 {
			t.Errorf("no data %v, bars %v", d.noData, d.rects)
		}
	})
	t.Run("bins on a log axis", func(t *testing.T) {
		edges := [][2]float64{{0.5, 0.625}, {0.625, 0.75}, {8, 10}}
		x := logAxis("ms", 0.5, 10)
		d := parseChart(t, string(testChart(x, y).binBars(edges, []barSeries{{name: "a", colour: palette[0], values: []float64{5, 0, 50}}})))
		if len(d.rects) != 2 || !d.inside(1) {
			t.Fatalf("bars %v", d.rects)
		}
		// 8 ms is past 1 ms on a log axis from 0.1 to 10: right of the middle.
		if mid := marginLeft + (chartWidth-marginLeft-marginRight)/2.0; !(d.rects[0].x < mid && d.rects[1].x > mid) {
			t.Errorf("bars at %v, the middle (1 ms) at %g", d.rects, mid)
		}
	})
}

// The series colours and the text are readable on the white background: at least 3:1 for
// graphics and 4.5:1 for text (WCAG 2.1, 1.4.11 and 1.4.3).
func TestChartContrast(t *testing.T) {
	t.Parallel()
	for _, c := range palette {
		if r := contrast(c, "#ffffff"); r < 3 {
			t.Errorf("series colour %s: contrast %.2f against white", c, r)
		}
	}
	for _, c := range []string{ink, muted} {
		if r := contrast(c, "#ffffff"); r < 4.5 {
			t.Errorf("text colour %s: contrast %.2f against white", c, r)
		}
	}
	if r := contrast(grid, "#ffffff"); r > 1.5 {
		t.Errorf("grid %s is too dark to stay behind the data: %.2f", grid, r)
	}
}

// contrast is WCAG's contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

func luminance(hex string) float64 {
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(0) + 0.7152*ch(1) + 0.0722*ch(2)
}
