package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// plotInput is what the charts are drawn from: the rows of a run (the -json file's rows,
// or the same built from the report just made) and where the run happened.
type plotInput struct {
	Date   string    `json:"date"`
	Size   string    `json:"size"`
	Cores  int       `json:"cores"`
	CPU    string    `json:"cpu"`
	Go     string    `json:"go"`
	Commit string    `json:"commit"` // written by -json (report.go); "?" in the title when absent
	Rows   []jsonRow `json:"rows"`
	Runs   []jsonRun `json:"runs"` // for the share of points other work disturbed
}

// plotInputOf takes the sweep rows of a finished run; the commit is the work tree's.
func plotInputOf(r *report) plotInput {
	cores, cpu, gov := machine()
	in := plotInput{Date: r.started.UTC().Format("2006-01-02 15:04 MST"), Size: r.sz.name, Cores: cores, CPU: cpu, Go: gov,
		Commit: gitCommit()}
	for _, sc := range r.scs {
		if !isSweep(sc.id) {
			continue
		}
		for _, m := range sc.metrics {
			row := jsonRow{Scenario: sc.id, Metric: m.key, Label: m.label, Unit: m.unit, Values: map[string]*float64{}}
			for _, e := range r.engines {
				if v, why := r.value(sc, m, e.name()); why == "" {
					row.Values[e.name()] = &v
				}
			}
			in.Rows = append(in.Rows, row)
		}
		for _, e := range r.engines {
			for i, o := range r.results[sc.id][e.name()] {
				in.Runs = append(in.Runs, jsonRun{Scenario: sc.id, Engine: e.name(), Rep: i + 1, Attempts: o.attempts, Foreign: o.foreign, Missing: o.why})
			}
		}
	}
	return in
}

// disturbed counts the family's measured points and those kept although other work took
// over busyLimit of the machine during them.
func disturbed(f sweepFamily, runs []jsonRun) (n, busy int) {
	for _, r := range runs {
		if rf, _, ok := parseSweepID(r.Scenario); !ok || rf.name != f.name || r.Missing != "" {
			continue
		}
		n++
		if r.Foreign > busyLimit {
			busy++
		}
	}
	return n, busy
}

// readPlotInput reads a file that -json wrote.
func readPlotInput(file string) (plotInput, error) {
	var in plotInput
	b, err := os.ReadFile(file)
	if err != nil {
		return in, err
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("%s: %w", file, err)
	}
	if t, err := time.Parse(time.RFC3339, in.Date); err == nil {
		in.Date = t.UTC().Format("2006-01-02 15:04 MST")
	}
	return in, nil
}

// gitCommit names the checked-out commit, "+dirty" when the tree has changes ("" if unknown).
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return c
}

// engineOrder is the order (and so the colour) of the engines in every chart.
var engineOrder = []string{"wisp", "netstack", "netstack-tuned", "kernel"}

// plotSweeps draws one chart per sweep family found in the rows, as dir/sweep-<family>.png
// and .svg, and returns the files written.
func plotSweeps(dir string, in plotInput) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, f := range sweepFamilies {
		panels, legend := familyPanels(f, in)
		if len(panels) == 0 {
			continue
		}
		for _, ext := range []string{"png", "svg"} {
			file := filepath.Join(dir, "sweep-"+f.name+"."+ext)
			if err := drawFamily(file, f, in, panels, legend); err != nil {
				return files, fmt.Errorf("%s: %w", file, err)
			}
			files = append(files, file)
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no sweep results to plot (run with -run '^sweep/')")
	}
	return files, nil
}

// legendItem is one engine's entry in a chart's legend.
type legendItem struct {
	name   string
	thumbs []plot.Thumbnailer
}

// familyPanels builds one plot per charted metric of the family that has a point, and the
// legend they share.
func familyPanels(f sweepFamily, in plotInput) ([]*plot.Plot, []legendItem) {
	var panels []*plot.Plot
	var legend []legendItem
	for _, key := range f.charts {
		series := map[string]plotter.XYs{}
		label, unit := "", ""
		for _, row := range in.Rows {
			rf, x, ok := parseSweepID(row.Scenario)
			if !ok || rf.name != f.name || row.Metric != key {
				continue
			}
			label, unit = row.Label, row.Unit
			for e, v := range row.Values {
				if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) || (f.logY[key] && *v <= 0) {
					continue
				}
				series[e] = append(series[e], plotter.XY{X: float64(x), Y: *v})
			}
		}
		if len(series) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s (%s)", label, unit)
		p.X.Label.Text = f.xLabel
		p.Y.Label.Text = unit
		ticks := make(plot.ConstantTicks, len(f.xs))
		last := math.Inf(-1)
		for i, x := range f.xs {
			ticks[i] = plot.Tick{Value: float64(x)}
			// On a linear axis a label too close to the previous one is left out.
			if f.logX || float64(x)-last >= float64(f.xs[len(f.xs)-1]-f.xs[0])/25 {
				ticks[i].Label = strconv.Itoa(x)
				last = float64(x)
			}
		}
		p.X.Tick.Marker = ticks
		if f.logX {
			p.X.Scale = plot.LogScale{}
		}
		if f.logY[key] {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = logTicks{}
		}
		p.Add(plotter.NewGrid())
		for i, e := range orderedEngines(series) {
			xys := series[e]
			slices.SortFunc(xys, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
			l, s, err := plotter.NewLinePoints(xys)
			if err != nil {
				continue
			}
			c := engineColor(e, i)
			l.Color, s.Color = c, c
			l.Width = vg.Points(1.5)
			s.Shape = plotutil.Shape(slices.Index(engineOrder, e) + 1)
			p.Add(l, s)
			if !slices.ContainsFunc(legend, func(it legendItem) bool { return it.name == e }) {
				legend = append(legend, legendItem{e, []plot.Thumbnailer{l, s}})
			}
		}
		if !f.logY[key] && p.Y.Min > 0 {
			p.Y.Min = 0 // a linear axis starts at zero: the curve's height is its size
		}
		panels = append(panels, p)
	}
	slices.SortStableFunc(legend, func(a, b legendItem) int { return cmp.Compare(engineRank(a.name), engineRank(b.name)) })
	return panels, legend
}

