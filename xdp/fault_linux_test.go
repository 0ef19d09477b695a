//go:build linux

package xdp

import (
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

func openErr(t *testing.T, p *pair, c Config) error {
	t.Helper()
	return inNetns(p.nsX, func() error {
		l, err := Open(c)
		if err == nil {
			l.Close()
			return errors.New("Open succeeded")
		}
		return err
	})
}

func TestOpenFaults(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	base := linktest.Goroutines()
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing interface", Config{Interface: "wxanone0"}, "no such interface"},
		{"more queues than the interface's", Config{Interface: ifX, Queues: 2}, "has 1 RX queues"},
		{"too many addresses", Config{Interface: ifX, Addrs: manyAddrs(300)}, "addresses"},
		{"bad frame size", Config{Interface: ifX, FrameSize: 1000}, "frame size"},
	} {
		err := openErr(t, p, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.cfg.Interface) {
			t.Errorf("%s: %v", c.name, err)
		}
		if p.xdpAttached(t) {
			t.Fatalf("%s: xdp left attached after a failed Open", c.name)
		}
	}
	linktest.CheckGoroutines(t, base)
}

func manyAddrs(n int) []netip.Addr {
	var as []netip.Addr
	for i := range n {
		as = append(as, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))
	}
	return as
}

// TestReopen opens the same queue again right after Close: the kernel tears the old socket
// down later, and bind retries its EBUSY.
func TestReopen(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	for i := range 3 {
		start := time.Now()
		l := openIn(t, p, Config{})
		t.Logf("open %d took %v", i, time.Since(start))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteLimits(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	a := newAlloc()
	l := openIn(t, p, Config{TxFrames: 8, RingSize: 8, RxFrames: 8, Batch: 8})
	defer l.Close()
	if r := l.TxRoom(); r != 8 {
		t.Errorf("TxRoom %d, want 8", r)
	}
	big := linktest.Frame(t, a, make([]byte, 2049))
	ok := linktest.Frame(t, a, udpFrame(p, 9, []byte("x")))
	if n, err := l.WritePackets([]*pbuf.Pbuf{big, ok}); n != 1 || err != errs.Val {
		t.Errorf("too big: %d %v", n, err)
	}
	var ps []*pbuf.Pbuf
	for range 40 {
		ps = append(ps, linktest.Frame(t, a, udpFrame(p, 9, []byte("x"))))
	}
	n, err := l.WritePackets(ps)
	if err != errs.WouldBlock || n < 7 || n > 8 {
		t.Errorf("flood: %d %v", n, err)
	}
	st := l.DeviceStats(nil)[0]
	if st.TxTooBig != 1 || st.TxFull != uint64(40-n) {
		t.Errorf("counters %+v", st)
	}
	if n, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, a, make([]byte, 13))}); n != 0 || err != errs.Val {
		t.Errorf("runt: %d %v", n, err)
	}
	if st := l.DeviceStats(nil)[0]; st.TxInvalid != 1 {
		t.Errorf("runt not counted: %+v", st)
	}
	if _, err := l.WriteQueue(1, []*pbuf.Pbuf{linktest.Frame(t, a, make([]byte, 60))}); err != errs.Arg {
		t.Errorf("queue 1 of 1: %v", err)
	}
	// The kernel completes the frames: room comes back.
	deadline := time.Now().Add(2 * time.Second)
	for l.TxRoom() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("TxRoom stays %d; %+v", l.TxRoom(), l.DeviceStats(nil))
		}
		time.Sleep(time.Millisecond)
	}
	l.Close()
	linktest.CheckZero(t, a)
}

