package netconn_test

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
)

// A socket that joined a group receives datagrams sent to it; after LeaveGroup (and after
// Close of the only member) the netif no longer accepts them.
func TestUDPMulticastJoinLeave(t *testing.T) {
	groups := []netip.Addr{netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("ff15::1234")}
	for fam, name := range fams {
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t, tunnel())
			g := groups[fam]
			srv := mcastMember(t, b, 5353, g)
			if err := srv.JoinGroup(addrB[fam], 0); err != errs.Val {
				t.Errorf("JoinGroup(unicast) = %v, want errs.Val", err)
			}
			cli := dialUDP(t, a, netip.AddrPortFrom(g, 5353))
			msg := pattern(300, 7)
			if _, err := cli.Write(msg); err != nil {
				t.Fatal(err)
			}
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1000)
			n, m, err := srv.ReadMsg(buf)
			if err != nil || n != len(msg) || m.Dst != g {
				t.Fatalf("ReadMsg: %d %+v %v", n, m, err)
			}
			if err := srv.LeaveGroup(g, 0); err != nil {
				t.Fatalf("LeaveGroup: %v", err)
			}
			if err := srv.LeaveGroup(g, 0); err != errs.Val {
				t.Errorf("second LeaveGroup = %v, want errs.Val", err)
			}
			if _, err := cli.Write(msg); err != nil {
				t.Fatal(err)
			}
			srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, _, err := srv.ReadMsg(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after leave: %v, want a deadline", err)
			}
			// A membership still held at Close is dropped.
			if err := srv.JoinGroup(g, 0); err != nil {
				t.Fatal(err)
			}
			srv.Close()
			b.Lock()
			left := b.IP().Groups(nil)
			b.Unlock()
			for _, x := range left {
				if x == g {
					t.Errorf("group %v still joined after Close", g)
				}
			}
		})
	}
}
