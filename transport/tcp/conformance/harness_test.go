package conformance

// The harness: one iptest.Node over a capture link with TCP registered, a fake clock, and
// the end-of-test checks (pools, heap, timers, goroutines, counters).

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// The addresses, those of an iptest.Pair: the stack under test is A (.1 / ::1), the test
// plays B (.2 / ::2).
var (
	v4Local, v6Local   = iptest.AddrA[0], iptest.AddrA[1]
	v4Remote, v6Remote = iptest.AddrB[0], iptest.AddrB[1]
)

// family selects IPv4 or IPv6 for a test.
type family int

const (
	v4 family = iota
	v6
)

func (f family) String() string {
	if f == v6 {
		return "v6"
	}
	return "v4"
}

// ipHdrLen is the IP header the family adds to each segment.
func (f family) ipHdrLen() int {
	if f == v6 {
		return wire.IPv6HeaderLen
	}
	return 20
}

// bothFamilies runs fn as two subtests, "v4" and "v6".
func bothFamilies(t *testing.T, fn func(t *testing.T, f family)) {
	for _, f := range []family{v4, v6} {
		t.Run(f.String(), func(t *testing.T) { fn(t, f) })
	}
}

// bothEnvs runs fn as two subtests, "v4" and "v6", each with a fresh env of the default
// options (newEnv).
func bothEnvs(t *testing.T, fn func(t *testing.T, e *env)) {
	bothFamilies(t, func(t *testing.T, f family) { fn(t, newEnv(t, f)) })
}

// testOptions is the configuration every test starts from: iptest's with smaller pools,
// lwIP-like windows without autotuning, short timers. Tests change fields through newEnv's
// mods.
func testOptions() opt.Options {
	o := iptest.Options()
	o.PbufPoolSize = 512
	o.MempNumReassData = 4
	o.IPReassMaxPbufs = 16
	o.MempNumFragPbuf = 16
	o.ND6NumNeighbors = 4
	o.MempNumND6Queue = 8
	o.ARPTableSize = 4
	o.MempNumARPQueue = 8
	o.ICMPRateLimit = 1000
	o.ICMPRateBurst = 100

	o.MempNumTCPPCB = 16
	o.MempNumTCPPCBListen = 4
	o.MempNumTCPSeg = 512
	o.TCPMSS = 1460
	o.TCPWnd = 0xffff
	o.TCPMaxWnd = 0xffff
	o.TCPWndScale = true
	o.TCPTimestamps = true
	o.TCPSACK = true
	o.TCPSndBuf = 64 << 10
	o.TCPSndQueueLen = 128
	o.TCPCongestion = "newreno"
	o.TCPInitCwnd = 10
	o.TCPMinRTO = 200 * time.Millisecond
	o.TCPInitRTO = time.Second
	o.TCPMaxRTO = 60 * time.Second
	o.TCPMaxRtx = 6
	o.TCPSynMaxRtx = 3
	o.TCPMSL = 5 * time.Second
	o.TCPDelAckTimeout = 40 * time.Millisecond
	o.TCPKeepIdle = 2 * time.Minute
	o.TCPKeepIntvl = 15 * time.Second
	o.TCPKeepCnt = 4
	o.TCPListenBacklog = 16
	o.TCPSynCookies = true
	o.TCPOOSeqMaxPbufs = 0
	o.TCPChallengeAckLimit = 1000
	return o
}

// env is one stack under test: an iptest.Node (allocator, pools, timers, core lock, IP
// layer) with one MediumIP netif over a capture link (stamped with the fake time), TCP
// registered for protocol 6, and the test as the peer.
//
// The test runs in core context, as an application on the raw API does: newEnv takes the
// node's core lock and the test holds it, so its calls into TCP and IP need no lock of their
// own; it lets go only while the clock advances (the timers take it) and at the end.
type env struct {
	*iptest.Node
	t     *testing.T
	fam   family
	o     opt.Options
	clk   *clock.Fake
	start time.Time
	cap   *linktest.Capture
	tcp   *tcp.Proto

	local, remote netip.Addr

	out []*rxSeg // parsed frames not yet consumed by the test

	// lastTSval is the newest TSval the stack sent, echoed by the peer's segments.
	lastTSval uint32
	// peerTS is the peer's timestamp clock (TSval of the next segment the test sends).
	peerTS uint32

	// Per local port of a connection: what was negotiated, for the invariants checked on
	// every segment the stack sends (see checkInvariants).
	negotiated map[[2]uint16]negotiated

	// Segments the test injected to TCP and TCP segments the stack sent, to check the
	// lwIP counters (TCP.Recv, TCP.Xmit) at the end.
	injected, captured uint64
	// peerEnd is the highest sequence number the peer sent, per 4-tuple (notePeerEnd).
	peerEnd map[[2]uint16]uint32

	closed bool
}

