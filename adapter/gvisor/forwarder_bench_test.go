package gvisor_test

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/wispstack/wisp/adapter/gvisor"
	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/stack/stacktest"
)

// BenchmarkForwarderTCPEndpoint measures what the gVisor-shaped endpoint costs a relay:
// one wisp stack streams to another over a pipe (MTU 1500), and the receiver reads in
// 32 KiB calls either from the wisp connection itself (direct) or through
// gonet.NewTCPConn over a TCPEndpoint (gonet), as a ported tun2socks does; the other way,
// the sender writes through gonet.
func BenchmarkForwarderTCPEndpoint(b *testing.B) {
	for _, mode := range []string{"direct", "gonet-read", "gonet-write"} {
		b.Run(mode, func(b *testing.B) {
			p := stacktest.NewPair(b, stacktest.PairConfig{})
			stacktest.WaitReady(b, p.NetifA, p.NetifB)
			dst := netip.AddrPortFrom(stacktest.AddrB[0], 9000)
			l, err := endpoint.New(p.B).ListenTCPAddrPort(dst)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			sc, err := endpoint.New(p.A).DialTCPAddrPort(dst)
			if err != nil {
				b.Fatal(err)
			}
			rc, err := l.AcceptTCP()
			if err != nil {
				b.Fatal(err)
			}
			var src io.Writer = sc
			var dstR io.Reader = rc
			var closers []io.Closer
			wrap := func(c *endpoint.TCPConn) net.Conn {
				var wq waiter.Queue
				g := gonet.NewTCPConn(&wq, gvisor.NewTCPEndpoint(c, &wq))
				closers = append(closers, g)
				return g
			}
			switch mode {
			case "gonet-read":
				dstR = wrap(rc)
				closers = append(closers, sc)
			case "gonet-write":
				src = wrap(sc)
				closers = append(closers, rc)
			default:
				closers = append(closers, sc, rc)
			}
			defer func() {
				for _, c := range closers {
					c.Close()
				}
			}()
			const chunk = 32 << 10
			buf := make([]byte, chunk)
			done := make(chan error, 1)
			go func() {
				out := make([]byte, chunk)
				var err error
				for i := 0; i < b.N && err == nil; i++ {
					_, err = src.Write(out)
				}
				done <- err
			}()
			b.SetBytes(chunk)
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := io.ReadFull(dstR, make([]byte, 0)); err != nil {
				b.Fatal(err)
			}
			for got := 0; got < b.N*chunk; {
				n, err := dstR.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
			b.StopTimer()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestForwarderTCPEndpointAllocs pins the endpoint's Read and Write (with gonet's
// SliceWriter and bytes.Reader, and the reader goroutine's work between reads) at zero
// allocations, between two wisp stacks, which allocate nothing on these paths either.
func TestForwarderTCPEndpointAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	p := stacktest.NewPair(t, stacktest.PairConfig{})
	stacktest.WaitReady(t, p.NetifA, p.NetifB)
	dst := netip.AddrPortFrom(stacktest.AddrB[0], 9001)
	l, err := endpoint.New(p.B).ListenTCPAddrPort(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := endpoint.New(p.A).DialTCPAddrPort(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	rc, err := l.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	ep := gvisor.NewTCPEndpoint(rc, nil)
	defer ep.Close()

	const runs, size = 100, 100
	if _, err := peer.Write(make([]byte, 2*runs*size)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption); n < 2*runs*size; n, _ = ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes arrived", n)
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, size)
	var sw tcpip.SliceWriter
	var rerr tcpip.Error
	read := func() {
		for {
			sw = buf
			if _, rerr = ep.Read(&sw, tcpip.ReadOptions{}); rerr == nil {
				return
			}
			if _, ok := rerr.(*tcpip.ErrWouldBlock); !ok {
				return
			}
			runtime.Gosched() // the reader goroutine parks with the next byte
		}
	}
	if a := testing.AllocsPerRun(runs, read); a != 0 || rerr != nil {
		t.Errorf("Read: %v allocations per run (%v)", a, rerr)
	}
	msg := make([]byte, size)
	var r bytes.Reader
	var werr tcpip.Error
	write := func() {
		r.Reset(msg)
		_, werr = ep.Write(&r, tcpip.WriteOptions{})
	}
	if a := testing.AllocsPerRun(runs, write); a != 0 || werr != nil {
		t.Errorf("Write: %v allocations per run (%v)", a, werr)
	}
}

// TestForwarderTCPEndpointMemory measures what a TCPEndpoint adds to a wisp connection
// (its reader goroutine's stack and the structures): 1,000 connections between two wisp
// stacks, wrapped, the Go heap and stacks in use compared before and after. A
// measurement: it runs with WISP_FORWARDER_THROUGHPUT=1.
func TestForwarderTCPEndpointMemory(t *testing.T) {
	if os.Getenv("WISP_FORWARDER_THROUGHPUT") == "" {
		t.Skip("a measurement: set WISP_FORWARDER_THROUGHPUT=1")
	}
	const n = 1000
	p := stacktest.NewPair(t, stacktest.PairConfig{})
	stacktest.WaitReady(t, p.NetifA, p.NetifB)
	dst := netip.AddrPortFrom(stacktest.AddrB[0], 9002)
	l, err := endpoint.New(p.B).ListenTCPAddrPort(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conns := make([]*endpoint.TCPConn, 0, 2*n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	accepted := make([]*endpoint.TCPConn, 0, n)
	for range n {
		c, err := endpoint.New(p.A).DialTCPAddrPort(dst)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		a, err := l.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, a)
	}
	inUse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	before := inUse()
	eps := make([]*gvisor.TCPEndpoint, 0, n)
	for _, a := range accepted {
		eps = append(eps, gvisor.NewTCPEndpoint(a, nil))
	}
	time.Sleep(100 * time.Millisecond) // every reader parked in its Read
	after := inUse()
	t.Logf("%d TCPEndpoints: %d KiB more heap and stacks, %d bytes each", n, (after-before)>>10, (after-before)/n)
	for _, e := range eps {
		e.Close()
	}
}
