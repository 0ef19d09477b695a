package integration

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// The fragment flood's size and bounds.
const (
	fragFlood      = 100_000 // never-completed fragments at least (-short: fragFloodShort)
	fragFloodShort = 10_000
	fragFloodMax   = 4 // × the above: the flood goes on until the probes are done, never past this
	fragFloodTime  = 30 * time.Second
	fragMaxAge     = 3 * time.Second // Options.IPReassMaxAge for the test
)

var pingReceived = regexp.MustCompile(`(\d+) received`)

// pingCount runs the kernel's ping inside ns and returns how many replies came back.
func pingCount(ns *netns, dst string, size, count int) (int, string) {
	out, _ := ns.cmd("ping", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2", "-s", strconv.Itoa(size), dst).CombinedOutput()
	m := pingReceived.FindSubmatch(out)
	if m == nil {
		return 0, string(out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n, string(out)
}

// A flood of fragments that never complete (IPv4 and IPv6, a new datagram each, from
// sources inside the TUN's prefixes; first, middle and last fragments of up to 1400 bytes)
// while the kernel pings wisp with fragmented echoes and a TCP connection echoes
// byte-exact. Reassembly must stay inside its pools (REASSDATA, IPReassMaxPbufs) and never
// exhaust the receive pool, count its evictions and, once the flood stops, time out what
// is left.
func TestAttackFragments(t *testing.T) {
	requireTool(t, "ping")
	o := attackOptions()
	o.IPReassMaxAge = fragMaxAge
	e := newAttackEnv(t, 63, o)
	ctx, deadline := withDeadline(t, 90*time.Second)
	n := fragFlood
	if testing.Short() {
		n = fragFloodShort
	}
	echoServers(t, e.s, netip.AddrPortFrom(e.wisp[0], 7))
	bulk := startStream(e.ns.dial(t, "tcp4", netip.AddrPortFrom(e.wisp[0], 7)), 63, deadline)

	// Probes during the flood: fragmented pings both ways.
	var probeMu sync.Mutex
	probes := map[string]int{}
	var probeOut []string
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		for _, dst := range []string{e.wisp[0].String(), e.wisp[1].String()} {
			got, out := pingCount(e.ns, dst, 3000, 5)
			probeMu.Lock()
			probes[dst] = got
			probeOut = append(probeOut, out)
			probeMu.Unlock()
		}
	}()
	doneProbing := func() bool {
		select {
		case <-probesDone:
			return true
		default:
			return false
		}
	}

	j := newInjector(t, e)
	rng := rand.New(rand.NewPCG(63, 3))
	var id uint32
	frag := func() []byte {
		id++
		v6 := id%2 == 0
		size := 8 * int(1+rng.UintN(175)) // up to 1400 bytes, a multiple of 8
		data := make([]byte, size)
		off, more := 0, true
		switch rng.UintN(3) {
		case 1: // a middle fragment
			off = 8 * int(1+rng.UintN(4000))
		case 2: // a last fragment
			off, more = 8*int(1+rng.UintN(4000)), false
		}
		if v6 {
			src := e.wisp[1].As16()
			binary.BigEndian.PutUint64(src[8:], rng.Uint64()|1<<63)
			fh := make([]byte, wire.IPv6FragmentHeaderLen)
			wire.EmitIPv6Fragment(fh, wire.ProtoUDP, off, more, id)
			return ipPacket(netip.AddrFrom16(src), e.wisp[1], wire.ProtoIPv6Frag, 0, append(fh, data...))
		}
		src := e.wisp[0].As4()
		src[3] = byte(10 + rng.UintN(240))
		r := wire.IPv4Repr{ID: uint16(id), MoreFragments: more, FragmentOffset: off, TTL: injectTTL,
			Protocol: wire.ProtoUDP, Src: netip.AddrFrom4(src), Dst: e.wisp[0], PayloadLen: size}
		p := make([]byte, r.HeaderLen()+size)
		r.Emit(p)
		return p
	}

	var maxPool, maxReass, maxFrags int
	sample := func() {
		snap := e.s.Stats()
		p, _ := snap.Pool("PBUF_POOL")
		rd, _ := snap.Pool("REASSDATA")
		rf, _ := snap.Pool("REASS_FRAG")
		maxPool, maxReass, maxFrags = max(maxPool, p.Used), max(maxReass, rd.Used), max(maxFrags, rf.Used)
	}
	before := e.s.Stats()
	recvBefore := bulk.recv.Load()
	floodTime, floodErr := j.flood(uint64(n), uint64(fragFloodMax*n), time.Now().Add(fragFloodTime), frag, doneProbing, sample)
	recvDuring := bulk.recv.Load() - recvBefore
	stopped := time.Now()
	select {
	case <-probesDone:
	case <-ctx.Done():
		t.Fatal("the pings during the flood did not end")
	}
	pollUntil(5*time.Second, func() bool { return e.framesRead()-j.base >= j.sent })
	during := e.s.Stats()
	d := func(get func(*stats.Snapshot) uint64) uint64 { return get(&during) - get(&before) }
	t.Logf("flood: %d fragments in %v (%.0f/s; %d qdisc back-offs), wisp read %d frames; the TCP echo moved %d bytes meanwhile",
		j.sent, floodTime.Round(time.Millisecond), float64(j.sent)/floodTime.Seconds(), j.backoff, e.framesRead()-j.base, recvDuring)
	t.Logf("reassembly: IPv4 %d received, %d dropped (%d evicted/no memory, %d timed out); IPv6 %d received, %d dropped (%d evicted/no memory, %d timed out); most in use: REASSDATA %d/%d, REASS_FRAG %d/%d, PBUF_POOL %d/%d",
		d(func(s *stats.Snapshot) uint64 { return s.IPFrag.Recv }), d(func(s *stats.Snapshot) uint64 { return s.IPFrag.Drop }),
		d(func(s *stats.Snapshot) uint64 { return s.IPFrag.Memerr }), d(func(s *stats.Snapshot) uint64 { return s.IPFrag.Err }),
		d(func(s *stats.Snapshot) uint64 { return s.IP6Frag.Recv }), d(func(s *stats.Snapshot) uint64 { return s.IP6Frag.Drop }),
		d(func(s *stats.Snapshot) uint64 { return s.IP6Frag.Memerr }), d(func(s *stats.Snapshot) uint64 { return s.IP6Frag.Err }),
		maxReass, o.MempNumReassData, maxFrags, o.IPReassMaxPbufs, maxPool, o.PbufPoolSize)
	probeMu.Lock()
	t.Logf("fragmented pings during the flood: %v", probes)
	for dst, got := range probes {
		if got == 0 {
			t.Errorf("no fragmented ping to %s came back during the flood:\n%v", dst, probeOut)
		}
	}
	probeMu.Unlock()

	j.checkFlood(t, floodErr, uint64(n), floodTime, "fragments")
	if recvDuring <= 0 {
		t.Errorf("the TCP echo made no progress during the flood")
	}
	if d(func(s *stats.Snapshot) uint64 { return s.IPFrag.Memerr }) == 0 || d(func(s *stats.Snapshot) uint64 { return s.IP6Frag.Memerr }) == 0 {
		t.Errorf("%d datagrams for %d slots, yet no eviction counted (IP_FRAG/IP6_FRAG memerr)", j.sent, o.MempNumReassData)
	}
	if maxReass > o.MempNumReassData || maxFrags > o.IPReassMaxPbufs {
		t.Errorf("reassembly held %d datagrams and %d fragments (bounds %d, %d)", maxReass, maxFrags, o.MempNumReassData, o.IPReassMaxPbufs)
	}
	if p, _ := during.Pool("PBUF_POOL"); p.Err > 0 {
		t.Errorf("the receive pool ran out %d times during the flood", p.Err)
	}

	// What the flood left times out.
	if _, ok := pollUntil(fragMaxAge+2*time.Second, func() bool {
		snap := e.s.Stats()
		rd, _ := snap.Pool("REASSDATA")
		rf, _ := snap.Pool("REASS_FRAG")
		return rd.Used == 0 && rf.Used == 0
	}); !ok {
		t.Errorf("datagrams still under reassembly %v after the flood (IPReassMaxAge %v)", time.Since(stopped).Round(time.Millisecond), fragMaxAge)
	}
	after := e.s.Stats()
	if after.IPFrag.Err == during.IPFrag.Err && after.IP6Frag.Err == during.IP6Frag.Err {
		t.Errorf("no reassembly timeout counted after the flood (IP_FRAG err %d, IP6_FRAG err %d)", after.IPFrag.Err, after.IP6Frag.Err)
	}

	// And afterwards: pings (small and fragmented) and the TCP echo, byte-exact.
	kernelPings(t, e.ns, e.wisp[0].String(), e.wisp[1].String())
	if err := bulk.finish(); err != nil {
		t.Fatalf("the TCP echo after the flood: %v", err)
	}
	t.Logf("the TCP echo moved %d bytes byte-exact", bulk.recv.Load())
	if t.Failed() || testing.Verbose() {
		t.Logf("wisp stats:\n%s", statsTable(e.s))
	}
}
