package conformance

// Random segments against live connections: the stack must not panic, must keep every
// per-segment invariant (invariants_test.go), keep its counters consistent and give back
// every pool element at the end.

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// randomSegment builds a segment for c whose fields are near the interesting values:
// RCV.NXT, the window edges, SND.UNA, SND.NXT.
func randomSegment(rng *rand.Rand, c *conn, in tcp.Info) segment {
	flags := wire.TCPFlagACK
	switch rng.IntN(20) {
	case 0:
		flags = wire.TCPFlagRST
	case 1:
		flags = wire.TCPFlagSYN
	case 2:
		flags |= wire.TCPFlagFIN
	case 3:
		flags = wire.TCPFlags(rng.Uint32())
	case 4:
		flags = 0
	}
	s := c.seg(flags, nil)
	switch rng.IntN(6) {
	case 0:
		s.seq = in.RcvNxt
	case 1:
		s.seq = in.RcvNxt + uint32(rng.IntN(in.RcvWnd+2))
	case 2:
		s.seq = in.RcvNxt - uint32(rng.IntN(70000))
	case 3:
		s.seq = rng.Uint32()
	default:
		s.seq = in.RcvNxt + uint32(rng.IntN(3000))
	}
	switch rng.IntN(5) {
	case 0:
		s.ack = in.SndUna
	case 1:
		s.ack = in.SndUna + uint32(rng.IntN(int(in.SndNxt-in.SndUna)+2))
	case 2:
		s.ack = rng.Uint32()
	default:
		s.ack = in.SndNxt
	}
	s.wnd = uint16(rng.IntN(0x10000))
	if rng.IntN(3) > 0 {
		s.data = pattern(rng.IntN(1500), byte(rng.Uint32()))
	}
	if rng.IntN(4) == 0 {
		s.opts.NumSACK = 1 + rng.IntN(2)
		for i := range s.opts.NumSACK {
			l := in.SndUna + uint32(rng.IntN(20000)) - 5000
			s.opts.SACKBlocks[i] = wire.SACKBlock{Left: l, Right: l + uint32(rng.IntN(4000))}
		}
	}
	if s.opts.HasTimestamps && rng.IntN(10) == 0 {
		s.opts.TSVal = rng.Uint32()
	}
	return s
}

func TestChaosEstablished(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		for i, po := range []func() peerOpts{plain, modern} {
			t.Run([]string{"plain", "modern"}[i], func(t *testing.T) { chaos(t, f, po, uint64(i)) })
		}
	})
}

// chaos runs 3000 random steps (segments, writes, time) over three connections.
func chaos(t *testing.T, f family, po func() peerOpts, seed uint64) {
	rng := rand.New(rand.NewPCG(uint64(f), seed))
	e := newEnv(t, f)
	ls := e.listen(listenPort, 0)
	var conns []*conn
	for k := range 3 {
		p := po()
		p.port = peerPort + uint16(k)
		c := e.passiveOpen(ls, p)
		c.pcb.SetNoDelay(rng.IntN(2) == 0)
		conns = append(conns, c)
	}
	nextPort := uint16(peerPort + 100)
	info := map[*conn]tcp.Info{}
	var orphans []*conn
	for step := 0; step < 3000; step++ {
		c := conns[rng.IntN(len(conns))]
		if c.rec.dead {
			if n, _ := e.tcp.NumPCBs(); n >= e.o.MempNumTCPPCB-1 {
				// Orphans and TIME-WAIT hold every PCB: a new connection would be refused
				// (PCBExhausted), which other tests cover. Let time pass instead.
				e.advance(time.Second)
				e.drain()
				continue
			}
			p := po()
			nextPort++ // the old 4-tuple may still be in use (an orphan, TIME-WAIT)
			p.port = nextPort
			p.iss = rng.Uint32()
			*c = *e.passiveOpen(ls, p)
			continue
		}
		if !pcbLive(c.pcb) {
			t.Fatalf("step %d: the application's PCB (last seen %v) was freed without ErrFunc (the application holds a dangling *PCB)", step, info[c].State)
		}
		info[c] = c.pcb.Info()
		switch rng.IntN(40) {
		case 0, 1, 2, 3:
			if n := min(c.pcb.SndBuf(), rng.IntN(5000)); n > 0 {
				_ = c.pcb.Write(pattern(n, 1), tcp.WriteCopy)
				_ = c.pcb.Output()
			}
		case 4, 5, 6, 7:
			e.advance(time.Duration(rng.IntN(300)) * time.Millisecond)
		case 8:
			_ = c.pcb.Shutdown(false, true)
		case 9:
			// The application lets go: the connection lives on as an orphan the peer
			// keeps poking, and a new one takes its place.
			if rng.IntN(2) == 0 {
				_ = c.pcb.Close()
			} else {
				c.pcb.Abort()
			}
			orphan := *c
			orphans = append(orphans, &orphan)
			info[&orphan] = info[c]
			c.rec.dead = true
		case 10:
			if len(orphans) > 0 {
				o := orphans[rng.IntN(len(orphans))]
				e.inject(randomSegment(rng, o, info[o]))
			}
		default:
			e.inject(randomSegment(rng, c, info[c]))
		}
		for _, s := range e.drain() {
			// Keep the peer's view roughly in step so segments stay relevant.
			if s.DstPort == c.rport && !s.Flags.Has(wire.TCPFlagRST) {
				c.stackNxt = s.end()
				c.peerNxt = s.AckNum
			}
		}
	}
}

