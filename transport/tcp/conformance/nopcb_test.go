package conformance

// No connection: RFC 9293 §3.10.7.1 (CLOSED state): "all data in the incoming segment is
// discarded. An incoming segment containing a RST is discarded. An incoming segment not
// containing a RST causes a RST to be sent in response."

import (
	"net/netip"
	"testing"

	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

func TestClosedPortRST(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		e.listen(listenPort, 0) // a listener on another port changes nothing
		const port = listenPort + 1
		for _, tc := range []struct {
			name  string
			flags wire.TCPFlags
			seq   uint32
			ack   uint32
			data  int
			// The RST: "If the ACK bit is off, sequence number zero is used,
			// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. If the ACK bit is on,
			// <SEQ=SEG.ACK><CTL=RST>".
			wantFlags wire.TCPFlags
			wantSeq   uint32
			wantAck   uint32
		}{
			{"SYN", wire.TCPFlagSYN, 1000, 0, 0, wire.TCPFlagRST | wire.TCPFlagACK, 0, 1001},
			{"SYN+data", wire.TCPFlagSYN, 1000, 0, 10, wire.TCPFlagRST | wire.TCPFlagACK, 0, 1011},
			{"FIN", wire.TCPFlagFIN, 0xfffffff0, 0, 0, wire.TCPFlagRST | wire.TCPFlagACK, 0, 0xfffffff1},
			{"data", 0, 0xfffffffe, 0, 5, wire.TCPFlagRST | wire.TCPFlagACK, 0, 3},
			{"ACK", wire.TCPFlagACK, 1000, 5555, 0, wire.TCPFlagRST, 5555, 0},
			{"ACK+data", wire.TCPFlagACK | wire.TCPFlagPSH, 1000, 5555, 100, wire.TCPFlagRST, 5555, 0},
			{"SYN+ACK", wire.TCPFlagSYN | wire.TCPFlagACK, 1000, 7777, 0, wire.TCPFlagRST, 7777, 0},
			{"FIN+ACK", wire.TCPFlagFIN | wire.TCPFlagACK, 1000, 8888, 0, wire.TCPFlagRST, 8888, 0},
		} {
			before := e.ext()
			e.inject(segment{srcPort: peerPort, dstPort: port, seq: tc.seq, ack: tc.ack, flags: tc.flags,
				wnd: 1000, data: pattern(tc.data, 1)})
			s := e.expectSeg(tc.name+" to a closed port", tc.wantFlags, tc.wantSeq, tc.wantAck)
			if s.SrcPort != port || s.DstPort != peerPort || s.src != e.local || s.dst != e.remote {
				t.Errorf("%s: RST addressed %v:%d -> %v:%d", tc.name, s.src, s.SrcPort, s.dst, s.DstPort)
			}
			if len(s.data) != 0 || s.Options.NumSACK != 0 {
				t.Errorf("%s: RST carries data or SACK: %v", tc.name, s)
			}
			after := e.ext()
			checkDelta(t, tc.name+": DropNoPCB", before.DropNoPCB, after.DropNoPCB, 1)
			checkDelta(t, tc.name+": ResetsSent", before.ResetsSent, after.ResetsSent, 1)
		}
		if e.conns() != 0 {
			t.Errorf("%d connections created by segments to a closed port", e.conns())
		}
	})
}

// "An incoming segment containing a RST is discarded."
func TestClosedPortRSTNotAnswered(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		for _, fl := range []wire.TCPFlags{wire.TCPFlagRST, wire.TCPFlagRST | wire.TCPFlagACK,
			wire.TCPFlagRST | wire.TCPFlagSYN, wire.TCPFlagRST | wire.TCPFlagFIN} {
			e.inject(segment{srcPort: peerPort, dstPort: 81, seq: 1, ack: 2, flags: fl, wnd: 1000})
			e.expectNothing("RST (" + fl.String() + ") to a closed port")
		}
	})
}

// A segment for a port with a connection to another peer (or another peer port) finds no
// connection: RST.
func TestWrongTupleGetsRST(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(false, plain())
	s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("x"))
	s.srcPort = remotePort + 1
	e.inject(s)
	e.expectSeg("segment from another port of the peer", wire.TCPFlagRST, s.ack, 0)
	if len(c.rec.data) != 0 {
		t.Error("data from the wrong 4-tuple delivered")
	}
	c.state("connection after a stray segment", tcp.StateEstablished)
}

// A segment with a bad checksum to a closed port is dropped without a RST.
func TestClosedPortBadChecksumNoRST(t *testing.T) {
	e := newEnv(t, v6)
	before := e.ext()
	e.inject(segment{srcPort: peerPort, dstPort: 81, seq: 1, flags: wire.TCPFlagSYN, wnd: 1000, badChecksum: true})
	e.expectNothing("corrupt SYN to a closed port")
	checkDelta(t, "DropBadChecksum", before.DropBadChecksum, e.ext().DropBadChecksum, 1)
}

// RFC 1122 §4.2.3.10: "A TCP implementation MUST silently discard an incoming SYN segment
// that is addressed to a broadcast or multicast address"; no RST answers them either.
func TestBroadcastSegmentsIgnored(t *testing.T) {
	e := newEnv(t, v4)
	e.listen(listenPort, 0)
	for _, dst := range []string{"198.18.0.255", "255.255.255.255"} {
		for _, port := range []uint16{listenPort, listenPort + 1} {
			e.inject(segment{srcPort: peerPort, dstPort: port, seq: 1, flags: wire.TCPFlagSYN, wnd: 1000,
				dst: netip.MustParseAddr(dst)})
			e.inject(segment{srcPort: peerPort, dstPort: port, seq: 1, ack: 5, flags: wire.TCPFlagACK, wnd: 1000,
				dst: netip.MustParseAddr(dst)})
			e.expectNothing("segment to broadcast " + dst)
		}
	}
	if e.conns() != 0 {
		t.Error("connection created by a broadcast SYN")
	}
}

func TestMulticastSegmentsIgnored(t *testing.T) {
	e := newEnv(t, v6)
	e.listen(listenPort, 0)
	for _, port := range []uint16{listenPort, listenPort + 1} {
		e.inject(segment{srcPort: peerPort, dstPort: port, seq: 1, flags: wire.TCPFlagSYN, wnd: 1000,
			dst: netip.MustParseAddr("ff02::1")})
		e.expectNothing("SYN to ff02::1")
	}
}
