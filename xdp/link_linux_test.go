//go:build linux

package xdp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

var (
	addrX4 = netip.MustParseAddr("198.18.0.2")
	addrX6 = netip.MustParseAddr("fd42:5eed::2")
)

// newAlloc returns an allocator whose POOL pbufs hold a whole frame.
func newAlloc() *pbuf.Allocator {
	return pbuf.NewAllocator(pbuf.Config{PoolCount: 1024, PoolBufSize: 2048, HeapSize: 256 << 10, RefCount: 2048, RAMCount: 256})
}

// openIn opens a link on the pair's link end, from inside its namespace.
func openIn(t testing.TB, p *pair, c Config) *Link {
	t.Helper()
	c.Interface = ifX
	if c.Addrs == nil {
		c.Addrs = []netip.Addr{addrX4, addrX6}
	}
	var l *Link
	err := inNetns(p.nsX, func() error {
		var err error
		l, err = Open(c)
		return err
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// echoUDP turns a received IPv4/UDP frame into its echo, in place: MACs, addresses and
// ports swapped (which keeps both checksums valid). It reports whether the frame was one.
func echoUDP(p *pbuf.Pbuf) bool {
	b := p.Payload()
	if p.Next() != nil || len(b) < 42 || binary.BigEndian.Uint16(b[12:]) != 0x0800 || b[23] != unix.IPPROTO_UDP {
		return false
	}
	var mac [6]byte
	copy(mac[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], mac[:])
	var a [4]byte
	copy(a[:], b[26:30])
	copy(b[26:30], b[30:34])
	copy(b[30:34], a[:])
	ihl := int(b[14]&0xf) * 4
	u := b[14+ihl:]
	sp := binary.BigEndian.Uint16(u[0:])
	copy(u[0:2], u[2:4])
	binary.BigEndian.PutUint16(u[2:], sp)
	return true
}

// echoer is a dispatcher that sends every UDP frame back on queue q and frees the rest.
// Each queue's receiver delivers from its own goroutine, so each write has its own slice.
func echoer(a *pbuf.Allocator, l *Link) *linktest.Dispatcher {
	d := linktest.NewDispatcher(a)
	d.OnDeliver = func(p *pbuf.Pbuf) {
		if !echoUDP(p) {
			p.Free()
			return
		}
		l.WritePackets([]*pbuf.Pbuf{p})
	}
	return d
}

// udpSocket returns a kernel UDP socket in ns bound to 198.18.0.1:port with a receive timeout.
func udpSocket(t testing.TB, ns string, port int) int {
	t.Helper()
	fd := -1
	err := inNetns(ns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(2 * time.Second))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		return unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{198, 18, 0, 1}})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestEchoUDP(t *testing.T) {
	needKernel(t)
	type variant struct {
		mode          AttachMode
		zc, xzc, busy bool
	}
	var vs []variant
	for _, mode := range []AttachMode{AttachDriver, AttachGeneric} {
		for _, zc := range []bool{false, true} {
			vs = append(vs, variant{mode: mode, zc: zc})
		}
	}
	// XDP_ZEROCOPY asked (veth refuses it: copy mode, logged), and busy polling.
	vs = append(vs, variant{mode: AttachAuto, xzc: true, busy: true})
	for _, v := range vs {
		mode, zc := v.mode, v.zc
		{
			t.Run(fmt.Sprintf("%v/rxzc=%v/zc=%v/busy=%v", mode, zc, v.xzc, v.busy), func(t *testing.T) {
				p := newPair(t, 1)
				p.neigh(t)
				base := linktest.Goroutines()
				a := newAlloc()
				var logs []string
				c := Config{Mode: mode, RxZeroCopy: zc, ZeroCopy: v.xzc, BusyPoll: v.busy,
					Logf: func(f string, args ...any) { logs = append(logs, fmt.Sprintf(f, args...)) }}
				if zc {
					c.Alloc = a
				}
				l := openIn(t, p, c)
				t.Logf("%v %q", l.Info(), logs)
				if info := l.Info(); info.RxZeroCopy != zc || info.Attach != map[AttachMode]string{AttachDriver: "driver", AttachGeneric: "generic", AttachAuto: "driver"}[mode] {
					t.Errorf("Info %+v", info)
				}
				if v.xzc && !l.Info().ZeroCopy && (len(logs) != 1 || !strings.Contains(logs[0], "zero-copy refused")) {
					t.Errorf("copy-mode fallback not logged: %q", logs)
				}
				if !p.xdpAttached(t) {
					t.Error("ip link shows no xdp program after Open")
				}
				d := echoer(a, l)
				l.Attach(d)
				fd := udpSocket(t, p.nsK, 40000)
				const n = 200
				buf := make([]byte, 2048)
				for i := range n {
					msg := linktest.Pattern(1+i*7%1400, byte(i))
					if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Port: 7, Addr: addrX4.As4()}); err != nil {
						t.Fatal(err)
					}
					k, from, err := unix.Recvfrom(fd, buf, 0)
					if err != nil {
						t.Fatalf("datagram %d: no echo: %v; link %+v; delivered %d", i, err, l.DeviceStats(nil), d.Count())
					}
					if sa, ok := from.(*unix.SockaddrInet4); !ok || sa.Port != 7 || sa.Addr != addrX4.As4() {
						t.Fatalf("echo from %+v", from)
					}
					if !bytes.Equal(buf[:k], msg) {
						t.Fatalf("datagram %d: echo differs (%d bytes, sent %d)", i, k, len(msg))
					}
				}
				st := l.DeviceStats(nil)
				t.Logf("%+v", st)
				// No TxKicks check: in copy mode the receiver's poll(2) transmits what the TX
				// ring holds too (xsk_poll), and may do so before the kicker's sendto.
				if st[0].RxPackets < n || st[0].TxPackets != n {
					t.Errorf("counters %+v", st[0])
				}
				if err := l.Close(); err != nil {
					t.Error(err)
				}
				if p.xdpAttached(t) {
					t.Error("xdp program still attached after Close")
				}
				if _, err := l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, a, make([]byte, 60))}); err == nil {
					t.Error("write after Close accepted")
				}
				linktest.CheckZero(t, a)
				linktest.CheckGoroutines(t, base)
			})
		}
	}
}

