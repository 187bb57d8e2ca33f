package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quaycast/quaycast/internal/browsertest"
)

// htmlCharts are the ids of the report's charts.
var htmlCharts = []string{"deliveries-over-time", "latency-over-time", "latency-histogram", "endpoint-rate", "endpoint-p99", "endpoint-gap", "cpu-over-time", "rss-over-time"}

// withPictures gives every round of res what the charts draw, as a run of its own would have:
// a timeline of seconds (the baseline's faster, the gateway's with a stall), a latency
// distribution and the figures of endpoints ep-00001 to ep-00005.
func withPictures(res *Result) *Result {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range res.Rounds {
		rd := &res.Rounds[i]
		gateway := rd.Pipeline == "gateway"
		var h Histogram
		tl := &Timeline{IntervalSeconds: 1, GatewayMeasured: res.Target == TargetChild, HarnessMeasured: true}
		for s := 1; s <= 20; s++ {
			pt := TimePoint{Seconds: float64(s), Deliveries: 2400 + 10*s}
			if gateway && (s == 7 || s == 8) {
				pt.Deliveries = 0 // a stall: the latency lines break
			}
			if !gateway {
				pt.Deliveries += 300
			}
			var sec Histogram
			for range pt.Deliveries / 10 {
				d := time.Duration(math.Exp(rnd.NormFloat64()*0.6+0.3) * float64(time.Millisecond))
				sec.Record(d)
				h.Record(d)
			}
			pt.DeliveriesPerSec = float64(pt.Deliveries)
			if pt.Deliveries > 0 {
				pt.P50Ms, pt.P99Ms = ms(sec.Quantile(0.5)), ms(sec.Quantile(0.99))
			}
			pt.GatewayCPU, pt.GatewayRSSMiB = 0.8+0.01*float64(s), 60+float64(s)
			pt.HarnessCPU, pt.HarnessRSSMiB = 0.5, 40
			tl.Points = append(tl.Points, pt)
		}
		rd.Timeline = tl
		rd.LatencyHistogram = h.Bins()
		rd.ByEndpoint = nil
		for e := range 5 {
			rd.ByEndpoint = append(rd.ByEndpoint, EndpointFigures{Name: fmt.Sprintf("ep-%05d", e+1),
				DeliveriesPerSec: 480 + 5*float64(e) + float64(i), P99Ms: 7 + float64(e)/2, MaxGapMs: 15 + 10*float64(e)})
		}
	}
	return res
}

func renderHTML(t *testing.T, res *Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := res.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// svgElement is an element of an SVG chart, its attributes and its children.
type svgElement struct {
	XMLName  xml.Name
	Attrs    []xml.Attr   `xml:",any,attr"`
	Children []svgElement `xml:",any"`
	Text     string       `xml:",chardata"`
}

func (e svgElement) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// walk calls f on e and every element below it.
func (e svgElement) walk(f func(svgElement)) {
	f(e)
	for _, c := range e.Children {
		c.walk(f)
	}
}

var svgRe = regexp.MustCompile(`(?s)<svg .*?</svg>`)

// charts parses the page's charts, by id.
func charts(t *testing.T, page string) map[string]svgElement {
	t.Helper()
	out := map[string]svgElement{}
	for _, s := range svgRe.FindAllString(page, -1) {
		var e svgElement
		if err := xml.Unmarshal([]byte(s), &e); err != nil {
			t.Fatalf("a chart is not well-formed: %v\n%s", err, s)
		}
		out[e.attr("id")] = e
	}
	return out
}

// marks counts a chart's drawn data: polylines, dots and bars inside its series.
func marks(e svgElement) int {
	n := 0
	e.walk(func(g svgElement) {
		if g.XMLName.Local == "g" && g.attr("class") == "series" {
			n += len(g.Children)
		}
	})
	return n
}

// The page is one file that fetches nothing and runs nothing: no script, style sheet, image or
// font from elsewhere, no URL at all in the samples; every chart is an accessible SVG with data.
func TestHTMLReportIsSelfContained(t *testing.T) {
	t.Parallel()
	for name, res := range sampleResults() {
		t.Run(name, func(t *testing.T) {
			page := renderHTML(t, withPictures(res))
			for _, bad := range []string{"http://", "https://", "<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe", "NaN", "Inf"} {
				if strings.Contains(page, bad) {
					t.Errorf("the page has %q", bad)
				}
			}
			got := charts(t, page)
			for _, id := range htmlCharts {
				c, ok := got[id]
				if !ok {
					t.Errorf("no chart %s", id)
					continue
				}
				var title, desc string
				c.walk(func(e svgElement) {
					switch e.XMLName.Local {
					case "title":
						title = e.Text
					case "desc":
						desc = e.Text
					}
				})
				if c.attr("role") != "img" || c.attr("aria-labelledby") != id+"-title "+id+"-desc" || title == "" || desc == "" {
					t.Errorf("chart %s: role %q, labelled by %q, title %q, desc %q", id, c.attr("role"), c.attr("aria-labelledby"), title, desc)
				}
				if marks(c) == 0 {
					t.Errorf("chart %s draws nothing", id)
				}
			}
		})
	}
}

// A result's notes and names are text: a gateway's URL in a note stays words on the page, and
// markup in a name is escaped, never a tag.
func TestHTMLReportEscapesText(t *testing.T) {
	t.Parallel()
	res := withPictures(sampleResults()["clean"])
	res.Scenario.Name = `<script>alert("x")</script>`
	res.Rounds[0].Name = `gateway <b>&</b>`
	res.Notes = append(res.Notes, "gateway at http://127.0.0.1:8080 is not a process of this harness: no gateway CPU or memory figures")
	page := renderHTML(t, res)
	for _, bad := range []string{"<script", "<b>", "src=", "href=", "url(", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "gateway &lt;b&gt;&amp;&lt;/b&gt;") {
		t.Error("the names are not on the page, escaped")
	}
	charts(t, page) // still well-formed
}

// The verdict comes first: before any chart, the page says OK or FAILED and why, with each
// round's lost, duplicated and out-of-order counts, the ratio to the baseline, and the
// delivery-log records a round dropped.
func TestHTMLReportStartsWithTheVerdict(t *testing.T) {
	t.Parallel()
	samples := sampleResults()
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"failed", []string{"Verdict: FAILED", "gateway: timed out with 49950 of 50000 deliveries", "<td class=\"bad\">50</td>", "0.99 of the deliveries per second of round &#34;baseline&#34;", "healthy endpoints&#39; p99 beside a hanging one: 9.9 ms",
			"Round &#34;gateway&#34;: the delivery log dropped 1234 records (the gateway sheds them when NATS falls behind; deliveries are unaffected)."}},
		{"clean", []string{"Verdict: OK", "Nothing lost, duplicated or out of order."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := renderHTML(t, withPictures(samples[tc.name]))
			first := strings.Index(page, "<svg")
			for _, w := range tc.want {
				if i := strings.Index(page, w); i < 0 || i > first {
					t.Errorf("%q is not before the first chart (at %d, chart at %d)", w, i, first)
				}
			}
		})
	}
}

