//go:build linux

package xdp

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

// connectedUDP returns a kernel UDP socket in ns connected from 198.18.0.1:port to the
// link's 198.18.0.2:7, so that sends need no sockaddr (and allocate nothing).
func connectedUDP(t testing.TB, ns string, port int) int {
	t.Helper()
	fd := udpSocket(t, ns, port)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: 7, Addr: addrX4.As4()}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// waitCount spins until d has counted n frames, without allocating.
func waitCount(d *linktest.Dispatcher, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for d.Count() < n {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
	return true
}

func TestAllocsRx(t *testing.T) {
	needKernel(t)
	for _, zc := range []bool{false, true} {
		p := newPair(t, 1)
		p.neigh(t)
		a := newAlloc()
		c := Config{}
		if zc {
			c.RxZeroCopy, c.Alloc = true, a
		}
		l := openIn(t, p, c)
		d := linktest.NewDispatcher(a)
		d.Discard = true
		l.Attach(d)
		fd := connectedUDP(t, p.nsK, 40000)
		msg := make([]byte, 100)
		const burst = 16
		want := 0
		round := func() {
			for range burst {
				unix.Write(fd, msg)
			}
			want += burst
			if !waitCount(d, want, 2*time.Second) {
				t.Fatalf("rxzc=%v: %d of %d frames; %+v", zc, d.Count(), want, l.DeviceStats(nil))
			}
		}
		round() // warm up: the receiver's first wake-up, lazy pools
		if n := testing.AllocsPerRun(50, round); n != 0 {
			t.Errorf("rxzc=%v: %v allocations per burst of %d frames received", zc, n, burst)
		}
		l.Close()
		linktest.CheckZero(t, a)
	}
}

func TestAllocsTx(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	a := newAlloc()
	l := openIn(t, p, Config{})
	defer l.Close()
	ps := make([]*pbuf.Pbuf, 16)
	frame := udpFrame(p, 9, make([]byte, 100))
	write := func() {
		for i := range ps {
			ps[i], _ = a.Alloc(pbuf.LayerRaw, len(frame), pbuf.RAM)
			ps[i].CopyIn(frame, 0)
		}
		l.WritePackets(ps)
		l.TxRoom()
	}
	write()
	if n := testing.AllocsPerRun(100, write); n != 0 {
		t.Errorf("%v allocations per write of %d frames", n, len(ps))
	}
	l.Close()
	linktest.CheckZero(t, a)
}
