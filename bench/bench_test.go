package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
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
		Runs []jsonRun `json:"runs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) == 0 {
		t.Fatal("no rows in JSON")
	}
	// The large-segment variant really carries GSO packets across the 1500-byte link, for
	// both engines, and none is dropped as too large.
	for _, r := range doc.Runs {
		if r.Scenario != "large/1x1500" || r.Missing != "" {
			continue
		}
		if !strings.Contains(r.Link, "A→B ") || strings.Contains(r.Link, "A→B 0 pkts") || strings.Contains(strings.SplitN(r.Link, ";", 2)[0], "(0 GSO)") {
			t.Errorf("%s large/1x1500: no GSO packet from A to B: %s", r.Engine, r.Link)
		}
		for _, m := range tooLarge.FindAllStringSubmatch(r.Link, -1) {
			if m[1] != "0" {
				t.Errorf("%s large/1x1500: packets dropped as too large: %s", r.Engine, r.Link)
			}
		}
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

// tooLarge finds the link summary's count of packets dropped as larger than the MTU.
var tooLarge = regexp.MustCompile(`, (\d+) too large`)

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
		f := l.ab.slot(2, false)
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
			f := d.slot(len(payload), false)
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

// TestWispLinkCompletesChecksum checks the large-segment variant's checksum completion on
// wisp's side of the link (ip.CompleteChecksum): a TCP/IPv4 and a UDP/IPv6
// packet with the pseudo-header sum in the field, in a chain of several pbufs, come out
// with the checksum a receiver verifies.
func TestWispLinkCompletesChecksum(t *testing.T) {
	a := pbuf.NewAllocator(pbuf.Config{PoolCount: 64, PoolBufSize: 512, HeapSize: 1 << 16, RefCount: 16, RAMCount: 16})
	defer linktest.CheckZero(t, a)
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		proto    uint8
	}{
		{"tcp4", addrA, addrB, wire.ProtoTCP},
		{"udp6", netip.MustParseAddr("fd42:5eed::1"), netip.MustParseAddr("fd42:5eed::2"), wire.ProtoUDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hl, l4 := wire.IPv4MinHeaderLen, 20
			if tc.src.Is6() {
				hl = wire.IPv6HeaderLen
			}
			if tc.proto == wire.ProtoUDP {
				l4 = 8
			}
			const payload = 3001 // odd, across several 512-byte pbufs
			b := make([]byte, hl+l4+payload)
			if tc.src.Is4() {
				b[0], b[9] = 0x45, tc.proto
				binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
				copy(b[12:16], tc.src.AsSlice())
				copy(b[16:20], tc.dst.AsSlice())
			} else {
				b[0], b[6] = 0x60, tc.proto
				binary.BigEndian.PutUint16(b[4:6], uint16(len(b)-hl))
				copy(b[8:24], tc.src.AsSlice())
				copy(b[24:40], tc.dst.AsSlice())
			}
			seg := b[hl:]
			binary.BigEndian.PutUint16(seg[0:2], 40000)
			binary.BigEndian.PutUint16(seg[2:4], 5001)
			if tc.proto == wire.ProtoTCP {
				seg[12] = 5 << 4
			} else {
				binary.BigEndian.PutUint16(seg[4:6], uint16(len(seg)))
			}
			for i := l4; i < len(seg); i++ {
				seg[i] = byte(i*7 + 3)
			}
			at := 16
			if tc.proto == wire.ProtoUDP {
				at = 6
			}
			// What a sender leaves partial: the folded pseudo-header sum, not complemented.
			binary.BigEndian.PutUint16(seg[at:], wire.Fold(wire.PseudoHeaderChecksum(tc.proto, tc.src, tc.dst, uint32(len(seg)))))
			p, err := a.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Free()
			if p.Next() == nil {
				t.Fatal("want a chain of several pbufs")
			}
			if err := p.CopyIn(b, 0); err != nil {
				t.Fatal(err)
			}
			if !ip.CompleteChecksum(p, 0) {
				t.Fatal("CompleteChecksum did not complete it")
			}
			out := make([]byte, len(b))
			p.CopyOut(out, 0)
			s := wire.PseudoHeaderChecksum(tc.proto, tc.src, tc.dst, uint32(len(seg)))
			if got := wire.Finish(wire.Checksum(out[hl:], s)); got != 0 {
				t.Errorf("checksum %#04x does not verify (residue %#04x)", binary.BigEndian.Uint16(out[hl+at:]), got)
			}
			if !bytes.Equal(out[:hl+at], b[:hl+at]) || !bytes.Equal(out[hl+at+2:], b[hl+at+2:]) {
				t.Error("bytes other than the checksum changed")
			}
		})
	}
	// What it cannot parse it leaves alone, and says so (the packet is then not marked
	// verified).
	for _, b := range [][]byte{{0x45, 0, 0}, make([]byte, 60), append([]byte{0x45, 0, 0, 24, 0, 0, 0, 0, 64, wire.ProtoTCP}, make([]byte, 14)...)} {
		p, err := a.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
		if err != nil {
			t.Fatal(err)
		}
		_ = p.CopyIn(b, 0)
		if ip.CompleteChecksum(p, 0) {
			t.Errorf("completed the checksum of % x", b)
		}
		p.Free()
	}
}

// TestTUNSmoke runs the TUN scenarios (tun/*) in their smallest form, as root only (they
// need the namespace and the TUN the harness creates): every engine that runs them
// produces figures, the derived rows have theirs, and the namespace is gone afterwards.
func TestTUNSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if why := tunSkip("")(wispEngine{}); why != "" {
		t.Skip(why)
	}
	g0 := runtime.NumGoroutine()
	var out, progress bytes.Buffer
	o := options{smoke: true, run: `^tun/`, engines: `^(wisp|netstack|kernel)$`, out: &out, progress: &progress}
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
	for _, want := range []string{"TUN with offloads", "TUN without offloads", "throughput ÷ the kernel over veth"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if _, err := os.Stat("/run/netns/" + tunNSName); err == nil {
		t.Errorf("namespace %s left behind", tunNSName)
	}
	if g := waitGoroutines(g0); g > g0 {
		t.Errorf("%d goroutines left behind", g-g0)
	}
}
