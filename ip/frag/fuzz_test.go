package frag

import (
	"bytes"
	"testing"
	"time"

	"github.com/wispstack/wisp/pbuf"
)

// fuzzByte is byte i of the original payload of the fuzz datagram with key index k.
func fuzzByte(k, i int) byte { return byte(i*7+i>>8) ^ byte(k*0x35) }

// FuzzInput feeds random fragment sequences (offsets, lengths, MF flags, duplicates,
// overlaps, clock advances) for a few keys to a small Reassembler and checks that nothing
// panics, the counters and limits hold after every step, every datagram produced is the
// expected bytes, and every pbuf is freed after Close (newEnv's cleanup).
//
// Each step is 4 bytes: b0 picks the key (bits 0-1 index, bit 2 IPv6), MF (bit 3), a large
// offset (bit 4), or a clock advance of b1 seconds (b0 >= 0xe0); b1 and b2 give the
// offset in 8-byte units; b3 the data length (times 8 when b2 is odd).
func FuzzInput(f *testing.F) {
	f.Add([]byte{0x08, 0, 0, 16, 0x08, 0, 16, 128, 0x00, 0, 32, 100})        // v4 in order
	f.Add([]byte{0x0c, 0, 32, 16, 0x04, 0, 48, 5, 0x0c, 0, 0, 32, 0xe0, 30}) // v6 reversed, timeout
	f.Add([]byte{0x08, 0, 0, 64, 0x08, 0, 4, 64, 0x08, 0, 8, 64})            // overlaps
	f.Add([]byte{0x09, 0, 1, 255, 0x0a, 0, 1, 255, 0x0b, 0, 1, 255, 0x08, 0, 1, 255})
	f.Add([]byte{0x18, 0xff, 0xf0, 200, 0x10, 0xff, 0xff, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := newEnv(t, func(c *Config, pc *pbuf.Config) {
			c.MaxDatagrams, c.MaxPbufs, c.MaxFragPbufs = 3, 24, 4
			pc.PoolCount, pc.PoolBufSize, pc.HeapSize, pc.RefCount, pc.RAMCount = 256, 128, 4096, 8, 8
		})
		e.noGoroutineCheck = true
		r := e.r
		delivered := uint64(0)
		var hdr [64]byte
		for len(b) >= 4 {
			op := b[:4]
			b = b[4:]
			if op[0] >= 0xe0 {
				e.clk.Advance(time.Duration(op[1]) * time.Second / 4)
				e.check(delivered)
				continue
			}
			ki := int(op[0] & 3)
			v6 := op[0]&4 != 0
			more := op[0]&8 != 0
			k := keyFor(v6, uint32(ki))
			off := int(op[1]%8)<<8 | int(op[2])
			if op[0]&0x10 != 0 {
				off = int(op[1])<<8 | int(op[2])
			}
			off *= 8
			if off > 0xfff8 {
				off &= 0xfff8
			}
			n := int(op[3])
			if op[2]&1 != 0 {
				n *= 8
			}
			hl := 20
			if v6 {
				hl = 48
			}
			p, err := e.a.Alloc(pbuf.LayerRaw, hl+n, pbuf.POOL)
			if err != nil {
				continue // the fragment could not have been received
			}
			for i := range hl {
				hdr[i] = byte(ki*31 + i)
			}
			p.CopyIn(hdr[:hl], 0)
			for i := 0; i < n; i++ {
				p.CopyIn([]byte{fuzzByte(ki, off+i)}, hl+i)
			}
			before := r.all
			held := r.frags.Stats().Used
			d, h, _ := r.Input(k, p, hl, off, more)
			// Recv == delivered + Drop + held fragments, step by step.
			got := 1 - int(r.all.Drop-before.Drop) - (r.frags.Stats().Used - held)
			if got < 0 || (got > 0) != (d != nil) {
				t.Fatalf("fragments accounted: %d delivered, datagram %v", got, d != nil)
			}
			delivered += uint64(got)
			if d != nil {
				if err := d.Check(); err != nil {
					t.Fatal(err)
				}
				bs := d.Bytes(nil)
				if h != hl || !bytes.Equal(bs[:hl], hdr[:hl]) {
					t.Fatalf("headers: hdrLen0 %d, %x", h, bs[:min(len(bs), hl)])
				}
				for i, c := range bs[hl:] {
					if c != fuzzByte(ki, i) {
						t.Fatalf("datagram byte %d of %d", i, len(bs)-hl)
					}
				}
				if base(v6, hl)+len(bs)-hl > MaxDatagramLen {
					t.Fatalf("datagram of %d bytes", len(bs))
				}
				d.Free()
			}
			e.check(delivered)
		}
	})
}

// check verifies the Reassembler's invariants.
func (e *env) check(delivered uint64) {
	e.t.Helper()
	r := e.r
	s := &r.all
	if s.Recv != delivered+s.Drop+uint64(r.frags.Stats().Used) {
		e.t.Fatalf("Recv %d != delivered %d + Drop %d + held %d", s.Recv, delivered, s.Drop, r.frags.Stats().Used)
	}
	if s.Drop != s.Lenerr+s.Proterr+s.Memerr+s.Err {
		e.t.Fatalf("drops without a reason: %+v", *s)
	}
	if r.Pending() > r.cfg.MaxDatagrams || r.HeldPbufs() > r.cfg.MaxPbufs {
		e.t.Fatalf("limits: pending %d, held %d", r.Pending(), r.HeldPbufs())
	}
	if (r.Pending() > 0) != r.tmo.Pending() {
		e.t.Fatalf("timer armed %v with %d pending", r.tmo.Pending(), r.Pending())
	}
	held, n := 0, 0
	for d := r.head; d != nil; d = d.next {
		n++
		have := 0
		for f := d.first; f != nil; f = f.next {
			held += f.npbuf
			have += f.end - f.start
			if f.next != nil && f.end > f.next.start || f.p.TotLen()-f.hdr != f.end-f.start {
				e.t.Fatal("fragment list corrupt")
			}
		}
		if have != d.have || (d.dead && d.first != nil) {
			e.t.Fatal("datagram accounting")
		}
	}
	if held != r.HeldPbufs() || n != r.Pending() {
		e.t.Fatalf("held %d/%d pending %d/%d", held, r.HeldPbufs(), n, r.Pending())
	}
}
