package ip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
)

// fuzzMcast feeds pkt to a layer with joined groups of both families, lets every timer
// run, and closes it: no panic, nothing left in any pool (env.close checks).
func fuzzMcast(t *testing.T, pkt []byte) {
	o := testOptions()
	o.MempNumIGMPGroup, o.MempNumMLD6Group = 2, 2
	e := newEnv(t, o, 5)
	ep := &linktest.Capture{Discard: true}
	n := e.addNetif(ep, mustPrefix(v4A, 24), mustPrefix(ll6A, 64))
	for _, g := range []netip.Addr{grp1, grp2, grp6a, grp6b} {
		_ = e.l.JoinGroup(n, g)
	}
	e.inject(n, pkt)
	_ = e.l.LeaveGroup(n, grp2)
	e.clk.Advance(time.Hour) // every pending report, whatever delay the input asked for
	e.l.Flush()
	e.close()
}

func FuzzIGMPInput(f *testing.F) {
	f.Add(igmpQueryPkt(allSystems4, 3, 50, netip.Addr{}, 2, 125, true)[24:], true)
	f.Add(igmpQueryPkt(allSystems4, 2, 100, netip.Addr{}, 0, 0, true)[24:], true)
	f.Add(igmpQueryPkt(allSystems4, 1, 0, netip.Addr{}, 0, 0, false)[24:], false)
	f.Add(igmpQueryPkt(grp1, 3, 0xff, grp1, 7, 0xff, true, grp2)[24:], true)
	f.Add(igmpReport(grp1), true)
	f.Fuzz(func(t *testing.T, msg []byte, ra bool) {
		if len(msg) < 4 || len(msg) > 1400 {
			return
		}
		dst := allSystems4
		if len(msg) >= 8 && msg[4] == 239 {
			dst = grp1
		}
		fuzzMcast(t, igmpPkt(query4, dst, append([]byte(nil), msg...), ra, 1))
	})
}

func FuzzMLDInput(f *testing.F) {
	f.Add(mldQueryPkt(ll6Q, allNodes, true, 2000, netip.Addr{}, 1, true)[48:], uint8(1), true)
	f.Add(mldQueryPkt(ll6Q, allNodes, false, 2000, netip.Addr{}, 1, true)[48:], uint8(1), true)
	f.Add(mldQueryPkt(ll6Q, allNodes, true, 0xffff, grp6a, 1, true)[48:], uint8(1), true)
	f.Fuzz(func(t *testing.T, msg []byte, hop uint8, ra bool) {
		if len(msg) < 4 || len(msg) > 1400 {
			return
		}
		fuzzMcast(t, mldPkt(ll6Q, allNodes, append([]byte(nil), msg...), hop, ra))
	})
}

// FuzzMLDInputEthernet is FuzzMLDInput on an Ethernet netif, where the solicited-node
// groups of its addresses (one shared by two of them) are reported too; an address goes
// and another is added after the input.
func FuzzMLDInputEthernet(f *testing.F) {
	f.Add(mldQueryPkt(ll6Q, allNodes, true, 2000, netip.Addr{}, 1, true)[48:], uint8(1), true)
	f.Add(mldQueryPkt(ll6Q, allNodes, false, 2000, netip.Addr{}, 1, true)[48:], uint8(1), true)
	f.Add(mldQueryPkt(ll6Q, allNodes, true, 0xffff, solicitedNode(v6A), 1, true)[48:], uint8(1), true)
	f.Fuzz(func(t *testing.T, msg []byte, hop uint8, ra bool) {
		if len(msg) < 4 || len(msg) > 1400 {
			return
		}
		o := testOptions()
		o.MempNumMLD6Group = 1
		e := newEnv(t, o, 6)
		ep := &linktest.Capture{Med: link.MediumEthernet, Mtu: 1500, HW: [6]byte{2, 0, 0, 0, 0, 1}, Discard: true}
		n := e.addNetif(ep, mustPrefix(v6A, 64), mustPrefix(mustAddr("fd43::1"), 64))
		_ = e.l.JoinGroup(n, grp6b)
		_ = e.l.JoinGroup(n, solicitedNode(v6A))
		e.clk.Advance(500 * time.Millisecond)
		e.l.Flush()
		e.inject(n, ethMLD(mldPkt(ll6Q, allNodes, append([]byte(nil), msg...), hop, ra)))
		_ = n.RemoveAddr(v6A)
		_ = n.AddAddr(mustPrefix(v6B, 64))
		e.clk.Advance(time.Hour)
		e.l.Flush()
		e.close()
	})
}
