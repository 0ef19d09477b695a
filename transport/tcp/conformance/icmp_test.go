package conformance

// ICMP errors about our segments (RFC 1122 §4.2.3.9, RFC 1191, RFC 8201, RFC 5927) and the
// MSS clamp to the route MTU.

import (
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// injectICMPError sends an ICMP error from the peer quoting the IP packet q (as the stack
// sent it): "too-big" with mtu, or "port-unreachable".
func (e *env) injectICMPError(kind string, mtu int, q []byte) {
	e.t.Helper()
	quote := q[:min(len(q), 548)]
	if e.fam == v4 {
		r := wire.ICMPv4Repr{Type: wire.ICMPv4DestUnreach, Code: wire.ICMPv4PortUnreach, PayloadLen: len(quote)}
		switch kind {
		case "too-big":
			r.Code, r.NextHopMTU = wire.ICMPv4FragNeeded, uint16(mtu)
		case "host-unreachable":
			r.Code = wire.ICMPv4HostUnreach
		}
		b := make([]byte, 8+len(quote))
		copy(b[8:], quote)
		if err := r.Emit(b); err != nil {
			e.t.Fatal(err)
		}
		e.injectRawIP(wire.ProtoICMP, b)
		return
	}
	r := wire.ICMPv6Repr{Type: wire.ICMPv6DestUnreach, Code: wire.ICMPv6PortUnreach, PayloadLen: len(quote)}
	switch kind {
	case "too-big":
		r.Type, r.Code, r.MTU = wire.ICMPv6PacketTooBig, 0, uint32(mtu)
	case "host-unreachable":
		r.Code = wire.ICMPv6AddrUnreach
	}
	b := make([]byte, 8+len(quote))
	copy(b[8:], quote)
	if err := r.Emit(b, e.remote, e.local); err != nil {
		e.t.Fatal(err)
	}
	e.injectRawIP(wire.ProtoICMPv6, b)
}

// injectRawIP wraps payload in an IP header for protocol proto from the peer.
func (e *env) injectRawIP(proto uint8, payload []byte) {
	e.t.Helper()
	var pkt []byte
	if e.fam == v4 {
		r := wire.IPv4Repr{TTL: 64, Protocol: proto, Src: e.remote, Dst: e.local, PayloadLen: len(payload), ID: 9}
		pkt = make([]byte, r.HeaderLen()+len(payload))
		copy(pkt[r.HeaderLen():], payload)
		if err := r.Emit(pkt); err != nil {
			e.t.Fatal(err)
		}
	} else {
		r := wire.IPv6Repr{NextHeader: proto, HopLimit: 64, Src: e.remote, Dst: e.local, PayloadLen: len(payload)}
		pkt = make([]byte, wire.IPv6HeaderLen+len(payload))
		copy(pkt[wire.IPv6HeaderLen:], payload)
		if err := r.Emit(pkt); err != nil {
			e.t.Fatal(err)
		}
	}
	e.injectFrame(pkt)
}

// RFC 9293 §3.7.1: the MSS we announce is clamped to the route's MTU.
func TestMSSClampedToRouteMTU(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		if err := e.Netif.SetMTU(1280); err != nil {
			t.Fatal(err)
		}
		e.cap.Mtu = 1280
		want := 1280 - e.fam.ipHdrLen() - 20
		ls, c := e.synRcvd()
		if int(c.synack.Options.MSS) != want {
			t.Errorf("SYN-ACK MSS %d on a 1280-byte MTU route, want %d", c.synack.Options.MSS, want)
		}
		c.ack()
		c.pcb, c.rec = ls.accepted[0], ls.recs[0]
		c.pcb.SetNoDelay(true)
		c.write(pattern(5000, 1))
		for _, s := range e.drain() {
			if len(s.data) > want || len(s.raw) > 1280 {
				t.Errorf("segment of %d bytes (%d-byte packet) on a 1280-byte MTU route", len(s.data), len(s.raw))
			}
		}
		// Active opens too.
		d, _ := e.connect(nil)
		if int(d.synack.Options.MSS) != want {
			t.Errorf("SYN MSS %d on a 1280-byte MTU route, want %d", d.synack.Options.MSS, want)
		}
	})
}

// RFC 1191 / RFC 8201: a Packet Too Big lowers the MSS; the data is sent again in segments
// that fit.
func TestPacketTooBigLowersMSS(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.activeOpenRTT(plain(), 20*time.Millisecond)
		segs := c.flight(3)
		const mtu = 1280
		e.injectICMPError("too-big", mtu, segs[0].raw)
		want := mtu - e.fam.ipHdrLen() - 20
		got := 0
		for e.elapsed() < 10*time.Second && got < 3*len(segs[0].data) {
			for _, s := range e.drain() {
				if len(s.raw) > mtu {
					t.Fatalf("after Packet Too Big (MTU %d): sent a %d-byte packet %v", mtu, len(s.raw), s)
				}
				got += len(s.data)
			}
			e.advance(10 * time.Millisecond)
		}
		if got < 3*len(segs[0].data) {
			t.Fatalf("after Packet Too Big only %d bytes were sent again", got)
		}
		if in := c.pcb.Info(); in.MSS > want {
			t.Errorf("Info.MSS %d after Packet Too Big %d, want ≤ %d", in.MSS, mtu, want)
		}
		if len(c.rec.errs) != 0 {
			t.Errorf("Packet Too Big killed the connection: %v", c.rec.errs)
		}
	})
}

