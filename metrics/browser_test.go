package metrics

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's headless browser: the test skips without it, except under CI=1,
// where scripts/test has installed it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "1" {
		t.Fatal("chromium is not installed (scripts/test installs it)")
	}
	t.Skip("chromium is not installed: the page is not checked in a browser (apt-get install chromium)")
	return ""
}

// The page, rendered by a real browser after its JavaScript ran: the budget (from the
// server) and the live counters, pools, connection list and findings (fetched by the page
// from snapshot.json and diagnose) hold the stack's values.
func TestPageInBrowser(t *testing.T) {
	bin := chromium(t)
	p := busyPair(t)
	base := serve(t, Handler(p.A, Title("wisp test page")))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", base+"/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	snap := p.A.Stats()
	bud := p.A.Budget()
	pcb, _ := snap.Pool("TCP_PCB")
	want := map[string]string{
		"budget-total":       fmt.Sprint(bud.Total),
		"budget-TCP_PCB":     fmt.Sprint(bud.Lines[0].Bytes),
		"proto-TCP-Xmit":     fmt.Sprint(snap.TCP.Xmit),
		"proto-TCP-Recv":     fmt.Sprint(snap.TCP.Recv),
		"proto-IP-Xmit":      fmt.Sprint(snap.IP.Xmit),
		"pool-TCP_PCB-Used":  fmt.Sprint(pcb.Used),
		"pool-TCP_PCB-Avail": fmt.Sprint(pcb.Avail),
		"heap-Avail":         fmt.Sprint(snap.Heap.Avail),
		"conns-count":        "1 connection(s)",
	}
	// The first budget line is whichever pool comes first.
	delete(want, "budget-TCP_PCB")
	want["budget-"+bud.Lines[0].Name] = fmt.Sprint(bud.Lines[0].Bytes)
	for id, v := range want {
		re := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`)
		m := re.FindStringSubmatch(dom)
		if m == nil || m[1] != v {
			t.Errorf("#%s: %q, want %q", id, m, v)
		}
	}
	for _, s := range []string{"<title>wisp test page</title>", "TIME-WAIT", "198.18.0.1:"} {
		if !strings.Contains(dom, s) {
			t.Errorf("the page lacks %q", s)
		}
	}
	if strings.Contains(dom, `id="at">never<`) || strings.Contains(dom, "waiting for the first sample") {
		t.Errorf("the page's script did not fill it in")
	}
	if !strings.Contains(dom, `id="healthy"`) {
		t.Errorf("the healthy stack shows findings or none were fetched")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s\nchromium:\n%s", dom, stderr.String())
	}
}
