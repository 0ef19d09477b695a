package gro_test

import (
	"encoding/binary"
	"testing"

	"github.com/wispstack/wisp/ip/gro"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

func family(f int) string {
	if flows[f].src.Is4() {
		return "v4"
	}
	return "v6"
}

func TestMergeInOrder(t *testing.T) {
	for _, f := range []int{0, 2} {
		t.Run(family(f), func(t *testing.T) {
			run(t, train(f, 1000, 10, 1000), [][]int{span(0, 10)})
		})
	}
}

// TestMergeRules runs each rule of the package doc on both families (where it applies) and
// every chain shape: which segments end up together.
func TestMergeRules(t *testing.T) {
	tr := func(f int) []seg { return train(f, 1000, 3, 1000) }
	cases := []struct {
		name   string
		segs   func(f int) []seg
		want   [][]int
		v4, v6 bool // only this family
	}{
		{name: "psh ends", segs: func(f int) []seg { s := tr(f); s[1].flags = wire.TCPFlagPSH; return s },
			want: [][]int{{0, 1}, {2}}},
		{name: "fin ends", segs: func(f int) []seg {
			s := tr(f)
			s[1].flags, s[1].n = wire.TCPFlagFIN|wire.TCPFlagPSH, 300
			return s
		}, want: [][]int{{0, 1}, {2}}},
		{name: "psh first", segs: func(f int) []seg { s := tr(f); s[0].flags = wire.TCPFlagPSH; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "gap", segs: func(f int) []seg { s := tr(f); s[1].seq++; s[2].seq++; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "overlap", segs: func(f int) []seg { s := tr(f); s[1].seq--; s[2].seq--; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "options", segs: func(f int) []seg { s := tr(f); s[1].tsval, s[2].tsval = 9, 9; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "ack", segs: func(f int) []seg { s := tr(f); s[1].ack, s[2].ack = 2, 2; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "window", segs: func(f int) []seg { s := tr(f); s[1].wnd, s[2].wnd = 600, 600; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "other flow", segs: func(f int) []seg {
			return []seg{{flow: f, seq: 1000, n: 1000}, {flow: f + 1, seq: 2000, n: 1000}, {flow: f, seq: 2000, n: 1000}}
		}, want: [][]int{{0, 2}, {1}}},
		{name: "interleaved", segs: func(f int) []seg {
			a, b := train(f, 1000, 3, 1000), train(f+1, 5000, 2, 700)
			return []seg{a[0], b[0], a[1], b[1], a[2]}
		}, want: [][]int{{0, 2, 4}, {1, 3}}},
		{name: "other family same ports", segs: func(f int) []seg {
			a, b := train(f, 1000, 2, 1000), train(2-f, 2000, 2, 1000)
			return []seg{a[0], b[0], a[1], b[1]}
		}, want: [][]int{{0, 2}, {1, 3}}},
		{name: "smaller ends", segs: func(f int) []seg { s := tr(f); s[1].n = 500; s[2].seq = 2500; return s },
			want: [][]int{{0, 1}, {2}}},
		{name: "larger", segs: func(f int) []seg { s := tr(f); s[0].n = 500; s[1].seq, s[2].seq = 1500, 2500; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "pure ack between", segs: func(f int) []seg {
			return []seg{{flow: f, seq: 1000, n: 1000}, {flow: f, seq: 2000, ack: 5}, {flow: f, seq: 2000, n: 1000}}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "empty fin", segs: func(f int) []seg {
			s := tr(f)
			s[1].n, s[1].flags = 0, wire.TCPFlagFIN
			return s
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "urg", segs: func(f int) []seg { s := tr(f); s[1].flags = wire.TCPFlagURG; return s },
			want: [][]int{{0}, {1}, {2}}},
		{name: "rst", segs: func(f int) []seg { s := tr(f); s[1].flags = wire.TCPFlagRST; return s },
			want: [][]int{{0}, {1}, {2}}},
		{name: "syn first", segs: func(f int) []seg { s := tr(f); s[0].flags = wire.TCPFlagSYN; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "cwr first", segs: func(f int) []seg { s := tr(f); s[0].flags = wire.TCPFlagCWR; return s },
			want: [][]int{{0, 1, 2}}},
		{name: "cwr second", segs: func(f int) []seg { s := tr(f); s[1].flags = wire.TCPFlagCWR; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "ece changes", segs: func(f int) []seg {
			s := tr(f)
			s[1].flags, s[2].flags = wire.TCPFlagECE, wire.TCPFlagECE
			return s
		}, want: [][]int{{0}, {1, 2}}},
		{name: "tos", segs: func(f int) []seg {
			s := tr(f)
			s[1].ipEd, s[2].ipEd = editTOS, editTOS
			return s
		}, want: [][]int{{0}, {1, 2}}},
		{name: "ttl", segs: func(f int) []seg {
			s := tr(f)
			s[1].ipEd, s[2].ipEd = editTTL, editTTL
			return s
		}, want: [][]int{{0}, {1, 2}}},
		{name: "flow label", v6: true, segs: func(f int) []seg {
			s := tr(f)
			s[1].ipEd, s[2].ipEd = editLabel, editLabel
			return s
		}, want: [][]int{{0}, {1, 2}}},
		{name: "df", v4: true, segs: func(f int) []seg {
			s := tr(f)
			s[1].noDF, s[2].noDF = true, true
			return s
		}, want: [][]int{{0}, {1, 2}}},
		{name: "ids without df", v4: true, segs: func(f int) []seg {
			s := tr(f)
			for i := range s {
				s[i].noDF, s[i].id = true, uint16(0xfffe+i) // wraps
			}
			return s
		}, want: [][]int{{0, 1, 2}}},
		{name: "repeated id without df", v4: true, segs: func(f int) []seg {
			s := tr(f)
			for i := range s {
				s[i].noDF, s[i].id = true, uint16(max(i, 1))
			}
			return s
		}, want: [][]int{{0}, {1, 2}}},
		{name: "fixed id with df", v4: true, segs: func(f int) []seg {
			s := tr(f)
			for i := range s {
				s[i].id = 9
			}
			return s
		}, want: [][]int{{0, 1, 2}}},
		{name: "ipv4 options between", v4: true, segs: func(f int) []seg {
			s := tr(f)
			return []seg{s[0], {raw: withOptions(s[1].bytes())}, s[1]}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "ipv4 fragment between", v4: true, segs: func(f int) []seg {
			s := tr(f)
			frag := iptest.Packet(wire.ProtoTCP, flows[f].src, flows[f].dst, make([]byte, 64))
			wire.IPv4(frag).SetFragment(false, true, 0)
			wire.IPv4(frag).SetChecksum()
			return []seg{s[0], {raw: frag}, s[1]}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "ipv6 extension header between", v6: true, segs: func(f int) []seg {
			s := tr(f)
			b := s[1].bytes()
			dstOpts := append([]byte{wire.ProtoTCP, 0, 1, 4, 0, 0, 0, 0}, b[40:]...)
			return []seg{s[0], {raw: iptest.Packet(wire.ProtoIPv6DstOpts, flows[f].src, flows[f].dst, dstOpts)}, s[1]}
		}, want: [][]int{{0}, {1}, {2}}},
		{name: "udp between", segs: func(f int) []seg {
			s := tr(f)
			udp := iptest.Packet(wire.ProtoUDP, flows[f].src, flows[f].dst, []byte{0, 53, 0, 53, 0, 8, 0, 0})
			return []seg{s[0], {raw: udp}, s[1], s[2]}
		}, want: [][]int{{0, 2, 3}, {1}}},
		{name: "garbage between", segs: func(f int) []seg {
			s := tr(f)
			return []seg{s[0], {raw: []byte{0x45, 0, 0}}, {raw: []byte{0x60}}, {raw: []byte{0x10, 1, 2, 3}}, s[1]}
		}, want: [][]int{{0, 4}, {1}, {2}, {3}}},
		{name: "bad checksum", segs: func(f int) []seg {
			s := tr(f)
			bad := s[1]
			bad.bad = true
			return []seg{s[0], bad, s[1], s[2]}
		}, want: [][]int{{0, 2, 3}, {1}}},
		{name: "bad ip checksum", v4: true, segs: func(f int) []seg {
			s := tr(f)
			bad := s[1]
			bad.badIP = true
			return []seg{s[0], bad, s[1], s[2]}
		}, want: [][]int{{0, 2, 3}, {1}}},
		{name: "checksum ok trusted", segs: func(f int) []seg {
			s := tr(f)
			s[1].bad, s[1].ok = true, true
			return s
		}, want: [][]int{{0, 1, 2}}},
		{name: "padding", segs: func(f int) []seg { s := tr(f); s[0].pad, s[1].pad = 6, 3; return s },
			want: [][]int{{0, 1, 2}}},
		{name: "shared", segs: func(f int) []seg { s := tr(f); s[1].refd = true; return s },
			want: [][]int{{0}, {1}, {2}}},
		{name: "gso first", segs: func(f int) []seg { s := tr(f); s[0].gso = true; return s },
			want: [][]int{{0}, {1, 2}}},
		{name: "gso second", segs: func(f int) []seg { s := tr(f); s[1].gso = true; return s },
			want: [][]int{{0}, {1}, {2}}},
		{name: "one byte", segs: func(f int) []seg { return train(f, 7, 4, 1) },
			want: [][]int{{0, 1, 2, 3}}},
		{name: "sequence wraps", segs: func(f int) []seg { return train(f, 0xffffffff-1500, 3, 1000) },
			want: [][]int{{0, 1, 2}}},
	}
	for _, c := range cases {
		for _, f := range []int{0, 2} {
			if c.v4 && f != 0 || c.v6 && f != 2 {
				continue
			}
			t.Run(c.name+"/"+family(f), func(t *testing.T) { run(t, c.segs(f), c.want) })
		}
	}
}

func editTOS(b []byte) {
	if b[0]>>4 == 4 {
		b[1] ^= 0x04
	} else {
		b[1] ^= 0x40 // the low bits of the traffic class
	}
}

func editTTL(b []byte) {
	if b[0]>>4 == 4 {
		b[8]--
	} else {
		b[7]--
	}
}

func editLabel(b []byte) { b[3] ^= 1 }

// withOptions is IPv4 packet b with a 4-byte option (NOPs) after its header.
func withOptions(b []byte) []byte {
	var r wire.IPv4Repr
	if err := r.Parse(b); err != nil {
		panic(err)
	}
	payload := b[r.HeaderLen():]
	r.Options = []byte{1, 1, 1, 1}
	out := make([]byte, r.HeaderLen()+len(payload))
	if err := r.Emit(out); err != nil {
		panic(err)
	}
	copy(out[r.HeaderLen():], payload)
	return out
}

// TestVerifiedMarked: a segment whose checksums Coalesce verified reaches IP marked
// FlagChecksumOK, merged or not, so they are not summed twice; one that failed is not.
func TestVerifiedMarked(t *testing.T) {
	a := newAlloc(t)
	segs := []seg{{flow: 0, seq: 1, n: 100, flags: wire.TCPFlagPSH}, {flow: 2, seq: 1, n: 100, bad: true},
		{flow: 1, seq: 1, n: 100}, {flow: 3, seq: 1, n: 100, flags: wire.TCPFlagSYN}, {raw: []byte{0x45}}}
	pkts, _ := batch(t, a, makers[1], segs)
	var e gro.Engine
	out := e.Coalesce(pkts, nil)
	defer freeAll(out)
	for i, want := range []bool{true, false, true, true, false} {
		if got := out[i].Flags()&pbuf.FlagChecksumOK != 0; got != want {
			t.Errorf("out %d (%+v): checksum OK %v, want %v", i, segs[i], got, want)
		}
	}
}

// TestLimit64K: a coalesced packet stays within the 16-bit IPv4 total length and IPv6
// payload length.
func TestLimit64K(t *testing.T) {
	t.Run("v4", func(t *testing.T) {
		// 20 + 32 + 44*1460 = 64292; one more would be 65752.
		run(t, train(0, 1, 50, 1460), [][]int{span(0, 44), span(44, 50)})
	})
	t.Run("v6", func(t *testing.T) {
		// 32 + 65*1000 = 65032 bytes of payload length; a 66th would pass 65535.
		run(t, train(2, 1, 70, 1000), [][]int{span(0, 65), span(65, 70)})
	})
	t.Run("exact", func(t *testing.T) {
		// 20 + 32 (timestamps) + 11*5953 = 65535 exactly; the next segment starts a new packet.
		run(t, train(0, 1, 13, 5953), [][]int{span(0, 11), span(11, 13)})
	})
}

// TestManyFlows: more flows than an Engine holds at once; every flow's bytes arrive in
// order and whole.
func TestManyFlows(t *testing.T) {
	a := newAlloc(t)
	var segs []seg
	var pkts []*pbuf.Pbuf
	for round := range 3 {
		for port := range 100 {
			s := seg{flow: 0, seq: uint32(1000 + round*100), n: 100}
			segs = append(segs, s)
			p := poolChain(t, a, s.bytes())
			hdr, _ := p.Header(24)
			binary.BigEndian.PutUint16(hdr[20:], uint16(1000+port)) // a source port per flow
			wire.IPv4(hdr).SetChecksum()
			p.SetFlags(pbuf.FlagChecksumOK) // the port changed after the checksum
			pkts = append(pkts, p)
		}
	}
	in := snapshot(pkts)
	var e gro.Engine
	var st stats.Offload
	out := e.Coalesce(pkts, &st)
	defer freeAll(out)
	checkFlows(t, in, out)
	if st.GROMerged == 0 || st.GROMerged > 200 {
		t.Errorf("GROMerged %d", st.GROMerged)
	}
}

// TestAllocs: coalescing a batch allocates nothing once the Engine exists.
func TestAllocs(t *testing.T) {
	a := newAlloc(t)
	var raw [][]byte
	for f := range 4 {
		for _, s := range train(f, 1, 8, 1000) {
			raw = append(raw, s.bytes())
		}
	}
	pkts := make([]*pbuf.Pbuf, len(raw))
	var e gro.Engine
	var st stats.Offload
	allocs := testing.AllocsPerRun(100, func() {
		for i, b := range raw {
			pkts[i], _ = a.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
			_ = pkts[i].CopyIn(b, 0)
		}
		for _, p := range e.Coalesce(pkts[:len(raw)], &st) {
			p.Free()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
	if st.GROPackets != 4*101 || st.GROMerged != 4*7*101 {
		t.Errorf("GROPackets %d, GROMerged %d over 101 batches", st.GROPackets, st.GROMerged)
	}
}

// BenchmarkCoalesce: a batch of 64 full-sized segments of 4 flows, checksums verified
// here, in POOL chains as a link delivers them.
func BenchmarkCoalesce(b *testing.B) {
	a := newAlloc(b)
	var raw [][]byte
	for f := range 4 {
		for _, s := range train(f, 1, 16, 1448) {
			raw = append(raw, s.bytes())
		}
	}
	pkts := make([]*pbuf.Pbuf, len(raw))
	var e gro.Engine
	var st stats.Offload
	b.SetBytes(int64(len(raw) * 1448))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i, r := range raw {
			pkts[i], _ = a.Alloc(pbuf.LayerRaw, len(r), pbuf.POOL)
			_ = pkts[i].CopyIn(r, 0)
		}
		b.StartTimer()
		for _, p := range e.Coalesce(pkts[:len(raw)], &st) {
			p.Free()
		}
	}
}

// TestReadOnlyRefNotHeld: a REF pbuf over memory the stack may not rewrite (no
// FlagWritable: a zero-copy send's buffer looped back, ROM) is never merged into, since
// merging rewrites its headers; the segments pass through as they came.
func TestReadOnlyRefNotHeld(t *testing.T) {
	a := newAlloc(t)
	segs := train(0, 1000, 3, 1000)
	pkts := make([]*pbuf.Pbuf, len(segs))
	raw := make([][]byte, len(segs))
	for i := range segs {
		raw[i] = segs[i].bytes()
		p, err := a.AllocRef(append([]byte(nil), raw[i]...), pbuf.REF, nil)
		if err != nil {
			t.Fatal(err)
		}
		pkts[i] = p
	}
	var e gro.Engine
	var st stats.Offload
	out := e.Coalesce(pkts, &st)
	defer freeAll(out)
	checkOut(t, segs, raw, out, [][]int{{0}, {1}, {2}})
	if st.GROMerged != 0 {
		t.Errorf("merged %d segments into read-only memory", st.GROMerged)
	}
}
