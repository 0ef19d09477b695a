package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHarnessSmoke runs the harness in its smallest form on the userspace engines, so that
// `go test ./...` catches a broken harness or engine driver. It proves nothing about speed.
func TestHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	g0 := runtime.NumGoroutine()
	var out, progress bytes.Buffer
	jsonFile := filepath.Join(t.TempDir(), "r.json")
	o := options{
		smoke:    true,
		run:      `^(bulk/1x1500|bulk/8x1500|rr|connrate|idle|stalled|loss/1%-0ms|loss/0%-50ms|udp/64|large/1x1500|wg/bulk|wg/rr|wg/stalled)$`,
		engines:  `^(wisp|netstack)$`,
		jsonFile: jsonFile,
		out:      &out,
		progress: &progress,
	}
	start := time.Now()
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke run took %v\n%s\n%s", time.Since(start), progress.String(), out.String())
	table := out.String()
	for _, want := range []string{"TCP bulk, 1 stream, MTU 1500", "round trip median", "connections",
		"Go heap per connection", "memory held", "loss 1%", "UDP 64-byte", "VARIANT large segments",
		"WireGuard (2 wireguard-go devices, channel binds): TCP bulk", "resident set growth"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// Every engine that exists must produce figures: no FAIL cell.
	if strings.Contains(table, "FAIL") {
		t.Errorf("a run failed:\n%s\n%s", table, progress.String())
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rows []jsonRow `json:"rows"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) == 0 {
		t.Fatal("no rows in JSON")
	}
	for _, r := range doc.Rows {
		if (r.Scenario == "bulk/1x1500" || r.Scenario == "wg/bulk") && r.Metric == "gbps" {
			for _, e := range []string{"wisp", "netstack"} {
				if v := r.Values[e]; v == nil || *v <= 0 {
					t.Errorf("%s %s throughput missing: %+v", e, r.Scenario, r)
				}
			}
		}
		if r.Scenario == "wg/rr" && r.Metric == "p50" && r.RatioNS == nil {
			t.Errorf("wg/rr has no wisp/netstack ratio: %+v", r)
		}
	}
	if g := waitGoroutines(g0); g > g0 {
		t.Errorf("%d goroutines left behind", g-g0)
	}
}

// TestLinkImpairmentDeterministic checks that the shared link's loss decisions depend only
// on the seed and the packet sequence, the same for every engine.
func TestLinkImpairmentDeterministic(t *testing.T) {
	decisions := func() []bool {
		d := newDirection(linkConfig{MTU: 1500, QueueLen: 8, Impair: impairment{Loss: 0.3, Seed: 7}}, nil, nil, 1)
		var out []bool
		for i := 0; i < 100; i++ {
			out = append(out, d.rng.Float64() < 0.3)
		}
		return out
	}
	a, b := decisions(), decisions()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("decision %d differs", i)
		}
	}
}

// TestLinkDeliversInOrderWithDelay pushes frames through a delayed, lossless link and checks
// order, delay and that every sender packet is released.
func TestLinkDeliversInOrderWithDelay(t *testing.T) {
	rx := &recorder{}
	tx := &recorder{}
	l := newLink(linkConfig{MTU: 100, Impair: impairment{Delay: 20 * time.Millisecond, Seed: 1}}, tx, rx)
	l.start()
	defer l.close()
	start := time.Now()
	const n = 200
	for i := 0; i < n; i++ {
		l.ab.lock()
		f := l.ab.slot(2)
		if f == nil {
			t.Fatal("queue full")
		}
		f.parts = append(f.parts, []byte{byte(i), byte(i >> 8)})
		f.owner = &i
		l.ab.unlock()
	}
	deadline := time.Now().Add(2 * time.Second)
	for rx.count() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := rx.count(); got != n {
		t.Fatalf("delivered %d of %d", got, n)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("delivered after %v, before the delay", el)
	}
	for i, v := range rx.got {
		if int(v[0])|int(v[1])<<8 != i {
			t.Fatalf("frame %d out of order", i)
		}
	}
	l.close()
	if tx.released != n {
		t.Errorf("released %d of %d sender packets", tx.released, n)
	}
}

type recorder struct {
	mu       sync.Mutex
	got      [][]byte
	released int
}

func (r *recorder) release(any) {
	r.mu.Lock()
	r.released++
	r.mu.Unlock()
}

func (r *recorder) deliver(fs []frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range fs {
		var b []byte
		for _, p := range f.parts {
			b = append(b, p...)
		}
		r.got = append(r.got, b)
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// nopPeer receives and releases without allocating.
type nopPeer struct{ n int }

func (p *nopPeer) release(any)        {}
func (p *nopPeer) deliver(fs []frame) { p.n += len(fs) }

// TestLinkHotPathNoAllocs pins the shared link's per-packet path (queue, take, deliver,
// release) at zero allocations, so that the allocation figures belong to the engines.
func TestLinkHotPathNoAllocs(t *testing.T) {
	a, b := &nopPeer{}, &nopPeer{}
	d := newDirection(linkConfig{MTU: 1500, QueueLen: 512}, a, b, 1)
	payload := make([]byte, 1400)
	owner := new(int)
	allocs := testing.AllocsPerRun(100, func() {
		d.lock()
		for i := 0; i < maxBatch; i++ {
			f := d.slot(len(payload))
			f.parts = append(f.parts, payload[:20], payload[20:])
			f.owner = owner
		}
		d.unlock()
		k := d.take()
		d.pass(d.batch[:k])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d packets", allocs, maxBatch)
	}
	if b.n == 0 {
		t.Fatal("nothing delivered")
	}
}

// TestWGUDPSmoke runs the WireGuard scenarios over real UDP (wg-udp/*) in their smallest
// form: as root only, since they need the namespace the harness creates. It checks that
// both stacks produce figures and that the namespace is gone afterwards.
func TestWGUDPSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if why := (kernelEngine{}).missing(); why != "" {
		t.Skip(why)
	}
	g0 := runtime.NumGoroutine()
	var out, progress bytes.Buffer
	o := options{smoke: true, run: `^wg-udp/(bulk|rr)$`, engines: `^(wisp|netstack)$`, out: &out, progress: &progress}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	cleanupKernel()
	table := out.String()
	t.Logf("\n%s\n%s", progress.String(), table)
	if strings.Contains(table, "FAIL") {
		if strings.Contains(table, "ip netns add") {
			t.Skipf("cannot create a network namespace here:\n%s", table)
		}
		t.Errorf("a run failed:\n%s\n%s", table, progress.String())
	}
	if strings.Contains(table, "n/a[") {
		t.Errorf("a figure is missing:\n%s", table)
	}
	if _, err := os.Stat("/run/netns/" + wgNSName); err == nil {
		t.Errorf("namespace %s left behind", wgNSName)
	}
	if g := waitGoroutines(g0); g > g0 {
		t.Errorf("%d goroutines left behind", g-g0)
	}
}
