package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/transport/tcp"
)

// Removing an address aborts the TCP connections bound to it, unless
// TCPKeepConnWhenIPChanges keeps them; removing the netif does the same for all its
// addresses.
func TestRemoveAddrAbortsConnections(t *testing.T) {
	for _, keep := range []bool{false, true} {
		for _, whole := range []bool{false, true} {
			name := map[bool]string{false: "abort", true: "keep"}[keep] + map[bool]string{false: "/addr", true: "/netif"}[whole]
			t.Run(name, func(t *testing.T) {
				o := opt.Embedded()
				o.IPv6AutoConfig = false
				o.IPv6DupAddrDetectTransmits = 0
				o.TCPKeepConnWhenIPChanges = keep
				p := newPair(t, link.MediumIP, o, clock.NewFake(time.Unix(1e9, 0)))
				var lsn *tcp.Listener
				var accepted []*tcp.PCB
				p.B.Callback(func() {
					c, _ := p.B.TCP().NewPCB()
					if err := c.Bind(netip.MustParseAddrPort("198.18.0.2:80")); err != nil {
						t.Error(err)
					}
					lsn, _ = c.Listen(2)
					lsn.OnAccept(func(_ *tcp.Listener, c *tcp.PCB) { accepted = append(accepted, c) })
				})
				var conn *tcp.PCB
				var got []error
				p.A.Callback(func() {
					conn, _ = p.A.TCP().NewPCB()
					conn.OnErr(func(_ *tcp.PCB, err error) { got = append(got, err) })
					_ = conn.Connect(netip.MustParseAddrPort("198.18.0.2:80"), nil)
				})
				p.PipeA.Flush()
				if len(accepted) != 1 {
					t.Fatal("not connected")
				}
				if whole {
					if err := p.A.RemoveNetif(p.NetifA); err != nil {
						t.Fatal(err)
					}
				} else if err := p.NetifA.RemoveAddr(addrA4.Addr()); err != nil {
					t.Fatal(err)
				}
				var n int
				p.A.Callback(func() { n, _ = p.A.TCP().NumPCBs() })
				if keep {
					if len(got) != 0 || n != 1 {
						t.Errorf("kept: errors %v, %d connections", got, n)
					}
					p.A.Callback(conn.Abort)
				} else if len(got) != 1 || got[0] != errs.Abrt || n != 0 {
					t.Errorf("aborted: errors %v, %d connections", got, n)
				}
				p.B.Callback(func() {
					for _, c := range accepted {
						c.Abort()
					}
					_ = lsn.Close()
				})
			})
		}
	}
}
