package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestProxyScenarioIDs pins the family's ids (what -run selects), its place in the bench's
// scenario list and the columns its engines take.
func TestProxyScenarioIDs(t *testing.T) {
	ids := map[string]bool{}
	for _, sc := range scenarios() {
		ids[sc.id] = true
	}
	re := regexp.MustCompile(`^proxy/(tcp-(up|down)/(1|10)|connrate|udp-echo|refused|mem)$`)
	var got []string
	for _, sc := range proxyScenarios() {
		if !re.MatchString(sc.id) || sc.open == nil || sc.skip == nil || !sc.once {
			t.Errorf("bad scenario %s", sc.id)
		}
		if !ids[sc.id] {
			t.Errorf("scenarios() does not include %s (append proxyScenarios() in scenarios.go)", sc.id)
		}
		got = append(got, sc.id)
	}
	if len(got) != 8 {
		t.Fatalf("%d scenarios: %v", len(got), got)
	}
	cols := map[string]bool{}
	for _, e := range allEngines() {
		cols[e.name()] = true
	}
	for _, pe := range proxyEngines {
		if !cols[pe.col] {
			t.Errorf("%s takes column %q, which is no engine", pe.label, pe.col)
		}
	}
}

// TestProxyFamilySmoke runs the proxy family in its smallest form (root, iperf3 and at least
// one engine built; scripts/bench-peers builds the peers): every engine that is there
// produces figures, the others say why not, and nothing is left behind — namespaces, child
// processes, temporary files, goroutines.
func TestProxyFamilySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if why := proxyMissing(); why != "" {
		t.Skip(why)
	}
	var built []string
	for _, pe := range proxyEngines {
		if _, why := pe.binary(); why == "" {
			built = append(built, pe.col)
		} else {
			t.Logf("%s: %s", pe.label, why)
		}
	}
	if len(built) == 0 {
		t.Skip("no proxy engine built (scripts/bench-peers builds tun2socks and hev-socks5-tunnel)")
	}
	children := childPids(t)
	g0 := runtime.NumGoroutine()
	var out, progress bytes.Buffer
	o := options{smoke: true, run: `^proxy/(tcp-up/1|tcp-down/10|connrate|udp-echo|refused|mem)$`, engines: `^(wisp|netstack|kernel)$`,
		out: &out, progress: &progress}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	t.Logf("%s\n%s", progress.String(), table)
	if strings.Contains(table, "FAIL") {
		t.Errorf("a run failed")
	}
	if strings.Contains(table, "goroutines left") {
		t.Errorf("goroutines left after close")
	}
	for _, line := range strings.Split(progress.String(), "\n") {
		for _, col := range built {
			if strings.Contains(line, " "+col+" ") && strings.Contains(line, "n/a") {
				t.Errorf("%s is built but did not run: %s", col, line)
			}
		}
	}
	for _, ns := range []string{proxyNSC, proxyNSS} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s left", ns)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("wispbench-%d-*.yml", os.Getpid()))); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if now := childPids(t); len(now) > len(children) {
		t.Errorf("child processes left: %v (before: %v)", now, children)
	}
	if g := waitGoroutines(g0); g > g0 {
		t.Errorf("%d goroutines left", g-g0)
	}
}

// childPids lists this process's live children (not zombies).
func childPids(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := fmt.Sprint(os.Getpid())
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if ok && len(f) > 1 && f[1] == me && f[0] != "Z" {
			out = append(out, e.Name())
		}
	}
	return out
}