func TestMultiQueue(t *testing.T) {
	needKernel(t)
	const queues = 4
	p := newPair(t, queues)
	p.neigh(t)
	base := linktest.Goroutines()
	a := newAlloc()
	// Fewer sockets than the device has queues: said once.
	var logs []string
	l1 := openIn(t, p, Config{Logf: func(f string, args ...any) { logs = append(logs, fmt.Sprintf(f, args...)) }})
	if l1.Info().DeviceQueues != queues || len(logs) != 1 || !strings.Contains(logs[0], "1 of the interface's 4 RX queues") {
		t.Errorf("Info %+v, logs %q", l1.Info(), logs)
	}
	l1.Close()
	l := openIn(t, p, Config{Queues: queues})
	t.Log(l.Info())
	if l.Queues() != queues || l.TxQueues() != queues {
		t.Fatalf("%d queues", l.Queues())
	}
	d := echoer(a, l)
	l.Attach(d)
	const socks, each = 16, 20
	fds := make([]int, socks)
	for i := range fds {
		fds[i] = udpSocket(t, p.nsK, 41000+i)
	}
	buf := make([]byte, 2048)
	for i := range each {
		for s, fd := range fds {
			msg := linktest.Pattern(64+i, byte(s))
			if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Port: 7, Addr: addrX4.As4()}); err != nil {
				t.Fatal(err)
			}
			k, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || !bytes.Equal(buf[:k], msg) {
				t.Fatalf("socket %d datagram %d: %v; link %+v", s, i, err, l.DeviceStats(nil))
			}
		}
	}
	st := l.DeviceStats(nil)
	used := 0
	var total uint64
	for q, s := range st {
		t.Logf("queue %d: rx %d tx %d kicks %d", q, s.RxPackets, s.TxPackets, s.TxKicks)
		if s.RxPackets > 0 {
			used++
		}
		total += s.RxPackets
	}
	if total < socks*each {
		t.Errorf("%d frames received, want %d", total, socks*each)
	}
	if used < 2 {
		t.Errorf("%d flows landed on %d queue(s): no spread", socks, used)
	}
	// Writes on every queue.
	for q := range queues {
		f := linktest.Frame(t, a, udpFrame(p, 41000, []byte("hello")))
		if n, err := l.WriteQueue(q, []*pbuf.Pbuf{f}); n != 1 || err != nil {
			t.Fatalf("queue %d: %d %v", q, n, err)
		}
		k, _, err := unix.Recvfrom(fds[0], buf, 0)
		if err != nil || string(buf[:k]) != "hello" {
			t.Fatalf("queue %d: %q %v", q, buf[:k], err)
		}
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	if p.xdpAttached(t) {
		t.Error("xdp still attached")
	}
	linktest.CheckZero(t, a)
	linktest.CheckGoroutines(t, base)
}

