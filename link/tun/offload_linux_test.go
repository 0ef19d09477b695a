//go:build linux

package tun

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// bigAllocator has room for 64 KiB standing chains on several queues of two devices.
func bigAllocator() *pbuf.Allocator {
	return pbuf.NewAllocator(pbuf.Config{
		PoolCount: 4096, PoolBufSize: 2560, HeapSize: 1 << 20, RefCount: 256, RAMCount: 256,
	})
}

// openIn opens a device in namespace ns, gives the kernel's side addr4/24 and addr6/64,
// and closes it when the test ends.
func openIn(t *testing.T, ns string, c Config, addr4, addr6 string) *Device {
	t.Helper()
	var dev *Device
	err := inNetns(ns, func() (err error) {
		dev, err = OpenConfig(c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	run(t, "ip", "-n", ns, "addr", "add", addr4+"/24", "dev", dev.Name())
	run(t, "ip", "-n", ns, "-6", "addr", "add", addr6+"/64", "dev", dev.Name(), "nodad")
	return dev
}

// bridge joins two kernels through two TUN devices and this test: ns A (198.18.1.1,
// fd42:5eed:1::1) and ns B (.2, ::2) on one subnet, each reaching the other through its
// TUN; what device A reads, device B writes, and back. GSO packets the kernel of A hands
// over thus come out of B's write path, and the other way round.
type bridge struct {
	nsA, nsB   string
	devA, devB *Device
	alloc      *pbuf.Allocator
	mtu        int

	mu       sync.Mutex
	checked  int // GSO packets decoded with gopacket
	bad      []string
	largest  int
	gsoSeen  int
	usoSeen  int // UDP GSO packets (USO)
	overMTU  int
	writeErr error
}

var bridgeAddrs = [2][2]string{{"198.18.1.1", "fd42:5eed:1::1"}, {"198.18.1.2", "fd42:5eed:1::2"}}

func newBridge(t *testing.T, c Config) *bridge {
	t.Helper()
	needNetns(t)
	base := linktest.Goroutines()
	b := &bridge{nsA: newNS(t), nsB: newNS(t), alloc: bigAllocator(), mtu: c.MTU}
	b.devA = openIn(t, b.nsA, c, bridgeAddrs[0][0], bridgeAddrs[0][1])
	b.devB = openIn(t, b.nsB, c, bridgeAddrs[1][0], bridgeAddrs[1][1])
	// Registered after the devices' cleanups, so it runs before them: close, then check.
	t.Cleanup(func() {
		b.devA.Close()
		b.devB.Close()
		linktest.CheckZero(t, b.alloc)
		linktest.CheckGoroutines(t, base)
	})
	for _, end := range []struct {
		from, to *Device
	}{{b.devA, b.devB}, {b.devB, b.devA}} {
		d := linktest.NewDispatcher(b.alloc)
		d.OnDeliver = func(p *pbuf.Pbuf) { b.forward(p, end.to) }
		end.from.Attach(d)
	}
	return b
}

// forward checks p and writes it to the other device (which takes it).
func (b *bridge) forward(p *pbuf.Pbuf, to *Device) {
	gso, size := p.GSO()
	if gso == pbuf.GSOUDPL4 {
		b.mu.Lock()
		b.usoSeen++
		b.mu.Unlock()
	} else if gso != pbuf.GSONone {
		b.mu.Lock()
		b.gsoSeen++
		b.largest = max(b.largest, p.TotLen())
		if p.TotLen() > b.mtu {
			b.overMTU++
		}
		check := b.checked < 200
		if check {
			b.checked++
		}
		b.mu.Unlock()
		if check {
			if err := checkGSO(p.Bytes(nil), gso, size, p.Flags(), b.mtu); err != nil {
				b.mu.Lock()
				b.bad = append(b.bad, err.Error())
				b.mu.Unlock()
			}
		}
	}
	if _, err := to.WritePackets([]*pbuf.Pbuf{p}); err != nil && !errors.Is(err, errs.WouldBlock) {
		b.mu.Lock()
		if b.writeErr == nil {
			b.writeErr = err
		}
		b.mu.Unlock()
	}
}

// checkGSO decodes a GSO packet with gopacket: one IPv4 or IPv6 packet whose length field
// covers it, one TCP header, a partial checksum that is the folded pseudo-header sum, and a
// segment size that fits the MTU.
func checkGSO(b []byte, gso pbuf.GSOType, size int, flags pbuf.Flags, mtu int) error {
	first := layers.LayerTypeIPv4
	if gso == pbuf.GSOTCPv6 {
		first = layers.LayerTypeIPv6
	}
	pkt := gopacket.NewPacket(b, first, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		return fmt.Errorf("gopacket: %v", el.Error())
	}
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		return fmt.Errorf("no TCP layer in a %v GSO packet", gso)
	}
	var src, dst netip.Addr
	var iphl int
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		if gso != pbuf.GSOTCPv4 || int(ip.Length) != len(b) {
			return fmt.Errorf("IPv4 length %d of %d bytes, gso %v", ip.Length, len(b), gso)
		}
		src, dst, iphl = netip.AddrFrom4([4]byte(ip.SrcIP.To4())), netip.AddrFrom4([4]byte(ip.DstIP.To4())), int(ip.IHL)*4
	case *layers.IPv6:
		if gso != pbuf.GSOTCPv6 || int(ip.Length)+40 != len(b) {
			return fmt.Errorf("IPv6 payload length %d of %d bytes, gso %v", ip.Length, len(b), gso)
		}
		src, dst, iphl = netip.AddrFrom16([16]byte(ip.SrcIP)), netip.AddrFrom16([16]byte(ip.DstIP)), 40
	}
	thl := int(tcp.DataOffset) * 4
	if size <= 0 || iphl+thl+size > mtu {
		return fmt.Errorf("segment size %d with %d header bytes exceeds the MTU %d", size, iphl+thl, mtu)
	}
	if flags&pbuf.FlagChecksumOK == 0 {
		return fmt.Errorf("GSO packet without FlagChecksumOK")
	}
	l4 := len(b) - iphl
	if flags&pbuf.FlagChecksumPartial != 0 {
		want := wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoTCP, src, dst, uint32(l4)))
		if tcp.Checksum != want {
			return fmt.Errorf("partial checksum %#04x, want the pseudo-header sum %#04x", tcp.Checksum, want)
		}
	}
	return nil
}

