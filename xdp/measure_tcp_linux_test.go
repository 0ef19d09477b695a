//go:build linux

package xdp

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/stack"
)

// TestMeasureTCP measures a TCP bulk transfer from a one-core wisp stack on the link to a
// kernel socket over the veth, with Offloads' GSOMax and without (gsoMax 0: the stack
// builds MTU-sized segments). Only with WISP_XDP_MEASURE=1.
func TestMeasureTCP(t *testing.T) {
	if os.Getenv("WISP_XDP_MEASURE") != "1" {
		t.Skip("set WISP_XDP_MEASURE=1 to measure")
	}
	needKernel(t)
	defer func(v int) { gsoMax = v }(gsoMax)
	for _, g := range []int{65535, 0, 65535, 0, 65535, 0} {
		gsoMax = g
		mbps := measureTCP(t, 256<<20, false, false)
		t.Logf("GSOMax %5d: wisp→kernel %.0f Mbit/s", g, mbps)
	}
	gsoMax = 65535
	for _, zc := range []bool{false, true, false, true, false, true} {
		mbps := measureTCP(t, 256<<20, true, zc)
		t.Logf("rxzc %5v: kernel→wisp %.0f Mbit/s", zc, mbps)
	}
}

func measureTCP(t *testing.T, total int64, toWisp, rxzc bool) float64 {
	p := newPair(t, 1)
	s, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := Config{}
	if rxzc {
		c.RxZeroCopy, c.Alloc = true, s.Allocator()
	}
	l := openIn(t, p, c)
	if _, err := s.AddNetif(l, stack.NetifConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")}}); err != nil {
		l.Close()
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	var start time.Time
	buf := make([]byte, 256<<10)
	if toWisp {
		ln, err := netconn.ListenTCP(s, netip.MustParseAddrPort("198.18.0.2:5002"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- -1
				return
			}
			defer c.Close()
			n, _ := io.Copy(io.Discard, c)
			got <- n
		}()
		var kc net.Conn
		if err := inNetns(p.nsK, func() error {
			var err error
			kc, err = net.DialTimeout("tcp4", "198.18.0.2:5002", 5*time.Second)
			return err
		}); err != nil {
			t.Fatalf("dial: %v; link %+v", err, l.DeviceStats(nil))
		}
		start = time.Now()
		kc.SetWriteDeadline(start.Add(60 * time.Second))
		if _, err := io.CopyN(kc, zeroReader{}, total); err != nil {
			t.Fatalf("kernel write: %v; link %+v", err, l.DeviceStats(nil))
		}
		kc.Close()
	} else {
		var ln net.Listener
		if err := inNetns(p.nsK, func() error {
			var err error
			ln, err = net.Listen("tcp4", "198.18.0.1:5001")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- -1
				return
			}
			defer c.Close()
			n, _ := io.Copy(io.Discard, c)
			got <- n
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := netconn.DialTCP(ctx, s, netip.AddrPort{}, netip.MustParseAddrPort("198.18.0.1:5001"), nil)
		if err != nil {
			t.Fatalf("dial: %v; link %+v", err, l.DeviceStats(nil))
		}
		start = time.Now()
		c.SetWriteDeadline(start.Add(60 * time.Second))
		for sent := int64(0); sent < total; {
			n, err := c.Write(buf[:min(int64(len(buf)), total-sent)])
			sent += int64(n)
			if err != nil {
				t.Fatalf("write after %d bytes: %v; link %+v", sent, err, l.DeviceStats(nil))
			}
		}
		c.Close()
	}
	var n int64
	select {
	case n = <-got:
	case <-time.After(30 * time.Second):
		t.Fatalf("receiver stuck; link %+v", l.DeviceStats(nil))
	}
	el := time.Since(start)
	if n != total {
		t.Fatalf("received %d of %d bytes", n, total)
	}
	t.Logf("link %+v", l.DeviceStats(nil))
	return float64(total) * 8 / el.Seconds() / 1e6
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
