package bench

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// The HTML report's charts are inline SVG written here by hand: line charts over time, a
// histogram and bars per endpoint, each with axes, round ticks, a legend, and a title and a
// description for screen readers. Nothing is fetched and nothing runs: the page opens offline.

// Chart geometry, in SVG user units (pixels at 100 %).
const (
	chartWidth   = 900
	plotHeight   = 240
	marginLeft   = 72
	marginRight  = 24
	marginTop    = 10 // below the legend
	marginBottom = 50 // tick labels and the x axis' label
	legendRow    = 20
	charWidth    = 7 // of 12 px text, to lay the legend out
)

// palette colours the series in order: each has at least 3:1 contrast against the white
// background (WCAG's minimum for graphics), and they stay apart for the common colour blindness.
var palette = []string{"#0072b2", "#c24e00", "#007a5e", "#a8307a", "#5e4fa2", "#806200"}

// Text and lines of the frame: ink is 16:1 against white, muted 7:1.
const (
	ink   = "#1a1a1a"
	muted = "#4d4d4d"
	grid  = "#dcdcdc"
)

// axis is one axis of a chart: its ends, its ticks and its label. A log axis is base 10.
type axis struct {
	lo, hi float64
	ticks  []float64
	log    bool
	label  string
}

// extent is the lowest and highest finite value; lo > hi when there is none.
func extent(vals ...float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return lo, hi
}

// linearAxis covers [lo, hi] (and 0, with fromZero) with about 5 round ticks; without values
// (lo > hi) it is 0 to 1.
func linearAxis(label string, lo, hi float64, fromZero bool) axis {
	if lo > hi || math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		lo, hi = 0, 1
	}
	if fromZero {
		lo, hi = min(lo, 0), max(hi, 0)
	}
	if hi == lo { // one value: around it, or 0 to 1 from zero (the value is then 0)
		d := math.Abs(lo) / 2
		if d == 0 {
			d = 1
		}
		lo, hi = lo-d, hi+d
		if fromZero {
			lo, hi = 0, 1
		}
	}
	ticks := niceTicks(lo, hi, 5)
	return axis{lo: ticks[0], hi: ticks[len(ticks)-1], ticks: ticks, label: label}
}

// niceTicks covers [lo, hi] (lo < hi, both finite) with ticks a round step apart — 1, 2 or 5
// times a power of ten, the smallest giving at most about n intervals; the first and last tick
// are at or beyond lo and hi.
func niceTicks(lo, hi float64, n int) []float64 {
	raw := (hi - lo) / float64(max(n, 1))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	first, last := math.Floor(lo/step), math.Ceil(hi/step)
	ticks := make([]float64, 0, int(last-first)+1)
	for i := first; i <= last; i++ {
		ticks = append(ticks, roundTo(i*step, step))
	}
	return ticks
}

// roundTo drops the floating-point noise of v, a multiple of step (0.30000000000000004 → 0.3).
func roundTo(v, step float64) float64 {
	d := decimals(step)
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}

// decimals is how many digits after the point a tick step needs.
func decimals(step float64) int {
	return max(0, int(-math.Floor(math.Log10(step)+1e-9)))
}

// logAxis covers [lo, hi] (positive values; others ignored) with whole decades, ticked at each
// power of ten, and at 2 and 5 times it when there are at most two decades.
func logAxis(label string, lo, hi float64) axis {
	if !(lo > 0) || lo > hi || math.IsInf(hi, 0) || math.IsNaN(hi) {
		lo, hi = 1, 10
	}
	a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	var ticks []float64
	for e := a; e <= b; e++ {
		p := math.Pow(10, e)
		ticks = append(ticks, p)
		if b-a <= 2 && e < b {
			ticks = append(ticks, 2*p, 5*p)
		}
	}
	return axis{lo: math.Pow(10, a), hi: math.Pow(10, b), ticks: ticks, log: true, label: label}
}