// A Packet Too Big announcing a larger MTU than in use, or quoting a sequence number we
// never sent (RFC 5927 §4.1), changes nothing.
func TestPacketTooBigIgnoredWhenBogus(t *testing.T) {
	e := newEnv(t, v4)
	c := e.activeOpenRTT(plain(), 20*time.Millisecond)
	segs := c.flight(1)
	e.injectICMPError("too-big", 9000, segs[0].raw)
	bogus := append([]byte(nil), segs[0].raw...)
	wire.TCP(bogus[20:]).SetSeqNum(segs[0].SeqNum + 1<<30)
	e.injectICMPError("too-big", 600, bogus)
	if in := c.pcb.Info(); in.MSS != 1460 {
		t.Errorf("Info.MSS %d after bogus Packet Too Big messages, want 1460", in.MSS)
	}
	e.drain()
}

// RFC 1122 §4.2.3.9: port unreachable is a hard error ("TCP SHOULD abort the connection"):
// the connect fails with errs.Refused (pcbapi.go), at once or after its SYN retries.
func TestPortUnreachableInSynSent(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, _ := e.connect(nil)
		e.injectICMPError("port-unreachable", 0, c.synack.raw)
		for e.elapsed() < 2*time.Minute && len(c.rec.errs) == 0 {
			e.advance(100 * time.Millisecond)
		}
		e.drain()
		if !errors.Is(c.rec.err(), errs.Refused) {
			t.Errorf("connect after ICMP port unreachable failed with %v, want errs.Refused", c.rec.errs)
		}
	})
}

// RFC 1122 §4.2.3.9: host unreachable is a soft error: "TCP MUST NOT abort the
// connection"; the SYN keeps being retransmitted and the connect fails only after its
// retries.
func TestHostUnreachableInSynSentIsSoft(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c, _ := e.connect(nil)
		e.injectICMPError("host-unreachable", 0, c.synack.raw)
		if len(c.rec.errs) != 0 {
			t.Fatalf("ICMP host unreachable aborted the connect at once: %v (RFC 1122 §4.2.3.9: soft error)", c.rec.errs)
		}
		e.advanceUntil(rtoWait, 10*time.Millisecond)
		s := e.next()
		if !flagsEq(s.Flags, wire.TCPFlagSYN) {
			t.Fatalf("after ICMP: %v, want the SYN retransmitted", s)
		}
		// The peer answers after all: the connection completes.
		e.synAck(c, plain())
		c.expectAck("handshake after a soft ICMP error")
		c.state("after SYN-ACK", tcp.StateEstablished)
	})
}

// An ICMP error for an established connection does not abort it (RFC 1122 §4.2.3.9, RFC
// 5927 §4.2).
func TestPortUnreachableEstablishedIgnored(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(false, plain())
	c.write([]byte("x"))
	s := c.expectData("x", 1)
	e.injectICMPError("port-unreachable", 0, s.raw)
	if len(c.rec.errs) != 0 {
		t.Fatalf("ICMP error aborted an established connection: %v", c.rec.errs)
	}
	c.ack()
}

// RFC 8201 §4: "A node MUST NOT reduce its estimate of the Path MTU below the IPv6 minimum
// link MTU": a Packet Too Big below 1280 leaves segments of a 1280-byte packet.
func TestPacketTooBigBelowIPv6Minimum(t *testing.T) {
	e := newEnv(t, v6)
	c := e.activeOpenRTT(plain(), 20*time.Millisecond)
	segs := c.flight(2)
	e.injectICMPError("too-big", 600, segs[0].raw)
	if in := c.pcb.Info(); in.MSS < 1220 {
		t.Errorf("Info.MSS %d after a Packet Too Big of 600 on IPv6, want ≥ 1220 (1280 - 60)", in.MSS)
	}
	e.advance(time.Second)
	for _, s := range e.drain() {
		if len(s.data) > 0 && len(s.data) < 1000 {
			t.Errorf("segment of %d bytes after a bogus Packet Too Big below 1280", len(s.data))
		}
	}
	c.ackTo(c.stackNxt)
}

// ICMP errors quoting a connection that does not exist, a listener's port or a TIME-WAIT
// connection change nothing and break nothing.
func TestICMPForUnknownOrQuietConnections(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls, c := e.passiveOpened()
		c.write([]byte("x"))
		s := c.expectData("x", 1)
		c.ack()
		// Another port of the peer: no such connection.
		bogus := append([]byte(nil), s.raw...)
		hl := e.fam.ipHdrLen()
		wire.TCP(bogus[hl:]).SetDstPort(peerPort + 7)
		for _, kind := range []string{"too-big", "port-unreachable", "host-unreachable"} {
			e.injectICMPError(kind, 1280, bogus)
		}
		// The TIME-WAIT connection.
		c.timeWait()
		for _, kind := range []string{"too-big", "port-unreachable", "host-unreachable"} {
			e.injectICMPError(kind, 1280, s.raw)
		}
		e.expectNothing("ICMP errors about nothing")
		e.passiveOpen(ls, plain().from(peerPort+1))
	})
}
