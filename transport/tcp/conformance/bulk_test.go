package conformance

// Bulk transfers against a scripted peer: the test plays a receiver that loses, reorders
// and duplicates (seeded), or a sender that does, and checks the byte stream end to end.

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// TestBulkReceiveReordered sends 300 KB to the stack in shuffled, partly lost and
// duplicated batches within its window, resending from its ACK each round (the peer as a
// go-back-N sender with reordering in the network). The stack must deliver every byte once,
// in order.
func TestBulkReceiveReordered(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		for _, po := range []peerOpts{modern(), plain()} {
			e := newEnv(t, f)
			c := e.established(true, po)
			rng := rand.New(rand.NewPCG(uint64(f), 7))
			d := pattern(300<<10, 3)
			mss := c.segSize()
			base := c.peerNxt
			acked, wnd := 0, c.pcb.Info().RcvWnd
			for round := 0; acked < len(d); round++ {
				if round > 2000 {
					t.Fatalf("no progress: %d of %d bytes acknowledged", acked, len(d))
				}
				var batch []segment
				for off := acked; off < len(d) && off < acked+wnd; off += mss {
					s := c.seg(wire.TCPFlagACK, d[off:min(off+mss, len(d), acked+wnd)])
					s.seq = base + uint32(off)
					if rng.IntN(10) == 0 {
						continue // lost
					}
					batch = append(batch, s)
					if rng.IntN(20) == 0 {
						batch = append(batch, s) // duplicated
					}
				}
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				for _, s := range batch {
					e.inject(s)
				}
				e.advance(e.o.TCPDelAckTimeout)
				for _, r := range e.drain() {
					if a := int(r.AckNum - base); a > acked {
						acked = a
					}
					wnd = c.stackWindow(r) - (acked - int(r.AckNum-base))
				}
				wnd = max(wnd, mss)
			}
			c.peerNxt = base + uint32(len(d))
			if !bytes.Equal(c.rec.data, d) {
				t.Fatalf("%v peer: delivered %d bytes, first difference at %d", po.ts, len(c.rec.data), firstDiff(c.rec.data, d))
			}
			e.close()
		}
	})
}

// peerReceiver is the test as a receiver: it keeps what arrives (minus its own losses),
// acknowledges every segment with its cumulative ACK and up to three SACK blocks.
type peerReceiver struct {
	c    *conn
	rng  *rand.Rand
	loss int // percent
	base uint32
	buf  []byte
	have []bool
	cum  int
}

func (p *peerReceiver) receive(s *rxSeg) {
	if len(s.data) == 0 {
		return
	}
	if p.rng.IntN(100) < p.loss {
		return
	}
	off := int(s.SeqNum - p.base)
	if off < 0 || off+len(s.data) > len(p.buf) {
		p.c.e.t.Fatalf("segment %v outside the stream (offset %d)", s, off)
	}
	for i, b := range s.data {
		if p.have[off+i] && p.buf[off+i] != b {
			p.c.e.t.Fatalf("retransmitted byte %d differs", off+i)
		}
		p.buf[off+i], p.have[off+i] = b, true
	}
	for p.cum < len(p.have) && p.have[p.cum] {
		p.cum++
	}
	a := p.c.seg(wire.TCPFlagACK, nil)
	a.ack = p.base + uint32(p.cum)
	if p.c.sackOK {
		n := 0
		for i := len(p.have) - 1; i > p.cum && n < 3; {
			if !p.have[i] {
				i--
				continue
			}
			j := i
			for j > p.cum && p.have[j-1] {
				j--
			}
			a.opts.SACKBlocks[n] = wire.SACKBlock{Left: p.base + uint32(j), Right: p.base + uint32(i+1)}
			n++
			i = j - 1
		}
		a.opts.NumSACK = n
	}
	p.c.e.inject(a)
}

// TestBulkSendWithLoss writes 512 KB through the stack to a receiver that loses 3% of the
// segments (seeded). Every byte must arrive, retransmissions must carry the original bytes,
// and SentFunc must report everything.
func TestBulkSendWithLoss(t *testing.T) {
	bothFamilies(t, func(t *testing.T, f family) {
		for _, po := range []peerOpts{modern(), plain()} {
			e := newEnv(t, f)
			c := e.activeOpenRTT(po, 20*time.Millisecond)
			d := pattern(512<<10, 5)
			p := &peerReceiver{c: c, rng: rand.New(rand.NewPCG(uint64(f), 9)), loss: 3, base: c.stackNxt,
				buf: make([]byte, len(d)), have: make([]bool, len(d))}
			written := 0
			t0 := e.elapsed()
			for p.cum < len(d) {
				if e.elapsed()-t0 > 5*time.Minute {
					t.Fatalf("%v peer: stalled at %d of %d bytes (SentFunc %d)", po.ts, p.cum, len(d), c.rec.sent)
				}
				if n := min(c.pcb.SndBuf(), len(d)-written); n > 0 {
					if err := c.pcb.Write(d[written:written+n], tcp.WriteCopy); err == nil {
						written += n
					}
					c.pcb.Output()
				}
				segs := e.drain()
				for _, s := range segs {
					p.receive(s)
				}
				if len(segs) == 0 {
					e.advance(10 * time.Millisecond)
				}
			}
			if !bytes.Equal(p.buf, d) {
				t.Fatalf("%v peer: stream corrupt at %d", po.ts, firstDiff(p.buf, d))
			}
			e.advance(time.Second)
			e.drain()
			if c.rec.sent != len(d) {
				t.Errorf("%v peer: SentFunc reported %d of %d bytes", po.ts, c.rec.sent, len(d))
			}
			if len(c.rec.errs) != 0 {
				t.Errorf("connection died: %v", c.rec.errs)
			}
			x := e.ext()
			t.Logf("%v peer: %v fake time, %d retransmits (%d fast, %d RTO, %d TLP, %d RACK), %d SACK recoveries",
				po.ts, e.elapsed()-t0, x.Retransmits, x.FastRetransmits, x.RTOs, x.TLPs, x.RACKLosses, x.SACKRecoveries)
			e.close()
		}
	})
}
