package ethernet

import (
	"testing"
	"time"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

func FuzzInput(f *testing.F) {
	f.Add(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macB, ipB, [6]byte{}, ipA))
	f.Add(arpFrame(wire.ARPReply, macA, macB, ipB, macA, ipA))
	f.Add(frame(macA, macB, wire.EtherTypeIPv4, []byte{0x45, 0, 0, 20}))
	f.Add(frame(wire.BroadcastMAC, macB, wire.EtherTypeARP, []byte{0, 1, 8, 0, 6, 4}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v := newEnv(t)
		a := v.node(macA, ipA, v.cfg())
		a.e.OutputIPv4(v.ipPacket("pending"), ipB, ipA)
		// Feed the frame, then its halves, then advance time through every timer.
		for _, f := range [][]byte{b, b[:len(b)/2]} {
			if len(f) > 0 && len(f) <= 4096 {
				p, err := v.alloc.Alloc(pbuf.LayerRaw, len(f), pbuf.POOL)
				if err != nil {
					continue
				}
				p.CopyIn(f, 0)
				a.e.Input(p)
			}
		}
		a.take()
		v.clk.Advance(10 * time.Minute)
		a.up.got = nil
		v.finish(a)
		linktest.CheckZero(t, v.alloc)
	})
}
