package conformance

// LISTEN: RFC 9293 §3.10.7.2, SYN cookies (RFC 4987 §3.6), listener close.

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/transport/tcp/secret"
	"github.com/wispstack/wisp/wire"
)

// routeMSS is the MSS the stack should announce on the capture link (MTU 1500): the MTU less
// the IP and TCP headers (RFC 9293 §3.7.1, RFC 8200 §5).
func (e *env) routeMSS() int { return e.cap.MTU() - e.fam.ipHdrLen() - wire.TCPMinHeaderLen }

func TestListenSynGetsSynAckWithOptions(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls := e.listen(listenPort, 0)
		po := modern()
		c := e.synToListener(ls, po)
		s := c.synack
		if s.src != e.local || s.dst != e.remote || s.SrcPort != listenPort || s.DstPort != peerPort {
			t.Errorf("SYN-ACK addressed %v:%d -> %v:%d", s.src, s.SrcPort, s.dst, s.DstPort)
		}
		if s.ttl != e.o.TCPTTL {
			t.Errorf("SYN-ACK TTL/hop limit %d, want TCPTTL %d", s.ttl, e.o.TCPTTL)
		}
		o := s.Options
		// RFC 9293 §3.7.1: the MSS option carries the largest segment we can receive.
		if !o.HasMSS || int(o.MSS) != min(e.routeMSS(), e.o.TCPMSS) {
			t.Errorf("SYN-ACK MSS option %v/%d, want %d", o.HasMSS, o.MSS, min(e.routeMSS(), e.o.TCPMSS))
		}
		// RFC 7323 §2.2, §3.2 and RFC 2018 §2: offered by the peer, so answered.
		if !o.HasWindowScale || o.WindowScale > 14 {
			t.Errorf("SYN-ACK window scale %v/%d, want an offered shift ≤ 14", o.HasWindowScale, o.WindowScale)
		}
		if !o.SACKPermitted {
			t.Error("SYN-ACK lacks SACK-permitted although the SYN offered it")
		}
		if !o.HasTimestamps || o.TSEcr != e.peerTS-1 {
			t.Errorf("SYN-ACK timestamps %v TSecr %d, want TSecr = the SYN's TSval %d", o.HasTimestamps, o.TSEcr, e.peerTS-1)
		}
		// RFC 7323 §2.2: the window of a SYN is never scaled.
		if s.Window == 0 {
			t.Error("SYN-ACK advertises a zero window")
		}
		c.ack()
		if len(ls.accepted) != 1 {
			t.Fatalf("AcceptFunc called %d times, want 1", len(ls.accepted))
		}
		pcb := ls.accepted[0]
		if st := pcb.State(); st != tcp.StateEstablished {
			t.Fatalf("accepted in %v", st)
		}
		if pcb.LocalAddr().Addr() != e.local || pcb.LocalAddr().Port() != listenPort ||
			pcb.RemoteAddr().Addr() != e.remote || pcb.RemoteAddr().Port() != peerPort {
			t.Errorf("accepted PCB %v <- %v", pcb.LocalAddr(), pcb.RemoteAddr())
		}
		c.checkOpened(pcb, o, true)
	})
}

// A SYN without options gets a SYN-ACK without window scale, SACK-permitted or timestamps
// (RFC 7323 §2.2: "MAY be sent in a <SYN,ACK> segment only if the corresponding option was
// received in the initial <SYN>"; §3.2 likewise; RFC 2018 §2).
func TestListenPlainSynGetsPlainSynAck(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls := e.listen(listenPort, 0)
		po := plain()
		po.mss = 0 // no MSS either: the peer's MSS defaults to 536 / 1220
		c := e.synToListener(ls, po)
		o := c.synack.Options
		if o.HasWindowScale || o.SACKPermitted || o.HasTimestamps {
			t.Errorf("SYN-ACK to a plain SYN carries options the SYN did not offer: %v", c.synack)
		}
		if !o.HasMSS {
			t.Error("SYN-ACK has no MSS option")
		}
		c.ack()
		ls.expectAccepted(t, 1, "not accepted")
		// RFC 9293 §3.7.1 (RFC 1122 §4.2.2.6): without an MSS option the send MSS is 536
		// for IPv4; RFC 8200 §8.3: 1220 for IPv6 (1280 less 60).
		want := 536
		if e.fam == v6 {
			want = 1220
		}
		if in := ls.accepted[0].Info(); in.MSS != want || in.SACK || in.Timestamps || in.SndWndScale != 0 || in.RcvWndScale != 0 {
			t.Errorf("Info: MSS %d (want %d) SACK %v TS %v scales %d/%d", in.MSS, want, in.SACK, in.Timestamps, in.SndWndScale, in.RcvWndScale)
		}
	})
}