// frac is where v lies between the axis' ends, 0 to 1, clamped.
func (a axis) frac(v float64) float64 {
	var f float64
	if a.log {
		if v <= 0 {
			return 0
		}
		f = (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	} else {
		f = (v - a.lo) / (a.hi - a.lo)
	}
	if math.IsNaN(f) {
		return 0
	}
	return min(max(f, 0), 1)
}

// tickLabel writes a tick's value with the digits the axis' step needs.
func (a axis) tickLabel(v float64) string {
	if a.log || len(a.ticks) < 2 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	s := strconv.FormatFloat(v, 'f', decimals(a.ticks[1]-a.ticks[0]), 64)
	if strings.Trim(s, "-0.") == "" {
		return "0"
	}
	return s
}

// svgChart is what every chart has: an id unique in the page (its title and description are
// named after it), the title and description screen readers announce, and two axes.
type svgChart struct {
	id, title, desc string
	x, y            axis
}

// lineSeries is a line of a chart; a NaN y breaks it (no value there). A point alone between
// breaks is drawn as a dot.
type lineSeries struct {
	name   string
	colour string
	dashed bool
	pts    []xy
}

type xy struct{ x, y float64 }

// barSeries is one colour of a bar chart: a value per slot (category or bin); NaN or 0 draws no
// bar.
type barSeries struct {
	name   string
	colour string
	values []float64
}

// legendEntry is a series as the legend shows it.
type legendEntry struct {
	name, colour string
	dashed, bar  bool
}

// plot is the drawing area inside the axes.
type plot struct{ left, top, right, bottom float64 }

func (p plot) px(a axis, v float64) float64 { return p.left + a.frac(v)*(p.right-p.left) }
func (p plot) py(a axis, v float64) float64 { return p.bottom - a.frac(v)*(p.bottom-p.top) }

// num writes a coordinate: one decimal is finer than a pixel.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0 // never reached by callers, whose values are clamped; never "NaN" in the output
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func esc(s string) string { return html.EscapeString(s) }

// width is the room an entry takes in the legend: its swatch, its name and a gap.
func (e legendEntry) width() int { return 30 + charWidth*len([]rune(e.name)) + 16 }

// legendRows lays the legend out in rows across the chart's width.
func legendRows(entries []legendEntry) [][]legendEntry {
	var rows [][]legendEntry
	width := chartWidth - marginLeft - marginRight
	used := width + 1
	for _, e := range entries {
		w := e.width()
		if used+w > width {
			rows = append(rows, nil)
			used = 0
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], e)
		used += w
	}
	return rows
}

// open writes the svg element, its title and description, the legend, the grid, the ticks and
// the axes' labels, and returns the plot area.
func (c svgChart) open(b *strings.Builder, legend []legendEntry, categories []string) plot {
	rows := legendRows(legend)
	top := float64(marginTop + len(rows)*legendRow)
	p := plot{left: marginLeft, top: top, right: chartWidth - marginRight, bottom: top + plotHeight}
	height := p.bottom + marginBottom
	fmt.Fprintf(b, `<svg role="img" id="%s" class="chart" aria-labelledby="%[1]s-title %[1]s-desc" viewBox="0 0 %d %s" width="%[2]d" height="%[3]s" font-family="system-ui, sans-serif" font-size="12">`,
		esc(c.id), chartWidth, num(height))
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, esc(c.id), esc(c.title), esc(c.id), esc(c.desc))
	b.WriteString(`<rect width="100%" height="100%" fill="#ffffff"/>`)

	b.WriteString(`<g class="legend">`)
	for i, row := range rows {
		x, y := float64(marginLeft), float64(marginTop+i*legendRow)+legendRow/2
		for _, e := range row {
			if e.bar {
				fmt.Fprintf(b, `<rect x="%s" y="%s" width="12" height="12" fill="%s"/>`, num(x+8), num(y-6), esc(e.colour))
			} else {
				line(b, x, y, x+24, y, e.colour, ` stroke-width="2.5"`+dash(e.dashed))
			}
			fmt.Fprintf(b, `<text x="%s" y="%s" fill="%s" dominant-baseline="middle">%s</text>`, num(x+30), num(y), ink, esc(e.name))
			x += float64(e.width())
		}
	}
	b.WriteString(`</g><g class="axes">`)

	for _, v := range c.y.ticks {
		y := p.py(c.y, v)
		line(b, p.left, y, p.right, y, grid, "")
		fmt.Fprintf(b, `<text x="%s" y="%s" fill="%s" text-anchor="end" dominant-baseline="middle">%s</text>`, num(p.left-6), num(y), muted, esc(c.y.tickLabel(v)))
	}
	if categories == nil {
		for _, v := range c.x.ticks {
			x := p.px(c.x, v)
			line(b, x, p.bottom, x, p.bottom+5, muted, "")
			fmt.Fprintf(b, `<text x="%s" y="%s" fill="%s" text-anchor="middle">%s</text>`, num(x), num(p.bottom+18), muted, esc(c.x.tickLabel(v)))
		}
	} else {
		every := max(1, (len(categories)+9)/10) // at most 10 labels
		slot := (p.right - p.left) / float64(len(categories))
		for i := 0; i < len(categories); i += every {
			x := p.left + (float64(i)+0.5)*slot
			line(b, x, p.bottom, x, p.bottom+5, muted, "")
			fmt.Fprintf(b, `<text x="%s" y="%s" fill="%s" text-anchor="middle">%s</text>`, num(x), num(p.bottom+18), muted, esc(categories[i]))
		}
	}
	line(b, p.left, p.bottom, p.right, p.bottom, muted, "")
	line(b, p.left, p.top, p.left, p.bottom, muted, "")
	fmt.Fprintf(b, `<text x="%s" y="%s" fill="%s" text-anchor="middle">%s</text>`, num((p.left+p.right)/2), num(p.bottom+40), ink, esc(c.x.label))
	fmt.Fprintf(b, `<text transform="translate(16 %s) rotate(-90)" fill="%s" text-anchor="middle">%s</text>`, num((p.top+p.bottom)/2), ink, esc(c.y.label))
	b.WriteString(`</g>`)
	return p
}