// transfer runs n bytes each way at once over one kernel TCP connection from ns A to a
// listener in ns B, both byte-exact (sha256), within d. On failure it says what both
// kernels' sockets and both devices held.
func (b *bridge) transfer(t *testing.T, v6 bool, port int, n int64, d time.Duration) {
	t.Helper()
	network, i := "tcp4", 0
	if v6 {
		network, i = "tcp6", 1
	}
	addr := net.JoinHostPort(bridgeAddrs[1][i], fmt.Sprint(port))
	var l net.Listener
	if err := inNetns(b.nsB, func() (err error) { l, err = net.Listen(network, addr); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(d)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	srv := make(chan result, 1)
	var sc net.Conn
	var scMu sync.Mutex
	go func() {
		l.(*net.TCPListener).SetDeadline(deadline)
		c, err := l.Accept()
		if err != nil {
			srv <- result{err: err}
			return
		}
		scMu.Lock()
		sc = c
		scMu.Unlock()
		sum, got, err := exchange(c, n, 2, deadline)
		srv <- result{sum, got, err}
	}()
	var c net.Conn
	err := inNetns(b.nsA, func() (err error) {
		c, err = (&net.Dialer{Deadline: deadline}).Dial(network, addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	sum, got, cerr := exchange(c, n, 1, deadline)
	ss := ssInfo(b.nsA)
	var sr result
	select {
	case sr = <-srv:
	case <-time.After(time.Until(deadline) + time.Second):
		sr.err = errors.New("server never finished")
	}
	scMu.Lock()
	if sc != nil {
		sc.Close()
	}
	scMu.Unlock()
	if cerr != nil || sr.err != nil || got != n || sr.n != n || sum != patternSum(n, 2) || sr.sum != patternSum(n, 1) {
		t.Errorf("A: got %d bytes (%v); B: got %d bytes (%v); sums ok A %v B %v", got, cerr, sr.n, sr.err,
			sum == patternSum(n, 2), sr.sum == patternSum(n, 1))
		t.Logf("A sockets:\n%s\nB sockets:\n%s", ss, ssInfo(b.nsB))
		b.logState(t)
		t.FailNow()
	}
	el := time.Since(start)
	t.Logf("%s: %d MiB each way in %v (%.0f Mbit/s each way)", network, n>>20, el.Round(time.Millisecond), float64(n)*8/el.Seconds()/1e6)
	t.Logf("kernel A after the transfer: %s", strings.TrimSpace(ss))
}

func (b *bridge) logState(t *testing.T) {
	t.Helper()
	for _, d := range []*Device{b.devA, b.devB} {
		rx, rxd, tx, txd := d.Stats()
		g, p, bad, tg := d.OffloadStats()
		t.Logf("%s: rx %d dropped %d tx %d dropped %d; rx gso %d partial %d bad header %d, tx gso %d; err %v",
			d.Name(), rx, rxd, tx, txd, g, p, bad, tg, d.Err())
	}
	b.mu.Lock()
	t.Logf("bridge: gso %d (over the MTU %d, largest %d), checked %d, bad %q, write error %v", b.gsoSeen, b.overMTU, b.largest, b.checked, b.bad, b.writeErr)
	b.mu.Unlock()
}

func ssInfo(ns string) string {
	out, _ := exec.Command("ip", "netns", "exec", ns, "ss", "-tin").CombinedOutput()
	return string(out)
}

// pattern is the stream each side sends: a seeded pseudo-random block, repeated.
func pattern(seed uint64) []byte {
	b := make([]byte, 1<<20+7)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	return b
}

var sumCache sync.Map

func patternSum(n int64, seed uint64) [32]byte {
	k := [2]uint64{uint64(n), seed}
	if s, ok := sumCache.Load(k); ok {
		return s.([32]byte)
	}
	h := sha256.New()
	p := pattern(seed)
	for left := n; left > 0; {
		k := min(left, int64(len(p)))
		h.Write(p[:k])
		left -= k
	}
	var s [32]byte
	h.Sum(s[:0])
	sumCache.Store(k, s)
	return s
}

// exchange writes n bytes of the pattern of seed to c, then half-closes, while it reads
// to end of file; it returns the sha256 and length of what it read.
func exchange(c net.Conn, n int64, seed uint64, deadline time.Time) ([32]byte, int64, error) {
	c.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() {
		p := pattern(seed)
		for left := n; left > 0; {
			k := min(left, int64(len(p)))
			if _, err := c.Write(p[:k]); err != nil {
				werr <- err
				return
			}
			left -= k
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	h := sha256.New()
	got, err := io.Copy(h, c)
	var s [32]byte
	h.Sum(s[:0])
	return s, got, errors.Join(err, <-werr)
}

func transferSize() int64 {
	if testing.Short() {
		return 8 << 20
	}
	return 64 << 20
}

// The kernel of A sends TCP through an offloading TUN: device A delivers GSO packets
// larger than the MTU whose headers and partial checksums gopacket finds valid; device B
// writes them, and the kernel of B takes them: byte-exact each way, IPv4 and IPv6.
func TestOffloadKernelTCP(t *testing.T) {
	b := newBridge(t, Config{Name: "wispo%d", MTU: 1500, Offload: true})
	for _, d := range []*Device{b.devA, b.devB} {
		if d.Offloads() != (link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, USO: d.USO(), GSOMax: 65535}) {
			t.Fatalf("%s: offloads %+v", d.Name(), d.Offloads())
		}
	}
	if out := run2(t, "ip", "-n", b.nsA, "-d", "link", "show", b.devA.Name()); !strings.Contains(out, "vnet_hdr on") {
		t.Fatalf("no vnet_hdr:\n%s", out)
	}
	for i, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) {
			b.transfer(t, v6, 5001+i, transferSize(), 60*time.Second)
		})
	}
	b.logState(t)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bad) > 0 || b.writeErr != nil {
		t.Errorf("bad GSO packets %q, write error %v", b.bad, b.writeErr)
	}
	if b.overMTU == 0 || b.checked == 0 {
		t.Errorf("no GSO packet over the MTU (%d GSO packets, largest %d)", b.gsoSeen, b.largest)
	}
	for _, d := range []*Device{b.devA, b.devB} {
		if g, _, bad, tg := d.OffloadStats(); g == 0 || tg == 0 || bad != 0 {
			t.Errorf("%s: rx gso %d, tx gso %d, bad headers %d", d.Name(), g, tg, bad)
		}
	}
	// Idle, open devices hold no pool memory: the readers free their standing chains.
	var tb memp.Table
	b.alloc.Register(&tb)
	inUse := func() (n int) {
		for _, p := range tb.Snapshot(nil) {
			n += p.Used
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); inUse() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("idle devices hold %d pool elements", inUse())
			break
		}
	}
}

func run2(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// When the kernel refuses TUNSETOFFLOAD, OpenConfig says so once and opens a plain
// device, which works as Open's: no offloads, nothing over the MTU.
func TestOffloadFallback(t *testing.T) {
	needNetns(t)
	old := setOffload
	setOffload = func(int, int) error { return unix.EINVAL }
	defer func() { setOffload = old }()
	var logged []string
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	b := newBridge(t, Config{MTU: 1400, Offload: true, Logf: logf})
	setOffload = old
	if len(logged) != 2 || !strings.Contains(logged[0], "refuses offloads") || !strings.Contains(logged[0], "invalid argument") {
		t.Fatalf("log: %q", logged)
	}
	t.Logf("log line: %s", logged[0])
	for _, d := range []*Device{b.devA, b.devB} {
		if d.Offloads() != (link.Offloads{}) || d.MTU() != 1400 {
			t.Fatalf("%s: %+v", d.Name(), d.Offloads())
		}
	}
	if out := run2(t, "ip", "-n", b.nsA, "-d", "link", "show", b.devA.Name()); !strings.Contains(out, "vnet_hdr off") {
		t.Fatalf("vnet_hdr still on:\n%s", out)
	}
	b.transfer(t, false, 5003, 4<<20, 30*time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gsoSeen != 0 || b.writeErr != nil {
		t.Fatalf("gso %d, write error %v", b.gsoSeen, b.writeErr)
	}
}

// Queues > 1 opens a multi-queue device with that many queues, each read by its reader;
// several connections (spread over the queues by the kernel's flow hash) stay byte-exact.
func TestOffloadMultiQueue(t *testing.T) {
	const nq = 4
	b := newBridge(t, Config{MTU: 1500, Offload: true, Queues: nq})
	for _, d := range []*Device{b.devA, b.devB} {
		if d.Queues() != nq {
			t.Fatalf("%d queues", d.Queues())
		}
	}
	out := run2(t, "ip", "-n", b.nsA, "-d", "link", "show", b.devA.Name())
	if !strings.Contains(out, "multi_queue") || !strings.Contains(out, fmt.Sprintf("numqueues %d ", nq)) || !strings.Contains(out, "vnet_hdr on") {
		t.Fatalf("not %d queues with vnet headers:\n%s", nq, out)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fmt.Sprint("conn", i), func(t *testing.T) {
				b.transfer(t, i%2 == 1, 5010+i, transferSize()/4, 60*time.Second)
			})
		}()
	}
	wg.Wait()
	if _, err := OpenConfig(Config{MTU: 1500, Queues: 257}); err == nil {
		t.Fatal("257 queues accepted")
	}
}

// Reading and writing frames allocates nothing: the standing chain is topped up, the
// header and iovecs are scratch of the device.
func TestOffloadZeroAllocs(t *testing.T) {
	needNetns(t)
	ns := newNS(t)
	alloc := bigAllocator()
	dev := openIn(t, ns, Config{MTU: 1500, Offload: true}, "198.18.2.1", "fd42:5eed:2::1")
	q, fd := readDirect(dev, alloc)

	const runs = 100
	// The kernel sends UDP datagrams into the TUN, their checksums left partial.
	kernelUDP(t, ns, [4]byte{198, 18, 2, 2}, runs+20)
	read := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if err := q.readOne(fd); err != nil {
			t.Fatal(err)
		}
		for _, p := range q.batch {
			p.Free()
		}
		read += len(q.batch)
		q.batch = q.batch[:0]
	})
	if allocs != 0 {
		t.Errorf("read: %v allocations per frame", allocs)
	}
	if g, partial, bad, _ := dev.OffloadStats(); read != runs+1 || partial == 0 || bad != 0 {
		t.Errorf("read %d frames, %d partial, %d bad (%d gso)", read, partial, bad, g)
	}

	// Writes: a 60 KiB GSO packet (the kernel answers it with a reset nobody reads).
	pkt := tso4(t, [4]byte{198, 18, 2, 2}, [4]byte{198, 18, 2, 1}, 60000)
	writeGSO(t, dev, alloc, pkt, runs)
	// A GSO packet the device cannot take, and one for a device without offloads.
	p := linktest.Frame(t, alloc, pkt)
	p.SetGSO(pbuf.GSOUDPL4, 1000)
	if _, err := dev.WritePackets([]*pbuf.Pbuf{p}); !errors.Is(err, errs.Val) {
		t.Errorf("USO packet: %v", err)
	}
	q.release()
	dev.Close()
	linktest.CheckZero(t, alloc)
}