// RFC 9293 §3.10.7.2: "An incoming RST segment could not be valid ... should be ignored."
func TestListenRSTIgnored(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		e.listen(listenPort, 0)
		e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: 5, flags: wire.TCPFlagRST, wnd: 1000})
		e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: 5, ack: 77, flags: wire.TCPFlagRST | wire.TCPFlagACK, wnd: 1000})
		e.expectNothing("RST to a listener")
		if conns, ls := e.tcp.NumPCBs(); conns != 0 || ls != 1 {
			t.Errorf("NumPCBs %d/%d, want 0/1", conns, ls)
		}
	})
}

// RFC 9293 §3.10.7.2: "Any acknowledgment is bad if it arrives on a connection still in the
// LISTEN state. An acceptable reset segment should be formed for any arriving ACK-bearing
// segment. The RST should be formatted as follows: <SEQ=SEG.ACK><CTL=RST>".
func TestListenACKGetsRST(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		e.listen(listenPort, 0)
		for _, tc := range []struct {
			name  string
			flags wire.TCPFlags
			data  []byte
		}{
			{"ACK", wire.TCPFlagACK, nil},
			{"ACK+data", wire.TCPFlagACK | wire.TCPFlagPSH, []byte("hello")},
			{"FIN+ACK", wire.TCPFlagFIN | wire.TCPFlagACK, nil},
			{"SYN+ACK", wire.TCPFlagSYN | wire.TCPFlagACK, nil},
		} {
			e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: 1234, ack: 987654, flags: tc.flags, wnd: 1000, data: tc.data})
			s := e.expectSeg(tc.name+" to a listener", wire.TCPFlagRST, 987654, 0)
			if s.DstPort != peerPort || s.SrcPort != listenPort || s.dst != e.remote {
				t.Errorf("%s: RST addressed to %v:%d from port %d", tc.name, s.dst, s.DstPort, s.SrcPort)
			}
			if len(s.data) != 0 {
				t.Errorf("%s: RST carries data", tc.name)
			}
		}
		// Neither SYN nor ACK nor RST (a bare FIN, bare data): "drop the segment and return".
		e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: 1234, flags: wire.TCPFlagFIN, wnd: 1000})
		e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: 1234, flags: wire.TCPFlagPSH, wnd: 1000, data: []byte("x")})
		e.expectNothing("segment with neither SYN nor ACK to a listener")
		e.expectConns(0, "after stray segments to a listener")
	})
}

// A SYN with a bad checksum is dropped without answer and counted (RFC 9293 §3.1: a segment
// with a bad checksum is discarded).
func TestListenBadChecksumSynDropped(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls := e.listen(listenPort, 0)
		before := e.stats()
		po := modern()
		e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN,
			wnd: 0xffff, opts: po.synOptions(e), badChecksum: true})
		e.expectNothing("SYN with a bad checksum")
		after := e.stats()
		checkDelta(t, "DropBadChecksum", before.TCPExt.DropBadChecksum, after.TCPExt.DropBadChecksum, 1)
		checkDelta(t, "TCP.Chkerr", before.TCP.Chkerr, after.TCP.Chkerr, 1)
		checkDelta(t, "TCP.Drop", before.TCP.Drop, after.TCP.Drop, 1)
		e.expectConns(0, "after a corrupt SYN")
		// The listener still works.
		e.passiveOpen(ls, plain())
	})
}

