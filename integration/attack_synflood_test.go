package integration

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wispstack/wisp/wire"
)

// The SYN flood's size and bounds.
const (
	synFloodSYNs      = 100_000          // spoofed SYNs at least (-short: synFloodSYNsShort)
	synFloodSYNsShort = 10_000           //
	synFloodMaxSYNs   = 4                // × the above: the flood goes on until the probes are done, never past this
	synFloodMaxTime   = 30 * time.Second // nor past this
	synFloodBacklog   = 256              // per listener: half-open connections before cookies
	synFloodProbes    = 3                // kernel clients that must connect during the flood
)

// A flood of spoofed SYNs (IPv4 and IPv6, sources inside the TUN's prefixes, so wisp's
// SYN-ACKs go back into the TUN and the kernel, which owns none of those addresses and
// does not forward, drops them) against two wisp listeners, while an established
// connection keeps echoing byte-exact and new kernel clients connect and get their echo.
// Then the half-open connections must be gone within TCPSynRcvdTimeout, and no SYN-ACK
// may follow.
func TestAttackSYNFlood(t *testing.T) {
	o := attackOptions()
	o.TCPListenBacklog = synFloodBacklog
	e := newAttackEnv(t, 60, o)
	_, deadline := withDeadline(t, 90*time.Second)
	nSYN := synFloodSYNs
	if testing.Short() {
		nSYN = synFloodSYNsShort
	}

	echoServers(t, e.s, netip.AddrPortFrom(e.wisp[0], 80), netip.AddrPortFrom(e.wisp[1], 80),
		netip.AddrPortFrom(e.wisp[0], 7))

	// SYN-ACKs wisp sends to the spoofed sources, and when the last one went.
	var synAcks atomic.Int64
	var lastSynAck atomic.Int64
	sn := newSniffer(t, e, filterSynAckFromWisp, func(p []byte, _ bool) {
		if s, ok := parseSniffedTCP(p); ok && s.dst.Addr() != e.kern[0] && s.dst.Addr() != e.kern[1] {
			synAcks.Add(1)
			lastSynAck.Store(time.Now().UnixNano())
		}
	})

	bulk := startStream(e.ns.dial(t, "tcp4", netip.AddrPortFrom(e.wisp[0], 7)), 60, deadline)
	if _, ok := pollUntil(5*time.Second, func() bool { return bulk.recv.Load() > 1<<20 }); !ok {
		t.Fatalf("the established connection moved only %d bytes before the flood", bulk.recv.Load())
	}

	// Kernel clients connect and exchange an echo while the flood runs.
	var flooding atomic.Bool
	flooding.Store(true)
	var probesOK atomic.Int64
	var probeErrs []error
	var probeMu sync.Mutex
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		for i := 0; flooding.Load() && time.Now().Before(deadline); i++ {
			f := families[i%2]
			msg := fmt.Appendf(nil, "probe %d during the SYN flood", i)
			err := echoOnce(e.ns, f.net, netip.AddrPortFrom(e.wisp[f.idx], 80), msg, 5*time.Second)
			if !flooding.Load() {
				return // ended after the flood: neither proof nor failure
			}
			if err != nil {
				probeMu.Lock()
				probeErrs = append(probeErrs, fmt.Errorf("%s probe %d: %w", f.name, i, err))
				probeMu.Unlock()
				continue
			}
			probesOK.Add(1)
		}
	}()

	j := newInjector(t, e)
	rng := rand.New(rand.NewPCG(60, 11))
	spoof := func(v6 bool) netip.Addr {
		if v6 {
			a := e.wisp[1].As16()
			for i := 8; i < 16; i++ {
				a[i] = byte(rng.UintN(256))
			}
			a[8] |= 0x80 // never ::1 or ::2
			return netip.AddrFrom16(a)
		}
		a := e.wisp[0].As4()
		a[3] = byte(10 + rng.UintN(240)) // .10-.249: neither wisp nor the kernel
		return netip.AddrFrom4(a)
	}
	before := e.s.Stats()
	recvBefore := bulk.recv.Load()
	syn := func() []byte {
		v6 := rng.UintN(2) == 1
		dst := e.wisp[0]
		if v6 {
			dst = e.wisp[1]
		}
		s := tcpSeg{src: netip.AddrPortFrom(spoof(v6), uint16(1024+rng.UintN(64512))), dst: netip.AddrPortFrom(dst, 80),
			seq: rng.Uint32(), flags: wire.TCPFlagSYN, wnd: 64240, opts: linuxSYNOptions(rng.Uint32())}
		return s.packet()
	}
	floodTime, floodErr := j.flood(uint64(nSYN), uint64(synFloodMaxSYNs*nSYN), time.Now().Add(synFloodMaxTime), syn,
		func() bool { return probesOK.Load() >= synFloodProbes }, nil)
	recvDuring := bulk.recv.Load() - recvBefore
	flooding.Store(false)
	stopped := time.Now()
	during := e.s.Stats()
	<-probesDone
	t.Logf("flood: %d spoofed SYNs in %v (%.0f/s; %d qdisc back-offs), wisp read %d frames; the established connection echoed %d bytes meanwhile; %d probes connected",
		j.sent, floodTime.Round(time.Millisecond), float64(j.sent)/floodTime.Seconds(), j.backoff,
		e.framesRead()-j.base, recvDuring, probesOK.Load())
	x, x0 := during.TCPExt, before.TCPExt
	t.Logf("wisp: cookies sent %d, listen overflows %d, PCB exhausted %d, SYN refused %d, half-open reaped %d; SYN-ACKs sniffed %d (sniffer dropped %d)",
		x.CookiesSent-x0.CookiesSent, x.ListenOverflows-x0.ListenOverflows, x.PCBExhausted, x.SynRefused,
		x.HalfOpenReaped, synAcks.Load(), sn.drops())

	j.checkFlood(t, floodErr, uint64(nSYN), floodTime, "SYNs")
	if recvDuring <= 0 {
		t.Errorf("the established connection made no progress during the flood")
	}
	probeMu.Lock()
	for _, err := range probeErrs {
		t.Errorf("a kernel client failed during the flood: %v", err)
	}
	probeMu.Unlock()
	if probesOK.Load() < synFloodProbes {
		t.Errorf("%d kernel clients connected during the flood, want %d", probesOK.Load(), synFloodProbes)
	}
	if x.CookiesSent == 0 || x.ListenOverflows == 0 {
		t.Errorf("no SYN cookies (%d) or listen overflows (%d) after %d SYNs to a backlog of %d",
			x.CookiesSent, x.ListenOverflows, j.sent, synFloodBacklog)
	}
	// At most one SYN-ACK per SYN, plus the retransmissions of the half-open connections the
	// two backlogs hold (each lives at most TCPSynAckMaxRtx retransmissions).
	maxSynAcks := int64(j.sent) + int64(2*synFloodBacklog*o.TCPSynAckMaxRtx)
	if x.CookiesSent-x0.CookiesSent > j.sent+uint64(probesOK.Load())*2 {
		t.Errorf("%d cookies sent for %d SYNs", x.CookiesSent-x0.CookiesSent, j.sent)
	}
	if synAcks.Load() > maxSynAcks {
		t.Errorf("%d SYN-ACKs to spoofed sources for %d SYNs (at most %d)", synAcks.Load(), j.sent, maxSynAcks)
	}

	if err := bulk.finish(); err != nil {
		t.Fatalf("the established connection after the flood: %v", err)
	}
	t.Logf("the established connection echoed %d bytes byte-exact", bulk.recv.Load())

	// Every connection is closed now: what remains is half-open, and must expire.
	limit := o.TCPSynRcvdTimeout + 2*time.Second
	_, ok := pollUntil(limit, func() bool { return tcpConns(e.s) == 0 })
	gone := time.Since(stopped)
	after := e.s.Stats()
	if !ok {
		t.Errorf("%d connections still held %v after the flood (TCPSynRcvdTimeout %v); half-open timeouts %d",
			tcpConns(e.s), time.Since(stopped).Round(time.Millisecond), o.TCPSynRcvdTimeout, after.TCPExt.HalfOpenTimeouts)
	} else {
		t.Logf("half-open connections gone %v after the flood (half-open timeouts %d)",
			gone.Round(time.Millisecond), after.TCPExt.HalfOpenTimeouts)
		if after.TCPExt.HalfOpenTimeouts == 0 && after.TCPExt.HalfOpenReaped == 0 {
			t.Errorf("the half-open connections left without HalfOpenTimeouts or HalfOpenReaped counting them")
		}
	}
	time.Sleep(500 * time.Millisecond)
	if last := time.Unix(0, lastSynAck.Load()); last.After(stopped.Add(o.TCPSynRcvdTimeout + 500*time.Millisecond)) {
		t.Errorf("wisp still sent a SYN-ACK to a spoofed source %v after the flood (TCPSynRcvdTimeout %v)",
			last.Sub(stopped).Round(time.Millisecond), o.TCPSynRcvdTimeout)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("wisp stats:\n%s", statsTable(e.s))
	}
}
