// Package ping is ping(8) over wisp's ping sockets (endpoint.PingConn): the one way the
// CLI, the demo and the tests ping, as any user of the socket layer would. It is in layer
// internal: it imports endpoint and wire; safe for concurrent use (each call its own socket).
package ping

import (
	"bytes"
	"context"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/wire"
)

// Dialer opens ping sockets: endpoint.Net, and the WireGuard adapter's Net over it.
type Dialer interface {
	DialPingAddr(laddr, raddr netip.Addr) (*endpoint.PingConn, error)
}

// Run sends count echo requests carrying size bytes of data to dst through one ping socket
// of n, as ping(8) does: one at a time, each waiting for its reply (the same sequence number
// and data) or for ctx. report, when not nil, gets each sequence number (from 1) and
// round-trip time. Errors are the socket's (*net.OpError with an errno), or ctx's when ctx
// ended the wait.
func Run(ctx context.Context, n Dialer, dst netip.Addr, size, count int,
	report func(seq int, rtt time.Duration)) error {
	c, err := n.DialPingAddr(netip.Addr{}, dst)
	if err != nil {
		return err
	}
	defer c.Close()
	// ctx ends a wait by expiring the socket's deadlines.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := Request(dst, 0, size)
	m := wire.ICMPv4(req)
	reply := make([]byte, len(req)+1)
	for seq := 1; seq <= count; seq++ {
		m.SetSeq(uint16(seq)) // the stack writes the identifier and the checksum
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return ctxOr(ctx, err)
		}
		for {
			k, err := c.Read(reply)
			if err != nil {
				return ctxOr(ctx, err)
			}
			if r := wire.ICMPv4(reply[:k]); k == len(req) && r.Seq() == uint16(seq) && bytes.Equal(r.Payload(), m.Payload()) {
				break
			}
		}
		if report != nil {
			report(seq, time.Since(start))
		}
	}
	return nil
}

// Once sends one echo request of size bytes of data to dst and returns the round-trip time.
func Once(ctx context.Context, n Dialer, dst netip.Addr, size int) (time.Duration, error) {
	var rtt time.Duration
	err := Run(ctx, n, dst, size, 1, func(_ int, d time.Duration) { rtt = d })
	return rtt, err
}

// Request returns an echo request for dst's family with sequence number seq and size bytes
// of data (0, 1, 2, ...), as a ping socket takes it: ICMP and ICMPv6 echoes share one
// layout; the socket writes the identifier and the checksum.
func Request(dst netip.Addr, seq uint16, size int) []byte {
	req := make([]byte, wire.ICMPv4HeaderLen+size)
	m := wire.ICMPv4(req)
	m.SetType(wire.ICMPv4EchoRequest)
	if dst.Is6() {
		m.SetType(wire.ICMPv6EchoRequest)
	}
	m.SetSeq(seq)
	for i := range m.Payload() {
		m.Payload()[i] = byte(i)
	}
	return req
}

// ctxOr returns ctx's error when ctx is done (it caused err), else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