func engineRank(e string) int {
	if k := slices.Index(engineOrder, e); k >= 0 {
		return k
	}
	return len(engineOrder)
}

// logTicks labels a log axis at 1, 2 and 5 times the powers of ten (plot.LogTicks labels
// only the powers, none at all on an axis shorter than a decade).
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 3, 4, 5, 6, 7, 8, 9} {
			v := m * math.Pow(10, e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// orderedEngines returns the engines of series in engineOrder, unknown names last.
func orderedEngines(series map[string]plotter.XYs) []string {
	var out []string
	for _, e := range engineOrder {
		if _, ok := series[e]; ok {
			out = append(out, e)
		}
	}
	var rest []string
	for e := range series {
		if !slices.Contains(engineOrder, e) {
			rest = append(rest, e)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func engineColor(e string, i int) color.Color {
	if k := slices.Index(engineOrder, e); k >= 0 {
		return plotutil.Color(k)
	}
	return plotutil.Color(len(engineOrder) + i)
}

// drawFamily writes the family's panels side by side under a two-line header: what was
// swept, then when, on which commit and machine, and what one point measured.
func drawFamily(file string, f sweepFamily, in plotInput, panels []*plot.Plot, legend []legendItem) error {
	w, h := vg.Length(len(panels))*5*vg.Inch, 4*vg.Inch
	var c vg.CanvasWriterTo
	switch filepath.Ext(file) {
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))}
	case ".svg":
		c = vgsvg.New(w, h)
	default:
		return errors.New("unknown image format")
	}
	dc := draw.New(c)
	// The white background, which the panels only paint inside their own tiles.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	title := panels[0].Title.TextStyle
	title.Font.Size = vg.Points(13)
	sub := title
	sub.Font.Size = vg.Points(9)
	commit := in.Commit
	if commit == "" {
		commit = "?"
	}
	lines := []string{fmt.Sprintf("wisp bench, %s run, %s, commit %s — %d cores, %s, %s",
		in.Size, in.Date, commit, in.Cores, in.CPU, in.Go)}
	line := sweepSizeOf(in.Size).caption(f.name)
	if f.name == "conns" {
		line += "; the kernel's memory is not in the process"
	} else {
		line += "; one run per point, again (up to 3 times) when other work took over 25% of the machine"
	}
	if n, busy := disturbed(f, in.Runs); busy > 0 && f.name == "conns" {
		line += fmt.Sprintf("; %d of %d points measured while other work took over 25%% of the machine", busy, n)
	} else if busy > 0 {
		line += fmt.Sprintf("; %d of %d points kept so", busy, n)
	}
	lines = append(lines, line)
	top := dc.Max.Y - vg.Points(6)
	mid := (dc.Min.X + dc.Max.X) / 2
	dc.FillText(title, vg.Point{X: mid, Y: top}, "How cost grows: "+f.title)
	top -= title.Height("A") + vg.Points(3)
	for _, l := range lines {
		dc.FillText(sub, vg.Point{X: mid, Y: top}, l)
		top -= sub.Height("A") + vg.Points(2)
	}
	top -= vg.Points(4)

	// The legend, shared by the panels, in one row under the header.
	lgs := make([]plot.Legend, len(legend))
	var widths []vg.Length
	var total, height vg.Length
	for i, it := range legend {
		lgs[i] = plot.NewLegend()
		lgs[i].Left, lgs[i].Top = true, true
		lgs[i].Add(it.name, it.thumbs...)
		r := lgs[i].Rectangle(dc)
		widths = append(widths, r.Max.X-r.Min.X+vg.Points(18))
		total += widths[i]
		height = max(height, r.Max.Y-r.Min.Y)
	}
	x := mid - total/2
	for i := range lgs {
		lc := draw.Crop(dc, x-dc.Min.X, 0, 0, top-dc.Max.Y)
		lgs[i].Draw(lc)
		x += widths[i]
	}
	top -= height + vg.Points(4)

	body := draw.Crop(dc, 0, 0, 0, top-dc.Max.Y)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 8, PadLeft: vg.Millimeter * 2,
		PadRight: vg.Millimeter * 4, PadBottom: vg.Millimeter * 2, PadTop: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, body)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// plotFrom draws the charts from an earlier run's -json file (-plot DIR -from FILE).
func plotFrom(o options) error {
	if o.plotDir == "" {
		return errors.New("-from needs -plot DIR")
	}
	in, err := readPlotInput(o.plotFrom)
	if err != nil {
		return err
	}
	files, err := plotSweeps(o.plotDir, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.progress, "plots: %s\n", strings.Join(files, " "))
	return nil
}

// checkPlotSelection refuses -plot before a run that has no sweep to draw.
func checkPlotSelection(o options, scs []scenario) error {
	if o.plotDir == "" || slices.ContainsFunc(scs, func(s scenario) bool { return isSweep(s.id) }) {
		return nil
	}
	return errors.New("-plot draws the sweep families: select them with -run '^sweep/' (or draw an earlier run with -from FILE)")
}