// udpFrame builds an Ethernet/IPv4/UDP frame from the link (198.18.0.2:7) to the kernel's
// 198.18.0.1:port, checksums complete.
func udpFrame(p *pair, port int, payload []byte) []byte {
	f := ether(0x0800, ipv4(netip.AddrFrom4([4]byte{198, 18, 0, 1}), 0, 8+len(payload)))
	copy(f[0:6], p.macK)
	copy(f[6:12], p.macX)
	ip := f[14:34]
	copy(ip[12:16], []byte{198, 18, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], csum(ip, 0))
	u := f[34:]
	binary.BigEndian.PutUint16(u[0:], 7)
	binary.BigEndian.PutUint16(u[2:], uint16(port))
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	ph := sum16(ip[12:20], 17+uint32(len(u)))
	binary.BigEndian.PutUint16(u[6:], csum(u, ph))
	return f
}

func sum16(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func csum(b []byte, s uint32) uint16 {
	s = sum16(b, s)
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// TestRxZeroCopyLending: with RxZeroCopy at most RxFrames/2 frames are lent to the stack at
// once, the rest copied; lent frames outlive Close (the UMEM stays mapped) and go back when
// freed.
func TestRxZeroCopyLending(t *testing.T) {
	needKernel(t)
	p := newPair(t, 1)
	p.neigh(t)
	base := linktest.Goroutines()
	a := newAlloc()
	l := openIn(t, p, Config{RxZeroCopy: true, Alloc: a, RxFrames: 64, RingSize: 64, Batch: 16})
	var held []*pbuf.Pbuf
	var mu sync.Mutex
	d := linktest.NewDispatcher(a)
	d.OnDeliver = func(p *pbuf.Pbuf) {
		mu.Lock()
		held = append(held, p)
		mu.Unlock()
	}
	l.Attach(d)
	fd := connectedUDP(t, p.nsK, 40000)
	const n = 100
	for i := range n {
		unix.Write(fd, linktest.Pattern(32, byte(i)))
		if !d.Wait(i+1, 2*time.Second) {
			t.Fatalf("frame %d not delivered; %+v", i, l.DeviceStats(nil))
		}
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	refs := 0
	for i, p := range held {
		if p.Type() == pbuf.REF {
			refs++
		}
		b := p.Bytes(nil)
		if len(b) != 14+20+8+32 || !bytes.Equal(b[42:], linktest.Pattern(32, byte(i))) {
			t.Fatalf("frame %d (%v) changed after Close: % x", i, p.Type(), b)
		}
	}
	if refs != 32 {
		t.Errorf("%d frames lent, want 32 (RxFrames/2)", refs)
	}
	for _, p := range held {
		p.Free()
	}
	if q := l.queues[0]; q.x.umem != nil || q.lent.Load() != 0 {
		t.Errorf("UMEM still mapped after the last lent frame came back (lent %d)", q.lent.Load())
	}
	linktest.CheckZero(t, a)
	linktest.CheckGoroutines(t, base)
}