// A result saved as JSON makes the same page as the result itself: a report can be rebuilt
// without running again.
func TestHTMLReportFromSavedJSON(t *testing.T) {
	t.Parallel()
	for name, res := range sampleResults() {
		t.Run(name, func(t *testing.T) {
			withPictures(res)
			js, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var back Result
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			if a, b := renderHTML(t, res), renderHTML(t, &back); a != b {
				t.Errorf("the page from the JSON differs from the result's")
			}
		})
	}
}

// Without pictures (a result saved before they were kept, a remote gateway without process
// figures), every chart is still there, saying it has no data.
func TestHTMLReportWithoutData(t *testing.T) {
	t.Parallel()
	res := sampleResults()["clean"]
	got := charts(t, renderHTML(t, res))
	for _, id := range htmlCharts {
		c, ok := got[id]
		if !ok {
			t.Errorf("no chart %s", id)
			continue
		}
		empty := false
		c.walk(func(e svgElement) { empty = empty || e.attr("class") == "no-data" })
		if !empty || marks(c) != 0 {
			t.Errorf("chart %s: %d marks, says no data: %v", id, marks(c), empty)
		}
	}
}

// The report as a person sees it: headless Chromium opens the file and draws every chart with
// a size and data — polylines with points, bars with an area — and the page has a screenshot.
func TestHTMLReportDrawsInChromium(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := withPictures(sampleResults()["failed"]).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path)); err != nil {
		t.Fatal(err)
	}
	type drawn struct {
		ID                string
		Width, Height     float64
		Points, Lines     int // polyline points the browser parsed; polylines with a width or height
		Bars, Dots, Texts int // rects with an area inside the series; dots; labels with a width
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]drawn](`[...document.querySelectorAll('svg[role="img"]')].map(svg => {
		const box = svg.getBoundingClientRect();
		const lines = [...svg.querySelectorAll('.series polyline')];
		const area = e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; };
		return {
			ID: svg.id, Width: box.width, Height: box.height,
			Points: lines.reduce((n, l) => n + l.points.numberOfItems, 0),
			Lines: lines.filter(area).length,
			Bars: [...svg.querySelectorAll('.series rect')].filter(r => { const b = r.getBBox(); return b.width > 0 && b.height > 0; }).length,
			Dots: svg.querySelectorAll('.series circle').length,
			Texts: [...svg.querySelectorAll('text')].filter(t => t.getBBox().width > 0).length,
		};
	})`))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]drawn{}
	for _, d := range got {
		byID[d.ID] = d
	}
	for _, id := range htmlCharts {
		d, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("chart %s is not on the page", id)
		case d.Width <= 0 || d.Height <= 0:
			t.Errorf("chart %s is %gx%g", id, d.Width, d.Height)
		case d.Texts < 4:
			t.Errorf("chart %s shows %d labels: no axes", id, d.Texts)
		case strings.HasPrefix(id, "endpoint-") || id == "latency-histogram":
			if d.Bars == 0 {
				t.Errorf("chart %s has no bars: %+v", id, d)
			}
		case d.Lines == 0 || d.Points < 2*d.Lines:
			t.Errorf("chart %s has no lines drawn: %+v", id, d)
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		t.Errorf("screenshot of %d bytes: %dx%d, %v", len(shot), cfg.Width, cfg.Height, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.png"), shot, 0o600); err != nil {
		t.Fatal(err)
	}
}