// FuzzEstablishedInput feeds arbitrary bytes, as the TCP segment of an IPv4 packet (the
// ports and, when long enough, the sequence numbers fixed up to hit the connection), to an
// established connection. Run with go test -fuzz FuzzEstablishedInput.
func FuzzEstablishedInput(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 20))
	seed := (&segment{srcPort: peerPort, dstPort: listenPort, flags: wire.TCPFlagACK | wire.TCPFlagPSH, wnd: 100,
		data: []byte("seed"), opts: wire.TCPOptions{NumSACK: 1}}).build(v4Remote, v4Local)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		e := newEnv(t, v4)
		c := e.passiveOpen(e.listen(listenPort, 0), modern())
		b = append([]byte(nil), b...)
		if len(b) >= 4 {
			binary.BigEndian.PutUint16(b[0:], c.rport)
			binary.BigEndian.PutUint16(b[2:], c.lport)
		}
		if len(b) >= 12 && b[0]&1 == 0 {
			binary.BigEndian.PutUint32(b[4:], c.peerNxt+uint32(b[4]))
			binary.BigEndian.PutUint32(b[8:], c.stackNxt)
		}
		if len(b) >= 18 && b[1]&1 == 0 {
			b[16], b[17] = 0, 0
			wire.TCP(b).SetChecksum(e.remote, e.local)
		}
		e.injected++
		e.injectIP(e.remote, e.local, b)
		e.advance(time.Second)
		e.drain()
	})
}

// pcbLive reports whether calling into p works: a PCB freed behind the application's back
// panics (the engine clears its Proto pointer).
func pcbLive(p *tcp.PCB) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = p.Info()
	return true
}

// TestChaosListener throws random handshake traffic at a small listener with SYN cookies:
// SYNs from many ports (some retransmitted, some with options), ACKs completing some of them
// (right, wrong or cookie), RSTs, junk. Nothing may panic or leak, every invariant holds, and
// the connections that complete work.
func TestChaosListener(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		rng := rand.New(rand.NewPCG(uint64(f), 99))
		e := newEnv(t, f, func(o *opt.Options) { o.MempNumTCPPCB = 8 })
		ls := e.listen(listenPort, 3)
		type half struct {
			port     uint16
			irs, iss uint32
		}
		var halves []half
		for step := 0; step < 2000; step++ {
			port := uint16(41000 + rng.IntN(64))
			switch rng.IntN(8) {
			case 0, 1, 2:
				po := []func() peerOpts{plain, modern}[rng.IntN(2)]()
				po.port, po.iss = port, rng.Uint32()
				e.inject(segment{srcPort: port, dstPort: listenPort, seq: po.iss, flags: wire.TCPFlagSYN,
					wnd: 0xffff, opts: po.synOptions(e)})
			case 3, 4:
				if len(halves) > 0 {
					h := halves[rng.IntN(len(halves))]
					ack := h.iss + 1
					if rng.IntN(4) == 0 {
						ack += uint32(rng.IntN(3)) - 1
					}
					e.inject(segment{srcPort: h.port, dstPort: listenPort, seq: h.irs + 1, ack: ack,
						flags: wire.TCPFlagACK, wnd: 1000, data: pattern(rng.IntN(3)*100, 1)})
				}
			case 5:
				e.inject(segment{srcPort: port, dstPort: listenPort, seq: rng.Uint32(), ack: rng.Uint32(),
					flags: wire.TCPFlags(rng.Uint32()) &^ wire.TCPFlagSYN, wnd: 1000})
			case 6:
				e.advance(time.Duration(rng.IntN(2000)) * time.Millisecond)
			case 7:
				if len(ls.accepted) > 0 && rng.IntN(2) == 0 {
					i := rng.IntN(len(ls.accepted))
					if !ls.recs[i].dead {
						if rng.IntN(2) == 0 {
							ls.accepted[i].Abort()
						} else {
							ls.accepted[i].Close()
							ls.recs[i].dead = true
						}
					}
				}
			}
			for _, s := range e.drain() {
				if flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) {
					halves = append(halves, half{port: s.DstPort, irs: s.AckNum - 1, iss: s.SeqNum})
					if len(halves) > 64 {
						halves = halves[1:]
					}
				}
			}
		}
		x := e.ext()
		t.Logf("accepted %d, cookies sent %d valid %d failed %d, overflows %d, PCB exhausted %d",
			len(ls.accepted), x.CookiesSent, x.CookiesValid, x.CookiesFailed, x.ListenOverflows, x.PCBExhausted)
	})
}
