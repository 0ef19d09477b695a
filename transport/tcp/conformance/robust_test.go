package conformance

// Valid but unusual segments: reserved bits, ECN bits, IPv4 options, IPv6 extension
// headers, link padding after the IP packet. All must be processed like plain segments.

import (
	"testing"

	"github.com/wispstack/wisp/wire"
)

// RFC 9293 §3.1: reserved bits "must be zero in generated segments and must be ignored in
// received segments".
func TestReservedBitsIgnored(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("reserved"))
	c.injectCrafted(s, func(b []byte) { b[12] |= 0x0f }, "segment with reserved bits set")
	e.advance(e.o.TCPDelAckTimeout)
	r := c.expectAck("ACK")
	if wire.TCP(r.raw[20:])[12]&0x0f != 0 {
		t.Error("reserved bits set in a generated segment")
	}
}

// RFC 3168 §6.1.1: a host that does not do ECN answers an ECN-setup SYN (ECE|CWR) with a
// SYN-ACK without ECE; ECN bits on later segments change nothing.
func TestECNSetupSynNotAccepted(t *testing.T) {
	e := newEnv(t, v4)
	ls := e.listen(listenPort, 0)
	e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: peerISS,
		flags: wire.TCPFlagSYN | wire.TCPFlagECE | wire.TCPFlagCWR, wnd: 0xffff})
	s := e.next()
	if !flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) {
		t.Fatalf("ECN-setup SYN: got %v, want a SYN-ACK without ECE/CWR", s)
	}
	e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: peerISS + 1, ack: s.SeqNum + 1,
		flags: wire.TCPFlagACK | wire.TCPFlagECE, wnd: 0xffff, data: []byte("ecn")})
	if len(ls.accepted) != 1 || string(ls.recs[0].data) != "ecn" {
		t.Fatal("handshake with ECN bits did not complete")
	}
	e.advance(e.o.TCPDelAckTimeout)
	for _, r := range e.drain() {
		if r.Flags.Has(wire.TCPFlagECE) || r.Flags.Has(wire.TCPFlagCWR) {
			t.Errorf("ECN bits on a non-ECN connection: %v", r)
		}
	}
}

// The TCP header is found after IPv4 options and IPv6 extension headers, and the checksum's
// pseudo-header uses the TCP length only.
func TestIPOptionsAndExtensionHeaders(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(true, plain())
		s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("behind options"))
		seg := s.build(e.remote, e.local)
		var pkt []byte
		if e.fam == v4 {
			r := wire.IPv4Repr{TTL: 64, Protocol: wire.ProtoTCP, Src: e.remote, Dst: e.local, PayloadLen: len(seg), ID: 3,
				Options: []byte{wire.TCPOptNOP, wire.TCPOptNOP, wire.TCPOptNOP, 0}} // NOPs and EOL
			pkt = make([]byte, r.HeaderLen()+len(seg))
			copy(pkt[r.HeaderLen():], seg)
			if err := r.Emit(pkt); err != nil {
				t.Fatal(err)
			}
		} else {
			// A Destination Options header (RFC 8200 §4.6) with one PadN option.
			ext := []byte{wire.ProtoTCP, 0, 1, 4, 0, 0, 0, 0}
			r := wire.IPv6Repr{NextHeader: wire.ProtoIPv6DstOpts, HopLimit: 64, Src: e.remote, Dst: e.local,
				PayloadLen: len(ext) + len(seg)}
			pkt = make([]byte, wire.IPv6HeaderLen+len(ext)+len(seg))
			copy(pkt[wire.IPv6HeaderLen:], ext)
			copy(pkt[wire.IPv6HeaderLen+len(ext):], seg)
			if err := r.Emit(pkt); err != nil {
				t.Fatal(err)
			}
		}
		c.injectFramed(pkt, seg, s, "behind IP options")
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("ACK")
	})
}

// Bytes after the IP packet in the frame (Ethernet minimum-size padding, a sloppy link) are
// not TCP data.
func TestLinkPaddingIgnored(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(true, plain())
		s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("pad"))
		seg := s.build(e.remote, e.local)
		pkt := append(e.ipPacket(e.remote, e.local, seg), 0, 0, 0, 0, 0, 0)
		c.injectFramed(pkt, seg, s, "with 6 bytes of link padding")
		e.advance(e.o.TCPDelAckTimeout)
		c.expectAck("ACK")
	})
}

// A RST carrying data at RCV.NXT resets; the data is not delivered.
func TestRSTWithDataResetsWithoutDelivery(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	e.inject(c.seg(wire.TCPFlagRST|wire.TCPFlagACK, []byte("diagnostic")))
	if len(c.rec.data) != 0 {
		t.Errorf("RST data delivered: %q", c.rec.data)
	}
	if len(c.rec.errs) != 1 {
		t.Errorf("ErrFunc %v", c.rec.errs)
	}
}

// A duplicate FIN in CLOSE-WAIT is acknowledged again and reported once.
func TestDuplicateFINInCloseWait(t *testing.T) {
	e := newEnv(t, v6)
	c := e.established(false, plain())
	c.send(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	c.expectAckOfFIN("ACK of FIN")
	fin := c.seg(wire.TCPFlagFIN|wire.TCPFlagACK, nil)
	fin.seq = c.peerNxt - 1
	e.inject(fin)
	c.expectAck("ACK of the duplicate FIN")
	if c.rec.fins != 1 {
		t.Errorf("RecvFunc(nil) called %d times, want 1", c.rec.fins)
	}
}
