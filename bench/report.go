package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report collects every outcome and prints the table.
type report struct {
	sz       sizes
	engines  []engine
	scs      []scenario
	results  map[string]map[string][]outcome // scenario id → engine name → one per repetition
	notes    []string
	command  string
	started  time.Time
	elapsed  time.Duration
	loadBeg  string // /proc/loadavg at the start and the end: the machine may be shared
	loadEnd  string
	footRefs map[string]int
	feet     []string
}

func newReport(sz sizes, engines []engine, scs []scenario) *report {
	return &report{sz: sz, engines: engines, scs: scs, results: map[string]map[string][]outcome{},
		started: time.Now(), footRefs: map[string]int{}, loadBeg: loadavg()}
}

func (r *report) add(sc scenario, e engine, o outcome) {
	if r.results[sc.id] == nil {
		r.results[sc.id] = map[string][]outcome{}
	}
	r.results[sc.id][e.name()] = append(r.results[sc.id][e.name()], o)
	for _, n := range o.notes {
		if !contains(r.notes, n) {
			r.notes = append(r.notes, n)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// samples returns an engine's values of a metric over the repetitions that produced one,
// or why there is none. A derived metric has one sample, its value.
func (r *report) samples(sc scenario, m metric, engine string) ([]float64, string) {
	if m.derive != nil {
		v, why := m.derive(r, engine)
		if why != "" {
			return nil, why
		}
		return []float64{v}, ""
	}
	os, ok := r.results[sc.id][engine]
	if !ok {
		return nil, "not run"
	}
	var vs []float64
	why := ""
	for _, o := range os {
		if o.why != "" {
			if why == "" {
				why = o.why
			}
			continue
		}
		if v, ok := o.values[m.key]; ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		if why == "" {
			why = "n/a"
		}
		return nil, why
	}
	return vs, ""
}

// value returns the median of an engine's samples of a metric, or why there is none.
func (r *report) value(sc scenario, m metric, engine string) (float64, string) {
	if m.derive != nil {
		return m.derive(r, engine)
	}
	vs, why := r.samples(sc, m, engine)
	if why != "" {
		return 0, why
	}
	return median(vs), ""
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) has(name string) bool {
	for _, e := range r.engines {
		if e.name() == name {
			return true
		}
	}
	return false
}

// valueOf returns an engine's figure of metric key in scenario id, or why there is none
// (the scenario was not selected, or the engine has no figure).
func (r *report) valueOf(id, key, engine string) (float64, string) {
	for _, sc := range r.scs {
		if sc.id != id {
			continue
		}
		for _, m := range sc.metrics {
			if m.key == key {
				if !r.has(engine) {
					return 0, "n/a (" + engine + " not run)"
				}
				return r.value(sc, m, engine)
			}
		}
	}
	return 0, "n/a (" + id + " not run)"
}

// ratio returns wisp/other for a metric, when both exist (never for a derived metric).
func (r *report) ratio(sc scenario, m metric, other string) (float64, bool) {
	if m.derive != nil {
		return 0, false
	}
	w, why := r.value(sc, m, "wisp")
	if why != "" {
		return 0, false
	}
	o, why := r.value(sc, m, other)
	if why != "" || o == 0 {
		return 0, false
	}
	return w / o, true
}

// met says whether wisp reaches the figure (against netstack default) and whether
// it is ahead of the tuned netstack; "" when it cannot be told.
func (r *report) met(sc scenario, m metric) (goalMet, aheadTuned string) {
	better := func(x, bound float64) bool {
		if m.higher {
			return x >= bound
		}
		return x <= bound
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	switch m.goal.kind {
	case goalRatio:
		if q, ok := r.ratio(sc, m, "netstack"); ok {
			goalMet = yes(better(q, m.goal.v))
		}
	case goalAbs:
		// Judged on the figure as printed: allocations are counted process-wide, so a
		// handful over a million packets prints (and counts) as 0.0000.
		if w, why := r.value(sc, m, "wisp"); why == "" {
			p := math.Pow(10, float64(m.prec))
			goalMet = yes(better(math.Round(w*p)/p, m.goal.v))
		}
	}
	if m.goal.kind != goalNone {
		if q, ok := r.ratio(sc, m, "netstack-tuned"); ok {
			aheadTuned = yes(better(q, 1))
		}
	}
	return goalMet, aheadTuned
}

func (m metric) goalString() string {
	op := "≤"
	if m.higher {
		op = "≥"
	}
	switch m.goal.kind {
	case goalRatio:
		if m.goal.v < 1 {
			return fmt.Sprintf("%s1/%.0f×", op, 1/m.goal.v)
		}
		return fmt.Sprintf("%s%g×", op, m.goal.v)
	case goalAbs:
		return fmt.Sprintf("%s%g", op, m.goal.v)
	}
	return ""
}

func (r *report) foot(why string) string {
	k, ok := r.footRefs[why]
	if !ok {
		r.feet = append(r.feet, why)
		k = len(r.feet)
		r.footRefs[why] = k
	}
	return fmt.Sprintf("[%d]", k)
}

func formatValue(v float64, prec int) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case math.Abs(v) >= 100000:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func formatRatio(q float64) string {
	switch {
	case q >= 100:
		return fmt.Sprintf("%.0f×", q)
	case q >= 10:
		return fmt.Sprintf("%.1f×", q)
	}
	return fmt.Sprintf("%.2f×", q)
}

// machine describes where the run happened.
func machine() (cores int, cpu, goVersion string) {
	cpu = "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return runtime.NumCPU(), cpu, runtime.Version()
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (r *report) writeTable(w io.Writer) error {
	cores, cpu, gov := machine()
	var b strings.Builder
	fmt.Fprintf(&b, "wisp bench (%s run) %s — %d cores, %s, %s, GOMAXPROCS=%d — %s\n",
		r.sz.name, r.started.Format("2006-01-02 15:04 MST"), cores, cpu, gov, runtime.GOMAXPROCS(0), r.command)
	cols := []string{}
	for _, e := range r.engines {
		cols = append(cols, e.name())
	}
	hasNS, hasTuned := r.has("netstack"), r.has("netstack-tuned")
	if r.has("wisp") && hasNS {
		cols = append(cols, "wisp/ns")
	}
	if r.has("wisp") && hasTuned {
		cols = append(cols, "wisp/tuned")
	}
	const first = 64
	fmt.Fprintf(&b, "%-*s %-9s", first, "scenario / metric", "unit")
	for _, c := range cols {
		fmt.Fprintf(&b, " %14s", c)
	}
	fmt.Fprintf(&b, "  %-9s %s\n", "goal", "met (vs ns / ahead of tuned)")
	for _, sc := range r.scs {
		fmt.Fprintf(&b, "%s\n", sc.title)
		for _, m := range sc.metrics {
			label := "  " + m.label
			if len(label) > first {
				label = label[:first]
			}
			fmt.Fprintf(&b, "%-*s %-9s", first, label, m.unit)
			anyValue := false
			for _, e := range r.engines {
				v, why := r.value(sc, m, e.name())
				cell := formatValue(v, m.prec)
				if why != "" {
					cell = "n/a"
					if strings.HasPrefix(why, "failed") {
						cell = "FAIL"
					}
					if why != "n/a" {
						cell += r.foot(why)
					}
				} else {
					anyValue = true
				}
				fmt.Fprintf(&b, " %14s", cell)
			}
			_ = anyValue
			for _, other := range []string{"netstack", "netstack-tuned"} {
				if !r.has("wisp") || !r.has(other) {
					continue
				}
				cell := "—"
				if q, ok := r.ratio(sc, m, other); ok {
					cell = formatRatio(q)
				}
				fmt.Fprintf(&b, " %14s", cell)
			}
			g, t := r.met(sc, m)
			mark := ""
			if g != "" || t != "" {
				mark = orDash(g) + " / " + orDash(t)
			}
			fmt.Fprintf(&b, "  %-9s %s\n", m.goalString(), mark)
		}
	}
	if len(r.feet) > 0 {
		b.WriteString("\n")
		for i, f := range r.feet {
			fmt.Fprintf(&b, "[%d] %s\n", i+1, f)
		}
	}
	if len(r.notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	runs, reruns := 0, 0
	for _, byEngine := range r.results {
		for _, os := range byEngine {
			for _, o := range os {
				runs++
				reruns += max(o.attempts-1, 0)
			}
		}
	}
	fmt.Fprintf(&b, "\n%d repetition(s) of each timing scenario per engine (the table shows medians); %d runs, %d more run again because other work took over %.0f%% of the machine; load average %s at the start, %s at the end; total %.0fs\n",
		r.sz.reps, runs, reruns, busyLimit*100, r.loadBeg, r.loadEnd, r.elapsed.Seconds())
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// jsonRow is one metric of one scenario in the JSON output.
type jsonRow struct {
	Scenario   string               `json:"scenario"`
	Title      string               `json:"title"`
	Metric     string               `json:"metric"`
	Label      string               `json:"label"`
	Unit       string               `json:"unit"`
	HigherBest bool                 `json:"higher_is_better"`
	Values     map[string]*float64  `json:"values"` // medians over the repetitions
	Samples    map[string][]float64 `json:"samples"`
	Missing    map[string]string    `json:"missing,omitempty"`
	RatioNS    *float64             `json:"wisp_over_netstack,omitempty"`
	RatioTuned *float64             `json:"wisp_over_netstack_tuned,omitempty"`
	Goal       string               `json:"goal,omitempty"`
	GoalMet    string               `json:"goal_met,omitempty"`
	AheadTuned string               `json:"ahead_of_tuned,omitempty"`
}

// jsonRun is one engine's run of one scenario: why it has no figures, what the link did.
type jsonRun struct {
	Scenario string   `json:"scenario"`
	Engine   string   `json:"engine"`
	Rep      int      `json:"rep"`
	Attempts int      `json:"attempts"`
	Foreign  float64  `json:"foreign_cpu_share"`
	Missing  string   `json:"missing,omitempty"`
	Link     string   `json:"link,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

func (r *report) writeJSON(file string) error {
	cores, cpu, gov := machine()
	doc := struct {
		Date    string    `json:"date"`
		Commit  string    `json:"commit"` // the checked-out commit, "+dirty" with changes
		Size    string    `json:"size"`
		Command string    `json:"command"`
		Cores   int       `json:"cores"`
		CPU     string    `json:"cpu"`
		Go      string    `json:"go"`
		Seconds float64   `json:"seconds"`
		Reps    int       `json:"repetitions"`
		Load    [2]string `json:"loadavg_start_end"`
		Rows    []jsonRow `json:"rows"`
		Runs    []jsonRun `json:"runs"`
		Notes   []string  `json:"notes,omitempty"`
	}{Date: r.started.Format(time.RFC3339), Commit: gitCommit(), Size: r.sz.name, Command: r.command, Cores: cores,
		CPU: cpu, Go: gov, Seconds: r.elapsed.Seconds(), Reps: r.sz.reps, Load: [2]string{r.loadBeg, r.loadEnd}, Notes: r.notes}
	for _, sc := range r.scs {
		for _, m := range sc.metrics {
			row := jsonRow{Scenario: sc.id, Title: sc.title, Metric: m.key, Label: m.label, Unit: m.unit,
				HigherBest: m.higher, Values: map[string]*float64{}, Samples: map[string][]float64{}, Missing: map[string]string{}, Goal: m.goalString()}
			for _, e := range r.engines {
				v, why := r.value(sc, m, e.name())
				if why != "" {
					row.Values[e.name()] = nil
					row.Missing[e.name()] = why
				} else {
					row.Values[e.name()] = &v
					row.Samples[e.name()], _ = r.samples(sc, m, e.name())
				}
			}
			if q, ok := r.ratio(sc, m, "netstack"); ok {
				row.RatioNS = &q
			}
			if q, ok := r.ratio(sc, m, "netstack-tuned"); ok {
				row.RatioTuned = &q
			}
			row.GoalMet, row.AheadTuned = r.met(sc, m)
			doc.Rows = append(doc.Rows, row)
		}
	}
	for _, sc := range r.scs {
		for _, e := range r.engines {
			for i, o := range r.results[sc.id][e.name()] {
				doc.Runs = append(doc.Runs, jsonRun{Scenario: sc.id, Engine: e.name(), Rep: i + 1, Attempts: o.attempts,
					Foreign: o.foreign, Missing: o.why, Link: o.link, Notes: o.notes})
			}
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}