// negotiated is what a connection agreed on in its handshake, and what the invariants
// track across its segments.
type negotiated struct {
	ts, sack bool
	shift    uint8 // the stack's window shift (0 without scaling)
	peerMSS  int   // the MSS the peer announced (or its default)

	seen     bool   // edge and ack hold values
	edge     uint32 // highest right edge of the window the stack advertised
	ack      uint32 // highest ACK the stack sent
	edgeSeen string // the segment that advertised edge
}

// newEnv builds the stack under test. mods adjust the options before anything is created.
func newEnv(t *testing.T, f family, mods ...func(*opt.Options)) *env {
	t.Helper()
	return newEnvWith(t, f, true, mods...)
}

// newEnvWith builds the env; withTCP false leaves protocol 6 to the caller (harness tests).
func newEnvWith(t *testing.T, f family, withTCP bool, mods ...func(*opt.Options)) *env {
	t.Helper()
	base := linktest.Goroutines()
	o := testOptions()
	for _, m := range mods {
		m(&o)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("options: %v", err)
	}
	e := &env{t: t, fam: f, o: o, peerTS: 1000, negotiated: map[[2]uint16]negotiated{},
		peerEnd: map[[2]uint16]uint32{}}
	e.start = time.Unix(1_700_000_000, 0)
	e.clk = clock.NewFake(e.start)
	e.Node = iptest.NewNode(t, e.clk, o, 7)
	e.cap = &linktest.Capture{Clock: e.clk}
	e.Attach(e.cap, netip.PrefixFrom(v4Local, 24), netip.PrefixFrom(v6Local, 64))
	if f == v6 {
		e.local, e.remote = v6Local, v6Remote
	} else {
		e.local, e.remote = v4Local, v4Remote
	}
	t.Cleanup(func() {
		e.close()
		linktest.CheckGoroutines(t, base)
	})
	e.Core.Lock() // the test's core context, until close
	if withTCP {
		e.tcp = e.newProto()
	}
	return e
}

// newProto creates TCP and registers it, to be closed (and checked) first when the node
// closes; it fails the test if New panics, so that a missing engine reports one clear line
// per test.
func (e *env) newProto() (p *tcp.Proto) {
	e.t.Helper()
	defer func() {
		if r := recover(); r != nil {
			e.IP.Close()
			e.Core.Unlock()
			e.closed = true
			e.t.Fatalf("tcp.New: %v", r)
		}
	}()
	p, err := tcp.New(e.TransportConfig(42))
	if err != nil {
		e.t.Fatalf("tcp.New: %v", err)
	}
	e.IP.RegisterTransport(wire.ProtoTCP, p)
	e.OnClose(func() {
		p.Close()
		if conns, ls := p.NumPCBs(); conns != 0 || ls != 0 {
			e.t.Errorf("after Proto.Close: %d connections, %d listeners", conns, ls)
		}
	})
	return p
}

// close checks the counters, leaves core context and closes the node: TCP and IP closed, no
// timer scheduled, every pool and the heap back to zero (iptest.Node.Close).
func (e *env) close() {
	e.t.Helper()
	if e.closed {
		return
	}
	e.closed = true
	if e.Core.Held() { // not when a test failed while the clock advanced
		if e.tcp != nil && !e.t.Failed() {
			e.checkCounters()
		}
		if e.t.Failed() && e.tcp != nil {
			e.t.Logf("counters at failure:%s", e.statsString())
			e.logUnconsumed()
		}
		e.Core.Unlock()
	}
	e.Node.Close()
	e.cap.Take()
}

// checkCounters checks the TCP counters against what the test saw: every segment sent is
// counted in Xmit, every segment received in Recv, and Drop is the sum of the Drop* reasons
// (stats/tcp.go).
func (e *env) checkCounters() {
	e.t.Helper()
	e.collect()
	s := e.stats()
	if s.TCP.Xmit != e.captured {
		e.t.Errorf("TCP.Xmit %d, the link saw %d TCP segments", s.TCP.Xmit, e.captured)
	}
	if s.TCP.Recv != e.injected {
		e.t.Errorf("TCP.Recv %d, the test sent %d TCP segments", s.TCP.Recv, e.injected)
	}
	v := reflect.ValueOf(s.TCPExt)
	var sum uint64
	for i := range v.NumField() {
		if strings.HasPrefix(v.Type().Field(i).Name, "Drop") {
			sum += v.Field(i).Uint()
		}
	}
	if s.TCP.Drop != sum {
		e.t.Errorf("TCP.Drop %d, the Drop* reasons add up to %d (stats/tcp.go: Drop is their sum)", s.TCP.Drop, sum)
	}
}

// elapsed is the fake time since the env was built.
func (e *env) elapsed() time.Duration { return e.clk.Now().Sub(e.start) }

// stats returns TCP's counters.
func (e *env) stats() stats.Snapshot {
	var s stats.Snapshot
	e.tcp.Stats(&s)
	return s
}

