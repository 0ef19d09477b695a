package stacktest

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/wire"
)

// A Pair carries TCP both ways over IPv4 and IPv6, and Transfer verifies the bytes.
func TestPairTransfer(t *testing.T) {
	p := NewPair(t, PairConfig{})
	WaitReady(t, p.NetifA, p.NetifB)
	for fam, name := range []string{"IPv4", "IPv6"} {
		t.Run(name, func(t *testing.T) {
			a, b := connect(t, p, fam)
			Transfer(t, a, b, 256<<10, 1, time.Minute)
			Transfer(t, b, a, 100<<10, 2, time.Minute)
		})
	}
}

// Inject feeds a netif as its link would: B answers an injected echo request to A on a
// synchronous pipe, and BuffersZero finds nothing held afterwards.
func TestInject(t *testing.T) {
	p := NewPair(t, PairConfig{Clock: clock.NewFake(time.Unix(1e9, 0))})
	req := make([]byte, wire.ICMPv4HeaderLen+4)
	r := wire.ICMPv4Repr{Type: wire.ICMPv4EchoRequest, Ident: 1, Seq: 1, PayloadLen: 4}
	if err := r.Emit(req); err != nil {
		t.Fatal(err)
	}
	before := p.B.Stats().ICMP
	Inject(t, p.NetifB, iptest.Packet(wire.ProtoICMP, AddrA[0], AddrB[0], req))
	p.PipeA.Flush()
	if s := p.B.Stats().ICMP; s.Recv != before.Recv+1 || s.Xmit != before.Xmit+1 {
		t.Errorf("ICMP before %+v after %+v: want one request in, one reply out", before, s)
	}
	BuffersZero(t, p.A)
	BuffersZero(t, p.B)
}

// checkPattern names the first byte that differs, a short stream and a long one.
func TestCheckPattern(t *testing.T) {
	good := make([]byte, 1000)
	FillPattern(good, 9, 0)
	if n, err := checkPattern(bytes.NewReader(good), 1000, 9); err != nil || n != 1000 {
		t.Fatalf("intact stream: %d, %v", n, err)
	}
	bad := bytes.Clone(good)
	bad[700] ^= 1
	for _, tc := range []struct {
		b    []byte
		n    int64
		want string
	}{
		{bad, 1000, "byte 700 is"},
		{good[:999], 1000, "EOF after 999 of 1000"},
		{good, 999, "more than the 999 bytes"},
	} {
		if _, err := checkPattern(bytes.NewReader(tc.b), tc.n, 9); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// CaptureTo writes a pcap file named after the test when given a directory, and returns
// the link itself when not.
func TestCaptureTo(t *testing.T) {
	dir := t.TempDir()
	p := NewPair(t, PairConfig{WrapA: func(_ *stack.Stack, l link.Endpoint) link.Endpoint {
		if got := CaptureTo(t, l, "", 128); got != l {
			t.Errorf("CaptureTo without a directory wrapped the link: %T", got)
		}
		return CaptureTo(t, l, dir, 128)
	}})
	WaitReady(t, p.NetifA, p.NetifB)
	connect(t, p, 0)
	fi, err := os.Stat(filepath.Join(dir, "TestCaptureTo.pcap"))
	if err != nil || fi.Size() <= 24 { // more than the file header: the handshake
		t.Errorf("capture file: %v, %v", fi, err)
	}
}

// connect returns a TCP connection from p.A to p.B (fam 0 IPv4, 1 IPv6), both ends from
// Connect.
func connect(t *testing.T, p *Pair, fam int) (client, server *netconn.TCPConn) {
	t.Helper()
	l, err := netconn.ListenTCP(p.B, netip.AddrPortFrom(AddrB[fam], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return Connect(t, p.Ev, time.Minute, func() (*netconn.TCPConn, error) {
		return netconn.DialTCP(ctx, p.A, netip.AddrPort{}, l.Addr(), nil)
	}, l.Accept)
}
