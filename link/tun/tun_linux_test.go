//go:build linux

package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

func TestOpenErrors(t *testing.T) {
	if _, err := Open("this-name-is-far-too-long", 1500); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Fatal(err)
	}
	if _, err := Open("x", 10); err == nil {
		t.Fatal("tiny MTU accepted")
	}
	if os.Geteuid() == 0 {
		if _, err := Open("bad/name", 1500); err == nil || !strings.Contains(err.Error(), "bad interface name") {
			t.Fatalf("bad name: %v", err)
		}
	} else {
		_, err := Open("wisptest0", 1500)
		if err == nil || !(strings.Contains(err.Error(), "CAP_NET_ADMIN") || strings.Contains(err.Error(), "missing")) {
			t.Fatalf("unprivileged Open: %v", err)
		}
	}
}

func sum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// udp4 builds an IPv4/UDP packet.
func udp4(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	binary.BigEndian.PutUint16(b[10:], fold(sum(b[:20], 0)))
	u := b[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	ph := sum(src[:], sum(dst[:], uint32(unix.IPPROTO_UDP)+uint32(len(u))))
	c := fold(sum(u, ph))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on a locked OS thread that has joined the namespace ns. The thread is
// never unlocked, so the runtime discards it when f's goroutine ends: no goroutine of the
// test is left in the namespace.
func inNetns(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		done <- f()
	}()
	return <-done
}

// needNetns skips the test unless it can create namespaces and TUN devices.
func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for a network namespace)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
}

var nsSeq atomic.Int32

// newNS creates a namespace (lo up, no routes) that is deleted when the test ends.
func newNS(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("wisp-tuntest-%d-%d", os.Getpid(), nsSeq.Add(1))
	exec.Command("ip", "netns", "del", ns).Run() // a leftover of a crashed run
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

func TestKernelRoundTrip(t *testing.T) {
	needNetns(t)
	ns := newNS(t)

	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	var dev *Device
	sock := -1
	err := inNetns(ns, func() error {
		var err error
		if dev, err = Open("wisp%d", 1400); err != nil {
			return err
		}
		if out, err := exec.Command("ip", "-n", ns, "addr", "add", "198.18.0.1/30", "dev", dev.Name()).CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr: %v: %s", err, out)
		}
		if sock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(sock, &unix.SockaddrInet4{Port: 40000, Addr: [4]byte{198, 18, 0, 1}})
	})
	if sock >= 0 {
		defer unix.Close(sock)
	}
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		t.Fatal(err)
	}
	if !strings.HasPrefix(dev.Name(), "wisp") || dev.MTU() != 1400 {
		t.Fatal(dev.Name(), dev.MTU())
	}
	var got []byte
	d := linktest.NewDispatcher(alloc)
	found := make(chan struct{}, 1)
	d.OnDeliver = func(p *pbuf.Pbuf) {
		b := p.Bytes(nil)
		p.Free()
		// Ignore anything but our datagram (the kernel may send IPv6 chatter).
		if len(b) >= 28 && b[0]>>4 == 4 && b[9] == unix.IPPROTO_UDP && bytes.Equal(b[16:20], []byte{198, 18, 0, 2}) {
			got = b
			select {
			case found <- struct{}{}:
			default:
			}
		}
	}
	dev.Attach(d)

	// Kernel → TUN.
	if err := unix.Sendto(sock, []byte("ping from the kernel"), 0, &unix.SockaddrInet4{Port: 9999, Addr: [4]byte{198, 18, 0, 2}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-found:
	case <-time.After(5 * time.Second):
		t.Fatal("datagram never reached the dispatcher")
	}
	if string(got[28:]) != "ping from the kernel" || binary.BigEndian.Uint16(got[22:]) != 9999 {
		t.Fatalf("got %x", got)
	}

	// TUN → kernel: a chained frame (header pbuf + payload pbuf) written with writev.
	pkt := udp4([4]byte{198, 18, 0, 2}, [4]byte{198, 18, 0, 1}, 9999, 40000, []byte("pong from wisp"))
	h := linktest.Frame(t, alloc, pkt[:28])
	pbuf.Cat(h, linktest.Frame(t, alloc, pkt[28:]))
	if n, err := dev.WritePackets([]*pbuf.Pbuf{h}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 100)
	n, from, err := unix.Recvfrom(sock, buf, 0)
	if err != nil {
		t.Fatal("kernel did not receive the reply:", err)
	}
	if string(buf[:n]) != "pong from wisp" || from.(*unix.SockaddrInet4).Port != 9999 {
		t.Fatalf("kernel got %q from %v", buf[:n], from)
	}
	// Too long.
	if _, err := dev.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, make([]byte, 1401))}); !errors.Is(err, errs.Val) {
		t.Fatal(err)
	}
	if rx, _, tx, txd := dev.Stats(); rx == 0 || tx != 1 || txd != 1 {
		t.Fatal(rx, tx, txd)
	}
	dev.Close()
	dev.Close()
	if _, err := dev.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, pkt)}); !errors.Is(err, errs.Clsd) {
		t.Fatal("write after close:", err)
	}
	if dev.Err() != nil {
		t.Fatal(dev.Err())
	}
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}