// readDirect gives dev a dispatcher without attaching it (no reader goroutine: the test
// reads itself) and returns its first queue and that queue's fd.
func readDirect(dev *Device, alloc *pbuf.Allocator) (*queue, int) {
	dev.dmu.Lock()
	dev.disp = linktest.NewDispatcher(alloc)
	dev.dmu.Unlock()
	q := dev.queues[0]
	var fd int
	q.rc.Control(func(f uintptr) { fd = int(f) })
	return q, fd
}

// kernelUDP has the kernel of ns send n datagrams of 1000 bytes to dst:9999.
func kernelUDP(t *testing.T, ns string, dst [4]byte, n int) {
	t.Helper()
	var sock int
	if err := inNetns(ns, func() (err error) {
		sock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	to := &unix.SockaddrInet4{Port: 9999, Addr: dst}
	for range n {
		if err := unix.Sendto(sock, make([]byte, 1000), 0, to); err != nil {
			t.Fatal(err)
		}
	}
}

// tso4 is an IPv4 TCP packet from src to dst with payload bytes, its IP checksum complete
// and its TCP checksum left partial: what the stack hands a link with TSO.
func tso4(t *testing.T, src, dst [4]byte, payload int) []byte {
	t.Helper()
	pkt := tcpPacket(t, false, payload, false)
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], dst[:])
	var ip4 wire.IPv4 = pkt
	ip4.SetChecksum()
	l4 := pkt[20:]
	copy(l4[16:], []byte{0, 0})
	cs := wire.Fold(wire.PseudoHeaderChecksum(wire.ProtoTCP, ip4.Src(), ip4.Dst(), uint32(len(l4))))
	l4[16], l4[17] = byte(cs>>8), byte(cs)
	return pkt
}

