package console

import (
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/quaycast/quaycast/rollup"
)

// Charts are SVG drawn here, inline in the page: presentation attributes only (no style
// attribute, which the Content-Security-Policy would refuse), a title and a description for
// screen readers.

const (
	chartW, chartH         = 600, 170
	padL, padR, padT, padB = 56, 12, 10, 28
)

// Colours with at least 3:1 contrast on white, apart for the common colour blindness.
var chartColours = []string{"#0072b2", "#c24e00", "#007a5e"}

type series struct {
	Name   string
	Values []float64 // one per minute; NaN: no value
}

// charts are an endpoint's hour: deliveries per second and latency.
type charts struct {
	Rate, Latency template.HTML
	Attempts      uint64
	Success, P99  string
}

// endpointCharts draws an endpoint's last hour from its minutes (nil: no figures kept).
func endpointCharts(mins []rollup.Minute) *charts {
	if mins == nil {
		return nil
	}
	var total rollup.Minute
	delivered := make([]float64, len(mins))
	failed := make([]float64, len(mins))
	p50 := make([]float64, len(mins))
	p99 := make([]float64, len(mins))
	for i := range mins {
		m := &mins[i]
		delivered[i] = float64(m.Delivered) / 60
		failed[i] = float64(m.Attempts()-m.Delivered) / 60
		p50[i], p99[i] = m.Quantile(0.5), m.Quantile(0.99)
		total.Merge(m)
	}
	start := time.Now()
	if len(mins) > 0 {
		start = mins[0].Start
	}
	id := strconv.FormatInt(start.Unix(), 10)
	return &charts{
		Rate: lineChart("rate"+id, "Attempts per second, last hour", "per s", start,
			[]series{{"delivered", delivered}, {"failed", failed}}),
		Latency: lineChart("lat"+id, "Attempt latency, last hour (p50 and p99, ms)", "ms", start,
			[]series{{"p50", p50}, {"p99", p99}}),
		Attempts: total.Attempts(), Success: pct(total.SuccessRate()), P99: ms(total.Quantile(0.99)),
	}
}

// lineChart draws series over the minutes from start, one point a minute.
func lineChart(id, title, unit string, start time.Time, ss []series) template.HTML {
	hi := 0.0
	n := 0
	for _, s := range ss {
		n = max(n, len(s.Values))
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				hi = max(hi, v)
			}
		}
	}
	top := niceCeil(hi)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(i int) float64 { return padL + plotW*float64(i)/float64(max(n-1, 1)) }
	y := func(v float64) float64 { return padT + plotH*(1-v/top) }
	var b strings.Builder
	esc := html.EscapeString
	b.WriteString(`<svg class="chart" viewBox="0 0 ` + itoa(chartW) + " " + itoa(chartH) + `" role="img" aria-labelledby="` + id + `-t ` + id + `-d" xmlns="http://www.w3.org/2000/svg">`)
	b.WriteString(`<title id="` + id + `-t">` + esc(title) + `</title>`)
	var desc []string
	for _, s := range ss {
		last, peak := math.NaN(), 0.0
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				last, peak = v, max(peak, v)
			}
		}
		desc = append(desc, s.Name+": peak "+fmtNum(peak)+" "+unit+", latest "+fmtNum(last))
	}
	b.WriteString(`<desc id="` + id + `-d">` + esc(strings.Join(desc, "; ")) + `</desc>`)
	for k := 0; k <= 4; k++ {
		v := top * float64(k) / 4
		yy := fmtF(y(v))
		b.WriteString(`<line x1="` + itoa(padL) + `" x2="` + itoa(chartW-padR) + `" y1="` + yy + `" y2="` + yy + `" stroke="#dcdcdc" stroke-width="1"/>`)
		b.WriteString(`<text x="` + itoa(padL-6) + `" y="` + fmtF(y(v)+4) + `" text-anchor="end" font-size="11" fill="#4d4d4d">` + esc(fmtNum(v)) + `</text>`)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if i < 0 {
			continue
		}
		label := start.Add(time.Duration(i) * time.Minute).UTC().Format("15:04")
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case n - 1:
			anchor = "end"
		}
		b.WriteString(`<text x="` + fmtF(x(i)) + `" y="` + itoa(chartH-8) + `" text-anchor="` + anchor + `" font-size="11" fill="#4d4d4d">` + label + `</text>`)
	}
	for si, s := range ss {
		colour := chartColours[si%len(chartColours)]
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				b.WriteString(`<polyline fill="none" stroke="` + colour + `" stroke-width="2" points="` + strings.Join(pts, " ") + `"/>`)
			}
			pts = pts[:0]
		}
		for i, v := range s.Values {
			if math.IsNaN(v) {
				flush()
				continue
			}
			pts = append(pts, fmtF(x(i))+","+fmtF(y(v)))
		}
		flush()
		lx := padL + 8 + si*110
		b.WriteString(`<rect x="` + itoa(lx) + `" y="` + itoa(padT) + `" width="12" height="4" fill="` + colour + `"/>`)
		b.WriteString(`<text x="` + itoa(lx+16) + `" y="` + itoa(padT+6) + `" font-size="11" fill="#1a1a1a">` + esc(s.Name) + `</text>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text in it is escaped above
}

// niceCeil is a round number at or above v (1, 2 or 5 times a power of ten); 1 for 0.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func itoa(i int) string { return strconv.Itoa(i) }

func fmtF(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "none"
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}
