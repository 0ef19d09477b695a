//go:build linux

package tun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// tapAddrs are the kernel's and wisp's addresses on the TAP's subnet.
var tapAddrs = [2][2]netip.Addr{
	{netip.MustParseAddr("198.18.5.1"), netip.MustParseAddr("fd42:5eed:5::1")},
	{netip.MustParseAddr("198.18.5.2"), netip.MustParseAddr("fd42:5eed:5::2")},
}

// tapEnv is a wisp stack on a TAP in a namespace of its own, the kernel on the other side.
type tapEnv struct {
	ns  string
	dev *Device
	s   *stack.Stack
	ev  *stacktest.Evidence
}

// newTAPEnv opens a TAP with c in a new namespace, gives the kernel's side tapAddrs[0] and
// attaches a wisp stack of cores cores (0: one) with tapAddrs[1]. Everything is closed and checked (pools at zero,
// no goroutine left) when the test ends; a failure prints the stack, the device and the
// kernel's neighbours and sockets.
func newTAPEnv(t *testing.T, c Config, cores int) *tapEnv {
	t.Helper()
	needNetns(t)
	stacktest.NoGoroutineLeak(t)
	e := &tapEnv{ns: newNS(t)}
	c.TAP = true
	if err := inNetns(e.ns, func() (err error) { e.dev, err = OpenConfig(c); return err }); err != nil {
		t.Fatal(err)
	}
	s, err := stack.New(stack.Config{Options: opt.Tunnel(), Cores: cores})
	if err != nil {
		e.dev.Close()
		t.Fatal(err)
	}
	e.s = s
	stacktest.Closed(t, s)
	e.ev = stacktest.OnFail(t, stacktest.Side{Name: "wisp", Stack: s, Links: []any{e.dev}},
		stacktest.Side{Name: "kernel", More: func(w io.Writer) {
			for _, args := range [][]string{{"ip", "neigh"}, {"ip", "-s", "link", "show", e.dev.Name()}, {"ss", "-tin"}} {
				out, _ := exec.Command("ip", append([]string{"netns", "exec", e.ns}, args...)...).CombinedOutput()
				fmt.Fprintf(w, "$ %s\n%s", strings.Join(args, " "), out)
			}
		}})
	if _, err := s.AddNetif(e.dev, stack.NetifConfig{Name: "tap", Addrs: []netip.Prefix{
		netip.PrefixFrom(tapAddrs[1][0], 24), netip.PrefixFrom(tapAddrs[1][1], 64)}}); err != nil {
		e.dev.Close()
		t.Fatal(err)
	}
	run(t, "ip", "-n", e.ns, "addr", "add", tapAddrs[0][0].String()+"/24", "dev", e.dev.Name())
	run(t, "ip", "-n", e.ns, "-6", "addr", "add", tapAddrs[0][1].String()+"/64", "dev", e.dev.Name(), "nodad")
	return e
}

