package stack_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp"
)

// TCPConns lists every connection of a stack, listeners excluded, as both ends hold it:
// data in flight shows as unacknowledged with the retransmission timer armed, data
// delivered and not consumed as unread, and after a close the TIME-WAIT that remains.
func TestTCPConns(t *testing.T) {
	o := opt.Tunnel()
	o.IPv6AutoConfig = false
	o.IPv6DupAddrDetectTransmits = 0
	clk := clock.NewFake(time.Unix(1e9, 0))
	p := newPair(t, link.MediumIP, o, clk)
	if got := p.A.TCPConns(nil); len(got) != 0 {
		t.Fatalf("a fresh stack lists %d connections: %v", len(got), got)
	}
	server := netip.AddrPortFrom(addrB4.Addr(), 80)
	var lsn *tcp.Listener
	var accepted *tcp.PCB
	var held []*pbuf.Pbuf // received by b and not consumed (no Recved)
	p.B.Callback(func() {
		c, _ := p.B.TCP().NewPCB()
		if err := c.Bind(server); err != nil {
			t.Error(err)
		}
		lsn, _ = c.Listen(1)
		lsn.OnAccept(func(_ *tcp.Listener, c *tcp.PCB) {
			accepted = c
			c.OnRecv(func(c *tcp.PCB, q *pbuf.Pbuf) {
				if q != nil {
					held = append(held, q)
				}
			})
		})
	})
	if got := p.B.TCPConns(nil); len(got) != 0 {
		t.Fatalf("a listener is listed as a connection: %v", got)
	}
	var conn *tcp.PCB
	p.A.Callback(func() {
		conn, _ = p.A.TCP().NewPCB()
		if err := conn.Connect(server, nil); err != nil {
			t.Error(err)
		}
	})
	p.PipeA.Flush()
	if accepted == nil {
		t.Fatal("not connected")
	}

	// 1000 bytes queued and sent, not yet delivered: in flight, the RTO armed.
	p.A.Callback(func() {
		if err := conn.Write(make([]byte, 1000), tcp.WriteCopy); err != nil {
			t.Error(err)
		}
		conn.Output()
	})
	a := p.A.TCPConns(nil)
	if len(a) != 1 {
		t.Fatalf("a lists %d connections, want 1: %v", len(a), a)
	}
	ca := a[0]
	if ca.State != tcp.StateEstablished || ca.Remote != server || ca.SndNxt-ca.SndUna != 1000 ||
		ca.Unacked != 1000 || !strings.Contains(ca.Timers, "rto=") {
		t.Errorf("a's connection with 1000 bytes in flight: %v", ca)
	}

	// Delivered and acknowledged: b holds them unread, its RCV.NXT is a's SND.NXT.
	p.PipeA.Flush()
	clk.Advance(time.Second) // past the delayed ACK
	p.PipeA.Flush()
	ca = p.A.TCPConns(nil)[0]
	b := p.B.TCPConns(nil)
	if len(b) != 1 {
		t.Fatalf("b lists %d connections, want 1: %v", len(b), b)
	}
	cb := b[0]
	if cb.State != tcp.StateEstablished || cb.Local != ca.Remote || cb.Remote != ca.Local {
		t.Errorf("the two ends do not match:\na: %v\nb: %v", ca, cb)
	}
	if ca.SndUna != ca.SndNxt || cb.RcvNxt != ca.SndNxt || cb.RcvUnread != 1000 || strings.Contains(ca.Timers, "rto=") {
		t.Errorf("after delivery:\na: %v\nb: %v", ca, cb)
	}
	if s := cb.String(); !strings.HasPrefix(s, "ESTABLISHED ") || !strings.Contains(s, "unread=1000") {
		t.Errorf("Info.String: %q", s)
	}

	// a closes first and ends in TIME-WAIT; a reused slice is appended to.
	p.B.Callback(func() {
		for _, q := range held {
			q.Free()
		}
		accepted.Recved(1000)
		accepted.OnRecv(func(c *tcp.PCB, q *pbuf.Pbuf) {
			if q == nil {
				c.Close()
			}
		})
		_ = lsn.Close()
	})
	p.A.Callback(func() { _ = conn.Close() })
	for range 10 {
		p.PipeA.Flush()
		clk.Advance(100 * time.Millisecond)
	}
	buf := make([]tcp.Info, 1, 4)
	buf = p.A.TCPConns(buf)
	if len(buf) != 2 || buf[1].State != tcp.StateTimeWait {
		t.Errorf("after a's close: %v, want its TIME-WAIT after the first element", buf[1:])
	}
	if b := p.B.TCPConns(nil); len(b) != 0 {
		t.Errorf("b still lists %v", b)
	}
}
