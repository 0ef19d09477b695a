package conformance

// Tests of the harness itself, independent of the engine: the segment builder, the
// injection path through ip, and the capture path back through wire.

import (
	"bytes"
	"testing"

	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// echoTransport answers every TCP segment by swapping ports and addresses (a reflector), so
// the capture path can be checked without the engine.
type echoTransport struct {
	e    *env
	seen [][]byte
}

func (r *echoTransport) Input(h *ip.Header, p *pbuf.Pbuf) {
	b := p.Bytes(nil)
	p.Free()
	r.seen = append(r.seen, b)
	t := wire.TCP(append([]byte(nil), b...))
	sp, dp := t.SrcPort(), t.DstPort()
	t.SetSrcPort(dp)
	t.SetDstPort(sp)
	t.SetChecksum(h.Dst, h.Src)
	q, err := r.e.Alloc.Alloc(pbuf.LayerTransport, len(t), pbuf.RAM)
	if err != nil {
		r.e.t.Fatal(err)
	}
	_ = q.CopyIn(t, 0)
	if err := r.e.IP.Output(q, h.Dst, h.Src, wire.ProtoTCP, ip.OutputOptions{}); err != nil {
		r.e.t.Fatal(err)
	}
}

func (r *echoTransport) ControlInput(*ip.Header, ip.ControlKind, int, []byte) {}

func TestHarnessRoundTrip(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		e := newEnvWith(t, f, false)
		r := &echoTransport{e: e}
		e.IP.RegisterTransport(wire.ProtoTCP, r)
		o := modern().synOptions(e)
		o.NumSACK = 1
		o.SACKBlocks[0] = wire.SACKBlock{Left: 10, Right: 20}
		e.inject(segment{srcPort: peerPort, dstPort: listenPort, seq: 1, ack: 2,
			flags: wire.TCPFlagSYN | wire.TCPFlagACK, wnd: 300, opts: o, data: []byte("abc")})
		if len(r.seen) != 1 {
			t.Fatalf("transport saw %d segments", len(r.seen))
		}
		s := e.next()
		if s.SrcPort != listenPort || s.DstPort != peerPort || s.SeqNum != 1 || s.AckNum != 2 ||
			s.Flags != wire.TCPFlagSYN|wire.TCPFlagACK || s.Window != 300 || !bytes.Equal(s.data, []byte("abc")) ||
			s.Options.MSS != 1460 || s.Options.WindowScale != 7 || !s.Options.SACKPermitted ||
			!s.Options.HasTimestamps || s.Options.NumSACK != 1 || s.src != e.local || s.dst != e.remote {
			t.Errorf("round trip: %v", s)
		}
		e.expectNothing("one segment")
	})
}

func TestHarnessMalformations(t *testing.T) {
	src, dst := v4Remote, v4Local
	base := segment{srcPort: 1, dstPort: 2, seq: 3, flags: wire.TCPFlagACK, wnd: 4, data: []byte("payload")}
	for _, m := range malformations() {
		s := base
		m.mangle(&s)
		b := s.build(src, dst)
		err := wire.CheckTCP(b)
		switch m.name {
		case "bad-checksum":
			if err != nil || wire.TCP(b).ValidChecksum(src, dst) {
				t.Errorf("%s: check %v, checksum valid %v", m.name, err, wire.TCP(b).ValidChecksum(src, dst))
			}
		case "data-offset-4", "data-offset-0", "data-offset-past-packet", "truncated-header":
			if err == nil {
				t.Errorf("%s: CheckTCP accepts % x", m.name, b)
			}
		default:
			if err != nil || !wire.TCP(b).ValidChecksum(src, dst) {
				t.Fatalf("%s: check %v", m.name, err)
			}
			_, oerr := wire.ParseTCPOptions(wire.TCP(b).Options())
			if (oerr != nil) != (m.name != "SYN+FIN") {
				t.Errorf("%s: options error %v", m.name, oerr)
			}
			if !bytes.Equal(wire.TCP(b).Payload(), []byte("payload")) {
				t.Errorf("%s: payload % x", m.name, wire.TCP(b).Payload())
			}
		}
	}
}

// The per-segment invariants catch what they claim to.
func TestHarnessInvariants(t *testing.T) {
	e := newEnvWith(t, v4, false)
	key := [2]uint16{listenPort, peerPort}
	mk := func(f wire.TCPFlags, seq, ack uint32, wnd uint16, n int, o wire.TCPOptions) *rxSeg {
		s := &rxSeg{data: make([]byte, n), raw: make([]byte, 40+n)}
		s.SrcPort, s.DstPort, s.Flags, s.SeqNum, s.AckNum, s.Window, s.Options = listenPort, peerPort, f, seq, ack, wnd, o
		return s
	}
	ts := wire.TCPOptions{HasTimestamps: true}
	for _, tc := range []struct {
		name string
		s    *rxSeg
		bad  bool
	}{
		{"ok", mk(wire.TCPFlagACK, 1, 100, 100, 988, ts), false},
		{"too big for MSS with options", mk(wire.TCPFlagACK, 1, 100, 100, 989, ts), true},
		{"no timestamps", mk(wire.TCPFlagACK, 1, 100, 100, 0, wire.TCPOptions{}), true},
		{"MSS option on data", mk(wire.TCPFlagACK, 1, 100, 100, 0, wire.TCPOptions{HasTimestamps: true, HasMSS: true}), true},
		{"SACK without permission", mk(wire.TCPFlagACK, 1, 100, 100, 0, wire.TCPOptions{HasTimestamps: true, NumSACK: 1}), true},
		{"ACK back", mk(wire.TCPFlagACK, 1, 99, 200, 0, ts), true},
		{"right edge left", mk(wire.TCPFlagACK, 1, 100, 98, 0, ts), true},   // 492+3 < 500
		{"rounding allowed", mk(wire.TCPFlagACK, 1, 102, 99, 0, ts), false}, // 498+3 >= 500
		{"no ACK", mk(0, 1, 0, 0, 1, ts), true},
		{"ACK of unsent data", mk(wire.TCPFlagACK, 1, 201, 100, 0, ts), true},
		{"ACK of all sent", mk(wire.TCPFlagACK, 1, 200, 100, 0, ts), false},
		{"RST with data", mk(wire.TCPFlagRST, 1, 0, 0, 1, wire.TCPOptions{}), true},
	} {
		// Before each: ACK 100 with a window of 100 << 2 seen.
		e.negotiated[key] = negotiated{ts: true, shift: 2, peerMSS: 1000, seen: true, ack: 100, edge: 500}
		e.peerEnd[key] = 200 // the peer sent up to 200
		if vs := e.violations(tc.s); (len(vs) > 0) != tc.bad {
			t.Errorf("%s: violations %v, want bad=%v", tc.name, vs, tc.bad)
		}
	}
}