// RFC 4987 §3.6: with the backlog full, a SYN is answered with a cookie SYN-ACK and no
// state; the ACK that echoes the cookie completes the handshake with the MSS it encodes.
func TestListenBacklogFullSynCookie(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls := e.listen(listenPort, 1)
		// The first SYN fills the backlog of one and stays half-open.
		e.synToListener(ls, plain().from(peerPort+1))
		conns0 := e.conns()

		before := e.ext()
		po := plain()
		po.mss = 1300 // not in the cookie MSS table: the cookie encodes the largest entry below
		c := e.synToListener(ls, po)
		after := e.ext()
		checkDelta(t, "CookiesSent", before.CookiesSent, after.CookiesSent, 1)
		e.expectConns(conns0, "after a cookie SYN-ACK (no state allowed)")
		if !c.synack.Options.HasMSS {
			t.Error("cookie SYN-ACK without MSS option")
		}
		c.ack()
		if len(ls.accepted) != 1 {
			t.Fatalf("the cookie ACK did not complete the handshake (AcceptFunc calls: %d)", len(ls.accepted))
		}
		checkDelta(t, "CookiesValid", after.CookiesValid, e.ext().CookiesValid, 1)
		pcb := ls.accepted[0]
		if pcb.RemoteAddr().Port() != peerPort {
			t.Fatalf("accepted the wrong connection: %v", pcb.RemoteAddr())
		}
		// The cookie carries the largest secret.MSSTable entry ≤ 1300.
		want := 0
		for _, m := range secret.MSSTable {
			if m <= 1300 {
				want = int(m)
			}
		}
		if in := pcb.Info(); in.MSS != want {
			t.Errorf("cookie connection MSS %d, want %d (largest cookie table entry ≤ 1300)", in.MSS, want)
		}
		c.rec = ls.recs[0]
		c.pcb = pcb
		// The connection works: data in both directions.
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("through the cookie"))
		if string(c.rec.data) != "through the cookie" {
			t.Errorf("received %q", c.rec.data)
		}
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("ACK of data on a cookie connection")
	})
}

// With timestamps, a cookie handshake keeps window scaling and SACK (the options ride in the
// TSval, as Linux does).
func TestListenSynCookieKeepsOptionsWithTimestamps(t *testing.T) {
	e := newEnv(t, v4)
	ls := e.listen(listenPort, 1)
	e.synToListener(ls, plain().from(peerPort+1))
	before := e.ext()
	c := e.synToListener(ls, modern())
	if e.ext().CookiesSent != before.CookiesSent+1 {
		t.Fatal("no cookie SYN-ACK")
	}
	if !c.synack.Options.HasTimestamps || !c.synack.Options.HasWindowScale || !c.synack.Options.SACKPermitted {
		t.Errorf("cookie SYN-ACK to a full-option SYN: %v", c.synack)
	}
	c.ack()
	ls.expectAccepted(t, 1, "cookie ACK not accepted")
	in := ls.accepted[0].Info()
	if !in.SACK || !in.Timestamps || in.SndWndScale != 7 {
		t.Errorf("cookie connection lost options: SACK %v TS %v SndWndScale %d", in.SACK, in.Timestamps, in.SndWndScale)
	}
}

// An ACK whose cookie does not validate completes nothing: it is reset or dropped, and
// counted.
func TestListenBadCookie(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls := e.listen(listenPort, 1)
		half := plain()
		half.port = peerPort + 1
		e.synToListener(ls, half)
		c := e.synToListener(ls, plain()) // cookie SYN-ACK
		before := e.ext()
		s := c.seg(wire.TCPFlagACK, nil)
		s.ack = c.iss + 1 + 0x1000 // not the cookie
		e.inject(s)
		for _, r := range e.drain() {
			// RFC 9293 §3.10.7.2 would answer an ACK to a listener with <SEQ=SEG.ACK><CTL=RST>.
			if !flagsEq(r.Flags, wire.TCPFlagRST) || r.SeqNum != s.ack {
				t.Errorf("bad cookie answered with %v, want nothing or RST seq=%d", r, s.ack)
			}
		}
		ls.expectAccepted(t, 0, "a bad cookie was accepted")
		checkDelta(t, "CookiesFailed", before.CookiesFailed, e.ext().CookiesFailed, 1)
		// The right cookie still works afterwards.
		c.ack()
		if len(ls.accepted) != 1 {
			t.Error("the valid cookie ACK was not accepted after a bad one")
		}
	})
}