// close writes "no data" over an empty plot, and ends the svg.
func (c svgChart) close(b *strings.Builder, p plot, empty bool) template.HTML {
	if empty {
		fmt.Fprintf(b, `<text class="no-data" x="%s" y="%s" fill="%s" text-anchor="middle">no data</text>`, num((p.left+p.right)/2), num((p.top+p.bottom)/2), muted)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text and attribute in it went through esc or num
}

// line writes a line; extra are more attributes, written as they are.
func line(b *strings.Builder, x1, y1, x2, y2 float64, stroke, extra string) {
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"%s/>`, num(x1), num(y1), num(x2), num(y2), esc(stroke), extra)
}

func dash(dashed bool) string {
	if dashed {
		return ` stroke-dasharray="6 4"`
	}
	return ""
}

// lines draws a line chart.
func (c svgChart) lines(series []lineSeries) template.HTML {
	var b strings.Builder
	legend := make([]legendEntry, len(series))
	for i, s := range series {
		legend[i] = legendEntry{name: s.name, colour: s.colour, dashed: s.dashed}
	}
	p := c.open(&b, legend, nil)
	drawn := 0
	for _, s := range series {
		fmt.Fprintf(&b, `<g class="series" data-series="%s">`, esc(s.name))
		for _, seg := range segments(s.pts) {
			if len(seg) == 1 {
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, num(p.px(c.x, seg[0].x)), num(p.py(c.y, seg[0].y)), esc(s.colour))
				drawn++
				continue
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s points="`, esc(s.colour), dash(s.dashed))
			for i, pt := range seg {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(num(p.px(c.x, pt.x)) + "," + num(p.py(c.y, pt.y)))
			}
			b.WriteString(`"/>`)
			drawn++
		}
		b.WriteString(`</g>`)
	}
	return c.close(&b, p, drawn == 0)
}

// segments splits pts where a value is missing (NaN, or not finite).
func segments(pts []xy) [][]xy {
	var out [][]xy
	var cur []xy
	for _, pt := range pts {
		if !finite(pt.x) || !finite(pt.y) {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, pt)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// binBars draws a histogram: bins [from, to) on the x axis (log or linear), in each a bar per
// series side by side.
func (c svgChart) binBars(edges [][2]float64, series []barSeries) template.HTML {
	slot := func(p plot, i int) (float64, float64) { return p.px(c.x, edges[i][0]), p.px(c.x, edges[i][1]) }
	return c.bars(len(edges), nil, series, slot)
}

// categoryBars draws a bar chart over named categories, a bar per series in each.
func (c svgChart) categoryBars(categories []string, series []barSeries) template.HTML {
	slot := func(p plot, i int) (float64, float64) {
		w := (p.right - p.left) / float64(len(categories))
		return p.left + float64(i)*w, p.left + float64(i+1)*w
	}
	if categories == nil {
		categories = []string{}
	}
	return c.bars(len(categories), categories, series, slot)
}

// bars draws n slots of bars; slot gives a slot's left and right edge.
func (c svgChart) bars(n int, categories []string, series []barSeries, slot func(plot, int) (float64, float64)) template.HTML {
	var b strings.Builder
	legend := make([]legendEntry, len(series))
	for i, s := range series {
		legend[i] = legendEntry{name: s.name, colour: s.colour, bar: true}
	}
	p := c.open(&b, legend, categories)
	drawn := 0
	for j, s := range series {
		fmt.Fprintf(&b, `<g class="series" data-series="%s" fill="%s">`, esc(s.name), esc(s.colour))
		for i := range min(n, len(s.values)) {
			v := s.values[i]
			if !finite(v) || v <= 0 {
				continue
			}
			x0, x1 := slot(p, i)
			gap := min(2, (x1-x0)/4)
			w := (x1 - x0 - gap) / float64(len(series))
			y := p.py(c.y, v)
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s"/>`, num(x0+gap/2+float64(j)*w), num(y), num(max(w, 0.5)), num(max(p.bottom-y, 0.5)))
			drawn++
		}
		b.WriteString(`</g>`)
	}
	return c.close(&b, p, drawn == 0)
}
