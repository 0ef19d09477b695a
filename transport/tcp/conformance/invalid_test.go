package conformance

// Field validation: every malformed segment is dropped without an answer and counted under
// its own reason (stats.TCPExt Drop*, plus lwIP's Chkerr / Lenerr / Opterr in the TCP record).

import (
	"testing"

	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

type malformed struct {
	name   string
	mangle func(s *segment)
	// reason reads the TCPExt counter that must grow by one; proto the lwIP field (nil: not
	// checked).
	reason func(x *stats.TCPExt) uint64
	proto  func(p *stats.Proto) uint64
}

func malformations() []malformed {
	badHeader := func(x *stats.TCPExt) uint64 { return x.DropBadHeader }
	badOption := func(x *stats.TCPExt) uint64 { return x.DropBadOption }
	lenerr := func(p *stats.Proto) uint64 { return p.Lenerr }
	opterr := func(p *stats.Proto) uint64 { return p.Opterr }
	return []malformed{
		{"bad-checksum", func(s *segment) { s.badChecksum = true },
			func(x *stats.TCPExt) uint64 { return x.DropBadChecksum }, func(p *stats.Proto) uint64 { return p.Chkerr }},
		{"data-offset-4", func(s *segment) { s.dataOff = 4 }, badHeader, lenerr},
		{"data-offset-0", func(s *segment) { s.dataOff = 0x10 }, badHeader, lenerr}, // 0x10<<4 wraps to 0
		{"data-offset-past-packet", func(s *segment) { s.dataOff = 15 }, badHeader, lenerr},
		{"truncated-header", func(s *segment) { s.data = nil; s.truncate = 8 }, badHeader, lenerr},
		{"SYN+FIN", func(s *segment) { s.flags |= wire.TCPFlagSYN | wire.TCPFlagFIN }, badHeader, nil},
		{"option-length-0", func(s *segment) { s.rawOpts = []byte{wire.TCPOptTimestamps, 0, 0, 0} }, badOption, opterr},
		{"option-length-1", func(s *segment) { s.rawOpts = []byte{wire.TCPOptMSS, 1, 5, 0xb4} }, badOption, opterr},
		{"option-past-header", func(s *segment) {
			s.rawOpts = []byte{wire.TCPOptNOP, wire.TCPOptNOP, wire.TCPOptTimestamps, 10, 0, 0, 0, 1}
		}, badOption, opterr},
		{"option-kind-at-end", func(s *segment) { s.rawOpts = []byte{wire.TCPOptNOP, wire.TCPOptNOP, wire.TCPOptNOP, wire.TCPOptMSS} }, badOption, opterr},
		{"mss-wrong-length", func(s *segment) { s.rawOpts = []byte{wire.TCPOptMSS, 3, 5, wire.TCPOptNOP} }, badOption, opterr},
	}
}

// On an established connection each malformed segment (which would carry data) is dropped
// silently and counted; the connection goes on.
func TestInvalidSegmentsDropped(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		for _, m := range malformations() {
			t.Run(m.name, func(t *testing.T) {
				e := newEnv(t, f)
				c := e.established(true, plain())
				before := e.stats()
				s := c.seg(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("payload"))
				m.mangle(&s)
				e.inject(s)
				e.expectNothing(m.name)
				if len(c.rec.data) != 0 {
					t.Fatalf("malformed segment delivered %q", c.rec.data)
				}
				after := e.stats()
				checkDelta(t, m.name+": reason counter", m.reason(&before.TCPExt), m.reason(&after.TCPExt), 1)
				if m.proto != nil {
					checkDelta(t, m.name+": lwIP counter", m.proto(&before.TCP), m.proto(&after.TCP), 1)
				}
				checkDelta(t, m.name+": TCP.Drop", before.TCP.Drop, after.TCP.Drop, 1)
				if len(c.rec.errs) != 0 {
					t.Fatalf("connection died: %v", c.rec.errs)
				}
				c.state("after a malformed segment", tcp.StateEstablished)
				// The connection still works.
				c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("ok"))
				if string(c.rec.data) != "ok" {
					t.Errorf("after %s: delivered %q", m.name, c.rec.data)
				}
			})
		}
	})
}

// A malformed SYN to a listener gets no SYN-ACK and creates nothing.
func TestInvalidSynToListenerDropped(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		ls := e.listen(listenPort, 0)
		for i, m := range malformations() {
			if m.name == "truncated-header" {
				continue // a SYN and a truncated segment are the same bytes as above
			}
			before := e.stats()
			po := plain()
			po.port = peerPort + uint16(i)
			s := segment{srcPort: po.port, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 1000,
				opts: po.synOptions(e)}
			m.mangle(&s)
			e.inject(s)
			e.expectNothing("malformed SYN " + m.name)
			after := e.stats()
			checkDelta(t, m.name+": reason counter", m.reason(&before.TCPExt), m.reason(&after.TCPExt), 1)
			if e.conns() != 0 {
				t.Fatalf("%s: a PCB was created", m.name)
			}
		}
		if len(ls.accepted) != 0 {
			t.Error("accepted something")
		}
	})
}

// Unknown options are skipped and EOL ends the list (RFC 9293 §3.2: "a TCP implementation
// MUST ... ignore without error any option it does not implement").
func TestUnknownOptionsIgnored(t *testing.T) {
	e := newEnv(t, v4)
	ls := e.listen(listenPort, 0)
	for i, raw := range [][]byte{
		{30, 6, 1, 2, 3, 4, wire.TCPOptMSS, 4, 0x05, 0xb4},                   // unknown kind, then MSS
		{wire.TCPOptMSS, 4, 0x05, 0xb4, wire.TCPOptEOL, 0xff, 0xff, 0xff},    // garbage after EOL
		{wire.TCPOptNOP, wire.TCPOptNOP, wire.TCPOptNOP, 254, 4, 0xf9, 0x89}, // experimental option
	} {
		port := peerPort + uint16(i)
		e.inject(segment{srcPort: port, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 1000, rawOpts: raw})
		s := e.next()
		if !flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) {
			t.Errorf("SYN with options % x: got %v, want SYN-ACK", raw, s)
		}
		e.inject(segment{srcPort: port, dstPort: listenPort, seq: peerISS + 1, ack: s.SeqNum + 1, flags: wire.TCPFlagACK, wnd: 1000})
	}
	if len(ls.accepted) != 3 {
		t.Errorf("accepted %d of 3", len(ls.accepted))
	}
}