// Without cookies a SYN that finds the backlog full of half-open connections takes the slot
// of the oldest one, which is dropped silently (Linux drops the oldest request too); that
// peer's late ACK is then answered with a RST, so nobody is left hanging.
func TestListenBacklogFullNoCookies(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPSynCookies = false })
	ls := e.listen(listenPort, 1)
	oc := e.synToListener(ls, plain().from(peerPort+1))
	before := e.ext()
	c := e.synToListener(ls, plain())
	after := e.ext()
	checkDelta(t, "ListenOverflows", before.ListenOverflows, after.ListenOverflows, 1)
	checkDelta(t, "HalfOpenReaped", before.HalfOpenReaped, after.HalfOpenReaped, 1)
	if n := e.conns(); n != 1 {
		t.Errorf("%d connections, want 1 (the new half-open one)", n)
	}
	oc.ack()
	if r := e.expectFlags("the reaped connection's handshake ACK", wire.TCPFlagRST); r.SeqNum != oc.iss+1 {
		t.Errorf("RST seq %d, want %d", r.SeqNum, oc.iss+1)
	}
	c.ack()
	if len(ls.accepted) != 1 || ls.accepted[0].RemoteAddr().Port() != peerPort {
		t.Fatalf("the newer handshake was not accepted (%d accepted)", len(ls.accepted))
	}
}

// With cookies on but every TCP_PCB held by established connections (nothing in TIME-WAIT,
// nothing closed by the application, nothing half-open), a SYN is refused with a RST at
// once: a cookie here could never become a connection.
func TestListenRefusedWhenNoPCB(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.MempNumTCPPCB = 2 })
	ls, a := e.passiveOpened()
	e.passiveOpen(ls, plain().from(peerPort+1))
	before := e.ext()
	e.inject(segment{srcPort: peerPort + 2, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 1000})
	r := e.expectFlags("SYN with every PCB held", wire.TCPFlagRST|wire.TCPFlagACK)
	if r.AckNum != peerISS+1 {
		t.Errorf("RST ack %d, want %d", r.AckNum, peerISS+1)
	}
	after := e.ext()
	checkDelta(t, "SynRefused", before.SynRefused, after.SynRefused, 1)
	checkDelta(t, "CookiesSent", before.CookiesSent, after.CookiesSent, 0)
	a.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("alive"))
	if string(a.rec.data) != "alive" {
		t.Error("existing connection disturbed")
	}
	// Once a connection goes, the listener takes new ones again.
	a.pcb.Abort()
	e.drain()
	e.passiveOpen(ls, plain().from(peerPort+3))
}

// A cookie SYN-ACK went out while PCBs were free, but by the time its ACK comes every PCB is
// held: the ACK is answered with a RST (CookieRefused), so the client that believes it is
// connected learns at once that it is not.
func TestListenCookieACKWithoutPCB(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.MempNumTCPPCB = 3 })
	// A listener whose only backlog slot is held by an accepted, delayed connection.
	ls := e.listen(listenPort, 1)
	ls.delayAccepts(e)
	e.passiveOpen(ls, plain())
	cb := e.synToListener(ls, plain().from(peerPort+1))
	if e.ext().CookiesSent != 1 {
		t.Fatal("no cookie SYN-ACK for a SYN to the full backlog")
	}
	// Two established connections on another listener take the last PCBs.
	ls2 := e.listen(listenPort+1, 0)
	for i := range 2 {
		c := e.synToListener(ls2, plain().from(peerPort+10+uint16(i)))
		c.ack()
	}
	if n := e.conns(); n != 3 {
		t.Fatalf("%d connections, want 3 (the pool)", n)
	}
	before := e.ext()
	cb.ack()
	r := e.expectFlags("cookie ACK with every PCB held", wire.TCPFlagRST)
	if r.SeqNum != cb.iss+1 {
		t.Errorf("RST seq %d, want SEG.ACK %d", r.SeqNum, cb.iss+1)
	}
	checkDelta(t, "CookieRefused", before.CookieRefused, e.ext().CookieRefused, 1)
	if len(ls.accepted) != 1 {
		t.Errorf("%d accepted on the full listener, want 1", len(ls.accepted))
	}
}

