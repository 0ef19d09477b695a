//go:build linux

package xdp_test

import (
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/xdp"
)

// TestStackPing: a one-core wisp stack on an xdp.Link answers the kernel's ping over a veth,
// IPv4 (with ARP) and IPv6 (with neighbor discovery), and the host's other traffic still
// reaches the kernel.
func TestStackPing(t *testing.T) {
	for _, zc := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "rxzc"}[zc], func(t *testing.T) { stackPing(t, zc) })
	}
}

func stackPing(t *testing.T, rxzc bool) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range []string{"ip", "ping", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "1" {
				t.Fatalf("no %s", tool)
			}
			t.Skipf("no %s", tool)
		}
	}
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nsK, nsX := "wxa-sk-"+itoa(os.Getpid()), "wxa-sx-"+itoa(os.Getpid())
	for _, ns := range []string{nsK, nsX} {
		exec.Command("ip", "netns", "del", ns).Run()
		sh("ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	sh("ip", "-n", nsK, "link", "add", "wxak0", "type", "veth", "peer", "name", "wxax0", "netns", nsX)
	sh("ip", "netns", "exec", nsK, "ethtool", "-K", "wxak0", "tx", "off")
	sh("ip", "-n", nsK, "addr", "add", "198.18.0.1/24", "dev", "wxak0")
	sh("ip", "-n", nsK, "addr", "add", "fd42:5eed::1/64", "dev", "wxak0", "nodad")
	sh("ip", "-n", nsK, "link", "set", "wxak0", "up")
	sh("ip", "-n", nsX, "link", "set", "wxax0", "up")
	// The host side of the link's namespace keeps an address of its own: XDP_PASS traffic.
	sh("ip", "-n", nsX, "addr", "add", "198.18.0.3/24", "dev", "wxax0")

	base := linktest.Goroutines()
	s, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := xdp.Config{Interface: "wxax0"}
	if rxzc {
		c.RxZeroCopy, c.Alloc = true, s.Allocator()
	}
	var l *xdp.Link
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		fd, err := unix.Open("/var/run/netns/"+nsX, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err == nil {
			l, err = xdp.Open(c)
		}
		done <- err
	}()
	if err := <-done; err != nil {
		s.Close()
		t.Fatal(err)
	}
	_, err = s.AddNetif(l, stack.NetifConfig{Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("fd42:5eed::2/64"),
	}})
	if err != nil {
		l.Close()
		s.Close()
		t.Fatal(err)
	}
	if l.Info().RxZeroCopy != rxzc {
		t.Errorf("Info %+v", l.Info())
	}
	time.Sleep(100 * time.Millisecond) // the stack's DAD of fd42:5eed::2 (no answer comes)
	for _, a := range []string{"198.18.0.2", "fd42:5eed::2", "198.18.0.3"} {
		out, err := exec.Command("ip", "netns", "exec", nsK, "ping", "-c", "3", "-i", "0.2", "-W", "2", a).CombinedOutput()
		if err != nil {
			t.Errorf("ping %s: %v\n%s\nlink %+v\n%v", a, err, out, l.DeviceStats(nil), s.Stats())
		}
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if out := sh("ip", "-n", nsX, "-d", "link", "show", "wxax0"); strings.Contains(out, "prog/xdp") {
		t.Errorf("xdp still attached after the stack closed:\n%s", out)
	}
	st := s.Stats()
	if in := st.PoolsInUse(); len(in) != 0 {
		t.Errorf("pools in use after Close: %+v", in)
	}
	linktest.CheckGoroutines(t, base)
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}