// TestInterfaceGone deletes the interface under an open link: the receiver stops, writes
// fail with errs.Clsd, Close still cleans up.
func TestInterfaceGone(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	base := linktest.Goroutines()
	a := newAlloc()
	l := openIn(t, p, Config{})
	d := linktest.NewDispatcher(a)
	l.Attach(d)
	// Down is not gone: the link waits.
	run(t, "ip", "-n", p.nsX, "link", "set", ifX, "down")
	if _, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, a, make([]byte, 60))}); err != nil {
		t.Errorf("write while down: %v", err)
	}
	time.Sleep(2 * pollTimeout * time.Millisecond)
	if err := l.Err(); err != nil {
		t.Fatalf("a link set down was taken for gone: %v", err)
	}
	run(t, "ip", "-n", p.nsX, "link", "set", ifX, "up")
	run(t, "ip", "-n", p.nsX, "link", "del", ifX)
	deadline := time.Now().Add(3 * time.Second)
	for l.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the receiver did not notice the interface going away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Log(l.Err())
	if !errors.Is(l.Err(), unix.ENXIO) {
		t.Errorf("Err %v", l.Err())
	}
	if _, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, a, make([]byte, 60))}); err != errs.Clsd {
		t.Errorf("write after the interface went: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	linktest.CheckZero(t, a)
	linktest.CheckGoroutines(t, base)
}

func TestSetAddrs(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	p.neigh(t)
	a := newAlloc()
	l := openIn(t, p, Config{Addrs: []netip.Addr{}})
	defer l.Close()
	d := linktest.NewDispatcher(a)
	l.Attach(d)
	fd := udpSocket(t, p.nsK, 40000)
	send := func() {
		if err := unix.Sendto(fd, []byte("x"), 0, &unix.SockaddrInet4{Port: 7, Addr: addrX4.As4()}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	time.Sleep(50 * time.Millisecond)
	if d.Count() != 0 {
		t.Fatalf("redirected a frame for an address not set: %d", d.Count())
	}
	// A link-local address (the host's own, formed from the same MAC) is not redirected.
	ll := netip.MustParseAddr("fe80::1")
	if err := l.SetAddrs([]netip.Addr{addrX4, ll}); err != nil {
		t.Fatal(err)
	}
	l.amu.Lock()
	if l.obj.addrs[ll] || !l.obj.addrs[addrX4] {
		t.Errorf("program redirects %v, want %v and not the link-local %v", l.obj.addrs, addrX4, ll)
	}
	l.amu.Unlock()
	// Resent until it arrives: a veth may drop a frame racing with the map update.
	for tries := 0; d.Count() == 0; tries++ {
		if tries == 20 {
			t.Fatalf("nothing received after SetAddrs; %+v", l.DeviceStats(nil))
		}
		send()
		d.Wait(1, 100*time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a resent frame still on its way
	before := d.Count()
	if err := l.SetAddrs(nil); err != nil {
		t.Fatal(err)
	}
	send()
	time.Sleep(50 * time.Millisecond)
	if d.Count() != before {
		t.Fatalf("%d frames after the address was removed, %d before", d.Count(), before)
	}
	l.Close()
	if err := l.SetAddrs(nil); err != errs.Clsd {
		t.Errorf("SetAddrs after Close: %v", err)
	}
	runtime.KeepAlive(d)
}

func TestDropper(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	p.neigh(t)
	var d *Dropper
	if err := inNetns(p.nsX, func() error {
		var err error
		d, err = NewDropper(ifX, AttachAuto)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !p.xdpAttached(t) {
		t.Error("no program attached")
	}
	fd := connectedUDP(t, p.nsK, 40000)
	for range 50 {
		unix.Write(fd, []byte("x"))
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := d.Count()
		if err != nil {
			t.Fatal(err)
		}
		if n >= 50 {
			t.Logf("%s mode: %d dropped", d.Mode, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 50 counted", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	if p.xdpAttached(t) {
		t.Error("still attached after Close")
	}
	if err := inNetns(p.nsX, func() error { _, err := NewDropper("wxanone0", AttachAuto); return err }); err == nil || !strings.Contains(err.Error(), "wxanone0") {
		t.Errorf("missing interface: %v", err)
	}
}

// TestAttachRedirect: the program on its own, with a socket bound elsewhere.
func TestAttachRedirect(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	p.neigh(t)
	var x *xsk
	var r *Redirect
	c, _ := Config{Interface: ifX}.withDefaults()
	if err := inNetns(p.nsX, func() error {
		ifindex, err := ifIndex(ifX)
		if err != nil {
			return err
		}
		if x, err = newXSK(ifindex, 0, &c); err != nil {
			return err
		}
		i, n := x.fill.reserve(64)
		for k := range n {
			*x.fill.addr(i + k) = uint64(k) * uint64(c.FrameSize)
		}
		x.fill.submit()
		r, err = AttachRedirect(ifX, AttachAuto, []int{x.fd}, []netip.Addr{addrX4})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer x.close()
	t.Log(r.Mode())
	fd := connectedUDP(t, p.nsK, 40000)
	deadline := time.Now().Add(2 * time.Second)
	for tries := 0; ; tries++ {
		// Resent every 100 ms: a veth may drop the frames that race with the attach.
		if tries%20 == 0 {
			unix.Write(fd, []byte("hello"))
		}
		if i, n := x.rx.peek(1); n == 1 {
			d := x.rx.desc(i)
			if d.Len != 14+20+8+5 || string(x.umem[d.Addr+42:d.Addr+47]) != "hello" {
				t.Errorf("descriptor %+v", *d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing redirected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if p.xdpAttached(t) {
		t.Error("still attached")
	}
}

// TestRxFlood: a peer that sends faster than the stack takes frames fills the rings; the
// drops are counted (the kernel's XDP_STATISTICS) and the link works on afterwards.
func TestRxFlood(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	p.neigh(t)
	base := linktest.Goroutines()
	a := newAlloc()
	l := openIn(t, p, Config{RxFrames: 64, RingSize: 64, Batch: 16})
	d := linktest.NewDispatcher(a)
	d.Discard = true
	slow := true
	var mu sync.Mutex
	d.OnDeliver = func(p *pbuf.Pbuf) {
		mu.Lock()
		s := slow
		mu.Unlock()
		if s {
			time.Sleep(100 * time.Microsecond)
		}
		p.Free()
	}
	l.Attach(d)
	fd := connectedUDP(t, p.nsK, 40000)
	const flood = 5000
	for range flood {
		unix.Write(fd, []byte("flood"))
	}
	mu.Lock()
	slow = false
	mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	st := l.DeviceStats(nil)[0]
	t.Logf("delivered %d of %d; %+v", d.Count(), flood, st)
	if dropped := st.RxRingFull + st.FillRingEmpty + st.RxDropped; dropped == 0 || st.RxPackets+dropped < flood*9/10 {
		t.Errorf("drops not counted: delivered %d, %+v", d.Count(), st)
	}
	before := d.Count()
	unix.Write(fd, []byte("after"))
	if !d.Wait(before+1, 2*time.Second) {
		t.Fatalf("nothing received after the flood; %+v", l.DeviceStats(nil))
	}
	l.Close()
	linktest.CheckZero(t, a)
	linktest.CheckGoroutines(t, base)
}