// With the TCP_PCB pool held by a SYN flood's half-open connections, a new SYN reaps the
// oldest of them (after TIME-WAIT and closed-by-app PCBs) instead of being refused.
func TestListenPCBsHeldByHalfOpenReapsOldest(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.MempNumTCPPCB = 4 })
	ls := e.listen(listenPort, 100)
	for i := range 4 {
		e.synToListener(ls, plain().from(peerPort+100+uint16(i)))
	}
	before := e.ext()
	c := e.synToListener(ls, plain())
	checkDelta(t, "HalfOpenReaped", before.HalfOpenReaped, e.ext().HalfOpenReaped, 1)
	c.ack()
	ls.expectAccepted(t, 1, "new handshake not accepted while the pool held half-open connections")
}

// Listener.Close resets the connections it has not handed to AcceptFunc yet, and the port
// is closed afterwards.
func TestListenerCloseResetsPending(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls, c := e.synRcvd()
		if err := ls.l.Close(); err != nil {
			t.Fatalf("Listener.Close: %v", err)
		}
		// The half-open connection is reset: a RST the peer accepts carries SND.NXT.
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) || s.SeqNum != c.iss+1 {
			t.Errorf("pending connection: got %v, want RST seq=%d", s, c.iss+1)
		}
		e.expectNothing("after the reset")
		if conns, lsn := e.tcp.NumPCBs(); conns != 0 || lsn != 0 {
			t.Errorf("NumPCBs %d/%d after Listener.Close, want 0/0", conns, lsn)
		}
		// The handshake's ACK now finds no PCB: RST <SEQ=SEG.ACK>.
		c.ack()
		e.expectSeg("ACK to the closed listener's port", wire.TCPFlagRST, c.iss+1, 0)
	})
}

// Without an accept function, completed connections are reset (listen.go: "Without one,
// connections are reset").
func TestListenWithoutAcceptFuncResets(t *testing.T) {
	e := newEnv(t, v4)
	pcb, err := e.tcp.NewPCB()
	if err != nil {
		t.Fatal(err)
	}
	if err := pcb.Bind(netip.AddrPortFrom(e.local, listenPort)); err != nil {
		t.Fatal(err)
	}
	l, err := pcb.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	_ = l
	e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 1000})
	s := e.next()
	switch {
	case flagsEq(s.Flags, wire.TCPFlagRST|wire.TCPFlagACK) && s.AckNum == peerISS+1:
		// Refused at once.
	case flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK):
		e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: peerISS + 1, ack: s.SeqNum + 1, flags: wire.TCPFlagACK, wnd: 1000})
		var rst *rxSeg
		for _, r := range e.drain() {
			if r.Flags.Has(wire.TCPFlagRST) {
				rst = r
			}
		}
		if rst == nil || rst.SeqNum != s.SeqNum+1 {
			t.Fatalf("completed connection without AcceptFunc: got %v, want RST seq=%d", rst, s.SeqNum+1)
		}
	default:
		t.Fatalf("SYN to a listener without AcceptFunc: %v", s)
	}
	e.expectConns(0, "at the end")
}

