package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSweepIDs checks that every sweep scenario's id parses back to its family and x, that
// malformed ids do not parse, and that the default selection leaves the sweeps out.
func TestSweepIDs(t *testing.T) {
	n := 0
	for _, sc := range scenarios() {
		if !isSweep(sc.id) {
			continue
		}
		n++
		f, x, ok := parseSweepID(sc.id)
		if !ok {
			t.Errorf("%s does not parse", sc.id)
			continue
		}
		if sweepID(f, x) != sc.id {
			t.Errorf("%s parses to %s %d, which prints as %s", sc.id, f.name, x, sweepID(f, x))
		}
	}
	want := 0
	for _, f := range sweepFamilies {
		want += len(f.xs)
	}
	if n != want {
		t.Errorf("%d sweep scenarios, want %d", n, want)
	}
	for id, want := range map[string]int{"sweep/conns/10000": 10000, "sweep/streams/64": 64, "sweep/rtt/0ms": 0, "sweep/rtt/50ms": 50} {
		if _, x, ok := parseSweepID(id); !ok || x != want {
			t.Errorf("parseSweepID(%q) = %d, %v; want %d", id, x, ok, want)
		}
	}
	for _, id := range []string{"sweep/conns", "sweep/conns/", "sweep/conns/x", "sweep/conns/-1", "sweep/conns/010",
		"sweep/rtt/5", "sweep/streams/4ms", "sweep/other/1", "bulk/1x1500", "sweep//1"} {
		if _, _, ok := parseSweepID(id); ok {
			t.Errorf("parseSweepID(%q) accepted", id)
		}
	}
}

// fixedPlotInput is a small result set with every family, a missing value (n/a) and a
// zero on a log axis (left out).
func fixedPlotInput() plotInput {
	in := plotInput{Date: "2026-12-05 18:00 UTC", Size: "full", Cores: 2, CPU: "test CPU", Go: "go1.26", Commit: "abc1234"}
	f := func(v float64) *float64 { return &v }
	add := func(id, key, label, unit string, vals map[string]*float64) {
		in.Rows = append(in.Rows, jsonRow{Scenario: id, Metric: key, Label: label, Unit: unit, Values: vals})
	}
	for i, x := range []int{1, 10, 100} {
		id := "sweep/conns/" + strconv.Itoa(x)
		add(id, "heap", "Go heap per connection per stack", "B", map[string]*float64{"wisp": f(1900 + float64(i)), "netstack": f(5700), "kernel": nil})
		add(id, "rss", "resident set growth", "MiB", map[string]*float64{"wisp": f(float64(x) / 100), "netstack": f(float64(x) / 30)})
	}
	for _, x := range []int{1, 8, 64} {
		id := "sweep/streams/" + strconv.Itoa(x)
		add(id, "gbps", "throughput", "Gbit/s", map[string]*float64{"wisp": f(5), "netstack": f(1.5), "netstack-tuned": f(1.7), "kernel": f(30)})
		add(id, "cpu", "CPU per GB", "s/GB", map[string]*float64{"wisp": f(2.2), "netstack": f(9), "kernel": f(0.4)})
	}
	for _, x := range []int{0, 10, 50} {
		id := "sweep/rtt/" + strconv.Itoa(x) + "ms"
		add(id, "mbps", "throughput", "Mbit/s", map[string]*float64{"wisp": f(5000 / float64(x+1)), "netstack": f(0), "kernel": nil})
		add(id, "cpu", "CPU per GB", "s/GB", map[string]*float64{"wisp": f(2), "netstack": f(9)})
	}
	return in
}

func checkPlots(t *testing.T, dir string, families ...string) {
	t.Helper()
	for _, fam := range families {
		for _, ext := range []string{"png", "svg"} {
			file := filepath.Join(dir, "sweep-"+fam+"."+ext)
			st, err := os.Stat(file)
			if err != nil {
				t.Errorf("%s: %v", fam, err)
				continue
			}
			if st.Size() < 1000 {
				t.Errorf("%s is %d bytes", file, st.Size())
			}
		}
	}
}

// TestPlotSweeps draws a fixed result set, directly and through a -json file (-from).
func TestPlotSweeps(t *testing.T) {
	dir := t.TempDir()
	files, err := plotSweeps(dir, fixedPlotInput())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 6 {
		t.Errorf("wrote %v, want 3 families × png, svg", files)
	}
	checkPlots(t, dir, "conns", "streams", "rtt")

	// The same drawn from a file, as -plot DIR -from FILE does.
	b, err := json.Marshal(fixedPlotInput())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	var progress bytes.Buffer
	if err := run(options{plotDir: dir2, plotFrom: file, progress: &progress}); err != nil {
		t.Fatal(err)
	}
	checkPlots(t, dir2, "conns", "streams", "rtt")

	// Nothing to draw is an error, not an empty directory; before a run, without running.
	if _, err := plotSweeps(t.TempDir(), plotInput{}); err == nil {
		t.Error("plotting no rows succeeded")
	}
	if err := run(options{plotDir: t.TempDir(), run: "^rr$", progress: &progress}); err == nil || !strings.Contains(err.Error(), "-plot") {
		t.Errorf("-plot with no sweep selected: %v", err)
	}
}

// TestSweepSmoke runs a few points of each family in the smallest size on the userspace
// engines and draws them: the sweep scenarios run through the ordinary harness.
func TestSweepSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	g0 := runtime.NumGoroutine()
	var out, progress bytes.Buffer
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "r.json")
	o := options{
		smoke:    true,
		run:      `^sweep/(conns/(1|10|100)|streams/(1|4)|rtt/(0|5)ms)$`,
		engines:  `^(wisp|netstack)$`,
		jsonFile: jsonFile,
		plotDir:  dir,
		out:      &out,
		progress: &progress,
	}
	start := time.Now()
	if err := run(o); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("sweep smoke took %v\n%s\n%s", time.Since(start), progress.String(), out.String())
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("a run failed:\n%s\n%s", out.String(), progress.String())
	}
	checkPlots(t, dir, "conns", "streams", "rtt")
	in, err := readPlotInput(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range in.Rows {
		for e, v := range r.Values {
			if v != nil {
				got[r.Scenario+" "+r.Metric+" "+e] = true
			}
		}
	}
	for _, want := range []string{"sweep/conns/10 heap wisp", "sweep/conns/10 heap netstack", "sweep/conns/10 rss wisp",
		"sweep/streams/4 gbps wisp", "sweep/streams/4 cpu netstack", "sweep/rtt/5ms mbps wisp", "sweep/rtt/5ms mbps netstack"} {
		if !got[want] {
			t.Errorf("no figure for %s", want)
		}
	}
	// The smoke size stops at 10 connections: the 100-connection point is n/a, not a failure.
	if got["sweep/conns/100 heap wisp"] {
		t.Error("sweep/conns/100 ran in the smoke size")
	}
	if g := waitGoroutines(g0); g > g0 {
		t.Errorf("%d goroutines left behind", g-g0)
	}
}