// kernel runs a command in the namespace and returns its output.
func (e *tapEnv) kernel(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", e.ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The device on a TAP: Ethernet medium, a random locally administered unicast MAC that is
// not the kernel's, a fixed one when asked for, and the MTU of the IP packet.
func TestTAPOpen(t *testing.T) {
	needNetns(t)
	ns := newNS(t)
	var a, b *Device
	err := inNetns(ns, func() (err error) {
		if a, err = OpenConfig(Config{Name: "wtap%d", MTU: 1400, TAP: true}); err != nil {
			return err
		}
		b, err = OpenConfig(Config{Name: "wtap%d", MTU: 9000, TAP: true, HardwareAddr: [6]byte{0x02, 0x42, 0, 0, 0, 7}})
		return err
	})
	if a != nil {
		defer a.Close()
	}
	if b != nil {
		defer b.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	hw := a.HardwareAddr()
	if a.Medium() != link.MediumEthernet || a.MTU() != 1400 || hw[0]&1 != 0 || hw[0]&2 == 0 ||
		hw == a.KernelHardwareAddr() || a.KernelHardwareAddr() == [6]byte{} || !strings.HasPrefix(a.Name(), "wtap") {
		t.Fatalf("%s: medium %v mtu %d mac %s kernel's %s", a.Name(), a.Medium(), a.MTU(), macString(hw), macString(a.KernelHardwareAddr()))
	}
	// The kernel's address, as ip sees it.
	if out, _ := exec.Command("ip", "-n", ns, "link", "show", a.Name()).CombinedOutput(); !strings.Contains(string(out), "link/ether "+macString(a.KernelHardwareAddr())) ||
		!strings.Contains(string(out), "mtu 1400") {
		t.Fatalf("kernel's view of %s (mac %s):\n%s", a.Name(), macString(a.KernelHardwareAddr()), out)
	}
	if b.HardwareAddr() != [6]byte{0x02, 0x42, 0, 0, 0, 7} || b.MTU() != 9000 {
		t.Fatal(macString(b.HardwareAddr()), b.MTU())
	}
	// Refused: a multicast address, and the kernel's own.
	if _, err := OpenConfig(Config{Name: "x", MTU: 1500, TAP: true, HardwareAddr: [6]byte{0x01, 0, 0x5e, 0, 0, 1}}); err == nil || !strings.Contains(err.Error(), "multicast") {
		t.Fatal(err)
	}
	// A persistent TAP whose address the test knows, attached with that address.
	own := [6]byte{0x02, 0x42, 0, 0, 0, 8}
	run(t, "ip", "-n", ns, "tuntap", "add", "mode", "tap", "name", "wtapp")
	run(t, "ip", "-n", ns, "link", "set", "wtapp", "address", macString(own))
	err = inNetns(ns, func() error {
		d, err := OpenConfig(Config{Name: "wtapp", MTU: 1400, TAP: true, HardwareAddr: own})
		if err == nil {
			d.Close()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "kernel interface") {
		t.Fatalf("the kernel's own address: %v", err)
	}
}

// A wisp stack on a TAP answers the kernel's pings (small and fragmented, both families)
// and its ARP and neighbour solicitations: the kernel's neighbour table holds wisp's MAC
// for both addresses. TCP both ways in both families, with and without virtio-net
// offloads, on one queue and on two (with a stack of two cores).
func TestTAPStack(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   Config
		cores int
	}{
		{"plain", Config{Name: "wtap0", MTU: 1500}, 1},
		{"offload", Config{Name: "wtap0", MTU: 1500, Offload: true}, 1},
		{"offload 2 queues 2 cores", Config{Name: "wtap0", MTU: 1500, Offload: true, Queues: 2}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newTAPEnv(t, c.cfg, c.cores)
			for _, dst := range []string{tapAddrs[1][0].String(), tapAddrs[1][1].String()} {
				for _, size := range []int{56, 4000} {
					out := e.kernel(t, "ping", "-c", "3", "-i", "0.2", "-W", "3", "-s", strconv.Itoa(size), dst)
					if !strings.Contains(out, "3 received") {
						t.Fatalf("ping -s %d %s:\n%s", size, dst, out)
					}
				}
			}
			neigh := e.kernel(t, "ip", "neigh", "show", "dev", e.dev.Name())
			for _, a := range tapAddrs[1] {
				if !strings.Contains(neigh, a.String()+" lladdr "+macString(e.dev.HardwareAddr())) {
					t.Errorf("the kernel has no neighbour entry %s → %s:\n%s", a, macString(e.dev.HardwareAddr()), neigh)
				}
			}
			snap := e.s.Stats()
			if snap.Etharp.Xmit == 0 || snap.ND6.Xmit == 0 || snap.ICMP.Xmit < 6 || snap.ICMP6.Xmit < 6 {
				t.Errorf("etharp %+v nd6 %+v icmp xmit %d icmp6 xmit %d", snap.Etharp, snap.ND6, snap.ICMP.Xmit, snap.ICMP6.Xmit)
			}
			n := endpoint.New(e.s)
			for i, fam := range []string{"tcp4", "tcp6"} {
				e.tcp(t, n, fam, i, 8<<20)
			}
			if c.cfg.Offload {
				rxGSO, _, bad, txGSO := e.dev.OffloadStats()
				t.Logf("offloads: %d GSO packets read, %d written, %d bad headers", rxGSO, txGSO, bad)
				if !e.dev.offload {
					t.Log("the kernel refused offloads: the plain path ran")
				} else if rxGSO == 0 || txGSO == 0 || bad != 0 {
					t.Errorf("offloads on a TAP: %d GSO packets read, %d written, %d bad headers", rxGSO, txGSO, bad)
				}
			}
			if q := e.dev.Queues(); q != max(c.cfg.Queues, 1) {
				t.Errorf("%d queues", q)
			}
		})
	}
}

// tcp moves size bytes each way between the kernel and wisp in family i: one connection
// wisp dials to a kernel listener, one the kernel dials to a wisp listener.
func (e *tapEnv) tcp(t *testing.T, n *endpoint.Net, fam string, i int, size int64) {
	t.Helper()
	const d = 20 * time.Second
	kaddr := netip.AddrPortFrom(tapAddrs[0][i], 7001)
	waddr := netip.AddrPortFrom(tapAddrs[1][i], 7002)
	var kl net.Listener
	if err := inNetns(e.ns, func() (err error) { kl, err = net.Listen(fam, kaddr.String()); return err }); err != nil {
		t.Fatal(err)
	}
	defer kl.Close()
	c1, s1 := stacktest.Connect(t, e.ev, d,
		func() (net.Conn, error) { return n.Dial(fam, kaddr.String()) }, kl.Accept)
	stacktest.Transfer(t, c1, s1, size, 1, d)
	stacktest.Transfer(t, s1, c1, size, 2, d)

	wl, err := n.Listen(fam, waddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Close()
	c2, s2 := stacktest.Connect(t, e.ev, d, func() (c net.Conn, err error) {
		err = inNetns(e.ns, func() (err error) { c, err = net.DialTimeout(fam, waddr.String(), d); return err })
		return c, err
	}, wl.Accept)
	stacktest.Transfer(t, c2, s2, size, 3, d)
	stacktest.Transfer(t, s2, c2, size, 4, d)
}

// Reading and writing TAP frames with virtio-net headers allocates nothing, as on a TUN:
// the kernel's UDP datagrams (checksums left partial) are read, and 60 KiB Ethernet GSO
// frames written.
func TestTAPZeroAllocs(t *testing.T) {
	needNetns(t)
	ns := newNS(t)
	alloc := bigAllocator()
	dev := openIn(t, ns, Config{MTU: 1500, Offload: true, TAP: true}, "198.18.6.1", "fd42:5eed:6::1")
	if !dev.offload {
		t.Skip("the kernel refuses virtio-net offloads on a TAP")
	}
	// wisp's side is 198.18.6.2 at the device's address, without ARP.
	run(t, "ip", "-n", ns, "neigh", "add", "198.18.6.2", "lladdr", macString(dev.HardwareAddr()), "dev", dev.Name(), "nud", "permanent")
	q, fd := readDirect(dev, alloc)
	const runs = 100
	kernelUDP(t, ns, [4]byte{198, 18, 6, 2}, runs+20)
	read, udp := 0, 0
	allocs := testing.AllocsPerRun(runs, func() {
		if err := q.readOne(fd); err != nil {
			t.Fatal(err)
		}
		for _, p := range q.batch {
			if p.TotLen() == wire.EthernetHeaderLen+28+1000 && p.Flags()&pbuf.FlagChecksumPartial != 0 {
				udp++
			}
			p.Free()
		}
		read += len(q.batch)
		q.batch = q.batch[:0]
	})
	if allocs != 0 {
		t.Errorf("read: %v allocations per frame", allocs)
	}
	if _, _, bad, _ := dev.OffloadStats(); read != runs+1 || udp < runs-5 || bad != 0 {
		t.Errorf("read %d frames, %d UDP with partial checksums, %d bad headers", read, udp, bad)
	}

	// Writes: a 60 KiB IPv4 GSO packet behind an Ethernet header (the kernel answers it
	// with a reset nobody reads).
	frame := ethFrame(tso4(t, [4]byte{198, 18, 6, 2}, [4]byte{198, 18, 6, 1}, 60000))
	kern := dev.KernelHardwareAddr()
	hw := dev.HardwareAddr()
	copy(frame[0:], kern[:])
	copy(frame[6:], hw[:])
	writeGSO(t, dev, alloc, frame, runs)
	// Too long: an MTU-sized IP packet fits behind its Ethernet header, one byte more not.
	if _, err := dev.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, make([]byte, 14+1501))}); !errors.Is(err, errs.Val) {
		t.Errorf("a frame of 1501 IP bytes: %v", err)
	}
	q.release()
	dev.Close()
	linktest.CheckZero(t, alloc)
}