// Bind errors (pcbapi.go): a taken port is errs.Use, a foreign address errs.Val.
func TestListenBindErrors(t *testing.T) {
	e := newEnv(t, v4)
	e.listen(listenPort, 0)
	pcb, err := e.tcp.NewPCB()
	if err != nil {
		t.Fatal(err)
	}
	if err := pcb.Bind(netip.AddrPortFrom(e.local, listenPort)); !errors.Is(err, errs.Use) {
		t.Errorf("Bind to a listening port: %v, want errs.Use", err)
	}
	if err := pcb.Bind(netip.AddrPortFrom(v4Remote, 81)); !errors.Is(err, errs.Val) {
		t.Errorf("Bind to a foreign address: %v, want errs.Val", err)
	}
	if err := pcb.Close(); err != nil {
		t.Errorf("Close of a CLOSED PCB: %v", err)
	}
}

// A cookie older than its lifetime (about two minutes, secret.CheckCookie) fails; a fresh
// cookie ACK may carry data, delivered after AcceptFunc.
func TestListenCookieExpiryAndData(t *testing.T) {
	e := newEnv(t, v4)
	ls := e.listen(listenPort, 1)
	half := plain()
	half.port = peerPort + 1
	e.synToListener(ls, half)
	old := e.synToListener(ls, plain())
	po := plain()
	po.port = peerPort + 2
	fresh := e.synToListener(ls, po)
	e.advance(5 * time.Minute)
	e.drain() // the half-open connection's SYN-ACK retransmissions
	before := e.ext()
	old.ack()
	e.drain()
	ls.expectAccepted(t, 0, "a five-minute-old cookie was accepted")
	checkDelta(t, "CookiesFailed", before.CookiesFailed, e.ext().CookiesFailed, 1)
	// A fresh one, with data on the ACK.
	fresh = e.synToListener(ls, po)
	fresh.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("cookie data"))
	ls.expectAccepted(t, 1, "fresh cookie not accepted")
	if got := string(ls.recs[0].data); got != "cookie data" {
		t.Errorf("data on the cookie ACK: delivered %q", got)
	}
}

// Once AcceptFunc returned, the connection no longer counts against the backlog: the next
// SYN gets an ordinary SYN-ACK, not a cookie.
func TestListenBacklogFreedByAccept(t *testing.T) {
	e := newEnv(t, v4)
	ls := e.listen(listenPort, 1)
	e.passiveOpen(ls, plain())
	before := e.ext()
	e.passiveOpen(ls, plain().from(peerPort+1))
	checkDelta(t, "CookiesSent", before.CookiesSent, e.ext().CookiesSent, 0)
	if e.conns() != 2 {
		t.Errorf("%d connections, want 2", e.conns())
	}
}

// A listener bound to an unspecified address takes connections to every local address of
// its family (pcbapi.go: "An unspecified address binds every local address"); bound to the
// zero Addr, to every local address of both families.
func TestListenUnspecifiedAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr netip.Addr
		fams []family
	}{
		{"0.0.0.0", netip.IPv4Unspecified(), []family{v4}},
		{"::", netip.IPv6Unspecified(), []family{v6}},
		{"zero", netip.Addr{}, []family{v4, v6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, v4)
			pcb, err := e.tcp.NewPCB()
			if err != nil {
				t.Fatal(err)
			}
			if err := pcb.Bind(netip.AddrPortFrom(tc.addr, listenPort)); err != nil {
				t.Fatalf("Bind(%v): %v", tc.addr, err)
			}
			l, err := pcb.Listen(0)
			if err != nil {
				t.Fatal(err)
			}
			ls := &listener{l: l}
			l.OnAccept(func(_ *tcp.Listener, c *tcp.PCB) {
				ls.accepted = append(ls.accepted, c)
				ls.recs = append(ls.recs, e.watch(c))
			})
			for i, f := range tc.fams {
				e.fam = f
				e.local, e.remote = v4Local, v4Remote
				if f == v6 {
					e.local, e.remote = v6Local, v6Remote
				}
				c := e.passiveOpen(ls, plain().from(peerPort+uint16(i)))
				if c.pcb.LocalAddr().Addr() != e.local {
					t.Errorf("%v: accepted connection's local address %v, want %v", f, c.pcb.LocalAddr(), e.local)
				}
			}
		})
	}
}