// statsString lists the non-zero TCP counters.
func (e *env) statsString() string {
	s := e.stats()
	var b strings.Builder
	for _, r := range []any{s.TCP, s.TCPExt} {
		v := reflect.ValueOf(r)
		for i := range v.NumField() {
			if x := v.Field(i).Uint(); x != 0 {
				fmt.Fprintf(&b, " %s=%d", v.Type().Field(i).Name, x)
			}
		}
	}
	return b.String()
}

func (e *env) logUnconsumed() {
	e.collect()
	for _, s := range e.out {
		e.t.Logf("unconsumed: %v", s)
	}
}

// advance moves the fake clock by d, running due timers: it lets go of the core lock, which
// flushes what the test sent, for the timers to take (each flushes what it sends).
func (e *env) advance(d time.Duration) {
	e.Core.Unlock()
	e.clk.Advance(d)
	e.Core.Lock()
}

// advanceUntil moves the clock in steps of step until the stack has sent something or max
// has passed; it reports the time waited.
func (e *env) advanceUntil(max, step time.Duration) time.Duration {
	start := e.elapsed()
	for e.elapsed()-start < max {
		if e.pending() > 0 {
			break
		}
		e.advance(step)
	}
	return e.elapsed() - start
}

// pending reports how many sent segments are waiting to be consumed.
func (e *env) pending() int {
	e.collect()
	return len(e.out)
}

// next pops the next segment the stack sent; it fails the test if there is none.
func (e *env) next() *rxSeg {
	e.t.Helper()
	e.collect()
	if len(e.out) == 0 {
		e.t.Fatalf("expected a segment, the stack sent nothing (at %v)", e.elapsed())
	}
	s := e.out[0]
	e.out = e.out[1:]
	return s
}

// drain pops every segment sent so far.
func (e *env) drain() []*rxSeg {
	e.collect()
	o := e.out
	e.out = nil
	return o
}

// expectNothing fails the test if the stack sent anything.
func (e *env) expectNothing(why string) {
	e.t.Helper()
	e.collect()
	if len(e.out) > 0 {
		for _, s := range e.out {
			e.t.Errorf("%s: expected no segment, got %v", why, s)
		}
		e.t.FailNow()
	}
}

// expectConns fails the test unless TCP holds want connections (listeners aside).
func (e *env) expectConns(want int, why string) {
	e.t.Helper()
	if n, _ := e.tcp.NumPCBs(); n != want {
		e.t.Errorf("%s: %d connections, want %d", why, n, want)
	}
}

// flagsEq compares control bits, ignoring PSH (a sender's choice).
func flagsEq(got, want wire.TCPFlags) bool {
	return got&^wire.TCPFlagPSH == want&^wire.TCPFlagPSH
}

// expectSeg pops the next segment and checks its flags (PSH ignored), seq, and ack (when
// ACK is expected). It returns the segment for further checks.
func (e *env) expectSeg(why string, flags wire.TCPFlags, seq, ack uint32) *rxSeg {
	e.t.Helper()
	e.collect()
	if len(e.out) == 0 {
		e.t.Fatalf("%s: expected [%v] seq=%d ack=%d, the stack sent nothing (at %v)", why, flags, seq, ack, e.elapsed())
	}
	s := e.next()
	if !flagsEq(s.Flags, flags) || s.SeqNum != seq || (flags.Has(wire.TCPFlagACK) && s.AckNum != ack) {
		e.t.Fatalf("%s: expected [%v] seq=%d ack=%d, got %v", why, flags, seq, ack, s)
	}
	return s
}

// expectFlags pops the next segment and checks only its flags.
func (e *env) expectFlags(why string, flags wire.TCPFlags) *rxSeg {
	e.t.Helper()
	s := e.next()
	if !flagsEq(s.Flags, flags) {
		e.t.Fatalf("%s: expected [%v], got %v", why, flags, s)
	}
	return s
}

// counter reads one TCPExt counter by pointer into a fresh snapshot.
func (e *env) ext() stats.TCPExt { return e.stats().TCPExt }

// checkCounter fails the test unless after-before == want for the named counter.
func checkDelta(t *testing.T, name string, before, after uint64, want uint64) {
	t.Helper()
	if after-before != want {
		t.Errorf("%s: went from %d to %d, want +%d", name, before, after, want)
	}
}

// checkAtLeast fails the test unless after-before >= want.
func checkAtLeast(t *testing.T, name string, before, after uint64, want uint64) {
	t.Helper()
	if after-before < want {
		t.Errorf("%s: went from %d to %d, want at least +%d", name, before, after, want)
	}
}

// seqLT etc. compare sequence numbers modulo 2^32 (RFC 9293 §3.4).
func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool  { return int32(a-b) > 0 }
func seqGEQ(a, b uint32) bool { return int32(a-b) >= 0 }

// pattern is n recognisable bytes.
func pattern(n int, seed byte) []byte { return linktest.Pattern(n, seed) }

// netipAP parses an address and pairs it with port.
func netipAP(addr string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), port)
}