// writeGSO writes frame (an IPv4 TSO packet, after dev's link header) runs times as a GSO
// packet with its checksum partial, and fails the test if a write allocates or fails.
func writeGSO(t *testing.T, dev *Device, alloc *pbuf.Allocator, frame []byte, runs int) {
	t.Helper()
	_, _, _, before := dev.OffloadStats()
	pkts := make([]*pbuf.Pbuf, 1)
	allocs := testing.AllocsPerRun(runs, func() {
		p, err := alloc.Alloc(pbuf.LayerRaw, len(frame), pbuf.POOL)
		if err != nil {
			t.Fatal(err)
		}
		p.CopyIn(frame, 0)
		p.SetGSO(pbuf.GSOTCPv4, 1448)
		p.SetFlags(pbuf.FlagChecksumPartial)
		pkts[0] = p
		if n, err := dev.WritePackets(pkts); n != 1 {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("write: %v allocations per frame", allocs)
	}
	if _, _, _, tg := dev.OffloadStats(); tg-before != uint64(runs)+1 {
		t.Errorf("%d GSO packets written", tg-before)
	}
}

// A partial checksum the virtio-net header cannot describe is refused on the way out.
func TestOffloadWriteRefused(t *testing.T) {
	needNetns(t)
	ns := newNS(t)
	alloc := bigAllocator()
	dev := openIn(t, ns, Config{MTU: 1500, Offload: true}, "198.18.3.1", "fd42:5eed:3::1")
	pkt := udp4([4]byte{198, 18, 3, 2}, [4]byte{198, 18, 3, 1}, 9, 9, []byte("x"))
	p := linktest.Frame(t, alloc, pkt)
	pkt2 := append([]byte(nil), pkt...)
	pkt2[0] = 0x55 // not IP: no header describes its checksum
	p2 := linktest.Frame(t, alloc, pkt2)
	p2.SetFlags(pbuf.FlagChecksumPartial)
	big := linktest.Frame(t, alloc, make([]byte, 1501)) // over the MTU without GSO
	if n, err := dev.WritePackets([]*pbuf.Pbuf{p, p2, big}); n != 1 || !errors.Is(err, errs.Val) {
		t.Fatal(n, err)
	}
	dev.Close()
	linktest.CheckZero(t, alloc)
}

// A frame of more pbufs than one writev takes is copied once and arrives whole.
func TestOffloadWriteManyPbufs(t *testing.T) {
	needNetns(t)
	ns := newNS(t)
	alloc := pbuf.NewAllocator(pbuf.Config{PoolCount: 2048, PoolBufSize: 256, HeapSize: 64 << 10, RefCount: 16, RAMCount: 16})
	dev := openIn(t, ns, Config{MTU: 1500, Offload: true}, "198.18.4.1", "fd42:5eed:4::1")
	var sock int
	if err := inNetns(ns, func() (err error) {
		if sock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(sock, &unix.SockaddrInet4{Port: 40000, Addr: [4]byte{198, 18, 4, 1}})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	payload := make([]byte, 1400)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	pkt := udp4([4]byte{198, 18, 4, 2}, [4]byte{198, 18, 4, 1}, 9999, 40000, payload)
	var h *pbuf.Pbuf
	for i := range pkt { // one byte a pbuf: 1428 pbufs
		q, err := alloc.Alloc(pbuf.LayerRaw, 1, pbuf.POOL)
		if err != nil {
			t.Fatal(err)
		}
		q.CopyIn(pkt[i:i+1], 0)
		if h == nil {
			h = q
		} else {
			pbuf.Cat(h, q)
		}
	}
	if n, err := dev.WritePackets([]*pbuf.Pbuf{h}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 2000)
	n, _, err := unix.Recvfrom(sock, buf, 0)
	if err != nil || !bytes.Equal(buf[:n], payload) {
		t.Fatalf("kernel received %d bytes (%v), equal %v", n, err, bytes.Equal(buf[:n], payload))
	}
	dev.Close()
	linktest.CheckZero(t, alloc)
}

// seqDevice is a device with offloads whose one queue reads from a SOCK_SEQPACKET socket
// (one message a read, as a TUN fd) instead of a TUN: the test writes what the kernel
// would, malformed headers included.
func seqDevice(t *testing.T, alloc *pbuf.Allocator) (*Device, *queue, int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	d := &Device{name: "seq", mtu: 1500, offload: true, rxCap: rxMax, disp: linktest.NewDispatcher(alloc)}
	q := &queue{d: d, iov: make([]unix.Iovec, 0, maxIov), batch: make([]*pbuf.Pbuf, 0, link.MaxBatch),
		discard: make([]byte, vnetHdrLen+rxMax)}
	d.queues = []*queue{q}
	return d, q, fds[0], fds[1]
}

// The read path on crafted frames: a GSO packet keeps its bytes and gets its marks; a
// malformed header or one that does not match its packet is dropped and counted, and
// the standing chain stays whole; a short packet takes one pbuf.
func TestReadOneCrafted(t *testing.T) {
	alloc := bigAllocator()
	d, q, w, r := seqDevice(t, alloc)
	tso := tcpPacket(t, false, 60000, false)
	small := tcpPacket(t, true, 10, false)
	const nc = wire.VirtioNetNeedsCsum
	for _, c := range []metaCase{
		{"tso4", hdr(nc, 1, 52, 1448, 20, 16), tso, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSOTCPv4},
		{"bad flags", append([]byte{0x10}, hdr(0, 0, 0, 0, 0, 0)[1:]...), small, false, 0, 0},
		{"tso6 header on ipv4", hdr(nc, 4, 52, 1448, 20, 16), tso, false, 0, 0},
		{"csum past the end", hdr(nc, 0, 0, 0, 70, 16), small, false, 0, 0},
		{"header only", hdr(0, 0, 0, 0, 0, 0), nil, false, 0, 0},
		{"short header", hdr(0, 0, 0, 0, 0, 0)[:4], nil, false, 0, 0},
		{"small", hdr(nc, 0, 0, 0, 40, 16), small, true, pbuf.FlagChecksumOK | pbuf.FlagChecksumPartial, pbuf.GSONone},
		{"plain", hdr(0, 0, 0, 0, 0, 0), small, true, 0, pbuf.GSONone},
	} {
		if err := unix.Sendmsg(w, append(append([]byte(nil), c.h...), c.pkt...), nil, nil, 0); err != nil {
			t.Fatal(err)
		}
		_, _, bad0, _ := d.OffloadStats()
		if err := q.readOne(r); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, _, bad, _ := d.OffloadStats()
		if !c.ok {
			if len(q.batch) != 0 || bad != bad0+1 || q.short != 0 {
				t.Errorf("%s: delivered %d, bad headers %d→%d, chain short of %d", c.name, len(q.batch), bad0, bad, q.short)
			}
			for _, p := range q.batch {
				p.Free()
			}
			q.batch = q.batch[:0]
			continue
		}
		if len(q.batch) != 1 {
			t.Fatalf("%s: %d delivered", c.name, len(q.batch))
		}
		p := q.batch[0]
		q.batch = q.batch[:0]
		gso, _ := p.GSO()
		if got := p.Bytes(nil); !bytes.Equal(got, c.pkt) || p.Flags() != c.flags || gso != c.gso || p.Check() != nil {
			t.Errorf("%s: %d bytes (equal %v), flags %v, gso %v, %v", c.name, len(got), bytes.Equal(got, c.pkt), p.Flags(), gso, p.Check())
		}
		if len(c.pkt) < 1000 && (p.Next() != nil || q.short > alloc.PoolBufSize()) {
			t.Errorf("%s: a short packet took %d bytes of the chain", c.name, q.short)
		}
		p.Free()
	}
	if rx, rxd, _, _ := d.Stats(); rxd != 5 {
		t.Errorf("dropped %d (rx %d)", rxd, rx)
	}
	// Reading a 60 KiB GSO packet allocates nothing either.
	frame := append(hdr(nc, 1, 52, 1448, 20, 16), tso...)
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := unix.Write(w, frame); err != nil {
			t.Fatal(err)
		}
		if err := q.readOne(r); err != nil || len(q.batch) != 1 || q.batch[0].TotLen() != len(tso) {
			t.Fatal(err, len(q.batch))
		}
		q.batch[0].Free()
		q.batch = q.batch[:0]
	}); allocs != 0 {
		t.Errorf("%v allocations per GSO packet read", allocs)
	}
	q.release()
	linktest.CheckZero(t, alloc)
}

// BenchmarkRxBuffers measures the receive buffer handling of one read, without the system
// call: the standing chain (take the pbufs a packet filled, top up with one AllocRx)
// against a fresh 64 KiB chain per read trimmed to the packet.
func BenchmarkRxBuffers(b *testing.B) {
	for _, n := range []int{100, 1500, 64000} {
		b.Run(fmt.Sprintf("standing/%d", n), func(b *testing.B) {
			alloc := bigAllocator()
			disp := linktest.NewDispatcher(alloc)
			q := &queue{d: &Device{rxCap: rxMax}}
			q.release()
			b.ReportAllocs()
			for b.Loop() {
				if q.short > 0 {
					p := disp.AllocRx(q.short)
					if q.stand == nil {
						q.stand = p
					} else {
						pbuf.Cat(q.stand, p)
					}
					q.short = 0
				}
				q.take(n).Free()
			}
			q.release()
		})
		b.Run(fmt.Sprintf("per-read/%d", n), func(b *testing.B) {
			alloc := bigAllocator()
			disp := linktest.NewDispatcher(alloc)
			b.ReportAllocs()
			for b.Loop() {
				p := disp.AllocRx(rxMax)
				p.Shrink(n)
				p.Free()
			}
		})
	}
}

// With USO (Linux 6.2 and later), a kernel UDP socket's UDP_SEGMENT send crosses the
// bridge as one UDP GSO packet: device A reads it whole, device B writes it whole, and the
// kernel of B cuts it into the datagrams the sender asked for, each byte-exact.
func TestOffloadKernelUSO(t *testing.T) {
	b := newBridge(t, Config{Name: "wispu%d", MTU: 1500, Offload: true})
	if !b.devA.USO() || !b.devB.USO() {
		t.Skip("the kernel refuses TUN_F_USO4/6 (Linux before 6.2)")
	}
	for i, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) {
			network := map[bool]string{false: "udp4", true: "udp6"}[v6]
			addr := net.JoinHostPort(bridgeAddrs[1][i], fmt.Sprint(6001+i))
			var rc, sc *net.UDPConn
			if err := inNetns(b.nsB, func() (err error) {
				a, _ := net.ResolveUDPAddr(network, addr)
				rc, err = net.ListenUDP(network, a)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if err := inNetns(b.nsA, func() (err error) {
				a, _ := net.ResolveUDPAddr(network, addr)
				sc, err = net.DialUDP(network, nil, a)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			const seg, n = 1000, 10500
			raw, err := sc.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var serr error
			raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) })
			if serr != nil {
				t.Fatal(serr)
			}
			msg := pattern(7)[:n]
			b.mu.Lock()
			before := b.usoSeen
			b.mu.Unlock()
			if _, err := sc.Write(msg); err != nil {
				t.Fatal(err)
			}
			rc.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 2048)
			var got []byte
			for k := 0; k < (n+seg-1)/seg; k++ {
				m, err := rc.Read(buf)
				if err != nil {
					b.logState(t)
					t.Fatalf("datagram %d: %v (got %d bytes so far)", k, err, len(got))
				}
				if want := min(seg, n-len(got)); m != want {
					t.Fatalf("datagram %d: %d bytes, want %d", k, m, want)
				}
				got = append(got, buf[:m]...)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("the datagrams do not join into what was sent")
			}
			b.mu.Lock()
			uso := b.usoSeen - before
			b.mu.Unlock()
			if uso != 1 {
				t.Errorf("%d UDP GSO packets crossed the bridge, want 1", uso)
			}
		})
	}
}
