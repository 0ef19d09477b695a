//go:build linux

package xdp

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Kernel tests run in namespaces they create (prefix "wxa"), with addresses from
// 198.18.0.0/15 and fd42:5eed::/48 only, and remove them in t.Cleanup.

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// needKernel skips the test unless it runs as root with ip(8) and AF_XDP sockets; under
// CI=1 a missing tool the README installs fails it instead.
func needKernel(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN for network namespaces)")
	}
	for _, tool := range []string{"ip", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "1" {
				t.Fatalf("no %s command (the README's test command installs it)", tool)
			}
			t.Skipf("no %s command", tool)
		}
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no AF_XDP sockets in this kernel: %v", err)
	}
	unix.Close(fd)
}

// inNetns runs f on a locked OS thread that joined the namespace ns; the thread is never
// unlocked, so the runtime discards it afterwards.
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

var nsSeq atomic.Int32

// newNS creates a namespace (lo up) deleted when the test ends.
func newNS(t testing.TB, role string) string {
	t.Helper()
	ns := fmt.Sprintf("wxa-%s-%d-%d", role, os.Getpid(), nsSeq.Add(1))
	exec.Command("ip", "netns", "del", ns).Run()
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// pair is a veth pair: the kernel's end "wxak0" in nsK with 198.18.0.1/24 and
// fd42:5eed::1/64, TX checksum offload off (so its frames carry complete checksums), and
// the end "wxax0" in nsX for the link, up without addresses.
type pair struct {
	nsK, nsX   string
	macK, macX net.HardwareAddr
}

const (
	ifK, ifX = "wxak0", "wxax0"
)

func newPair(t testing.TB, queues int) *pair {
	t.Helper()
	p := &pair{nsK: newNS(t, "k"), nsX: newNS(t, "x")}
	q := fmt.Sprint(queues)
	run(t, "ip", "-n", p.nsK, "link", "add", ifK, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", ifX, "netns", p.nsX, "numtxqueues", q, "numrxqueues", q)
	run(t, "ip", "netns", "exec", p.nsK, "ethtool", "-K", ifK, "tx", "off")
	run(t, "ip", "-n", p.nsK, "addr", "add", "198.18.0.1/24", "dev", ifK)
	run(t, "ip", "-n", p.nsK, "addr", "add", "fd42:5eed::1/64", "dev", ifK, "nodad")
	run(t, "ip", "-n", p.nsK, "link", "set", ifK, "up")
	run(t, "ip", "-n", p.nsX, "link", "set", ifX, "up")
	p.macK = p.mac(t, p.nsK, ifK)
	p.macX = p.mac(t, p.nsX, ifX)
	return p
}

func (p *pair) mac(t testing.TB, ns, ifname string) net.HardwareAddr {
	t.Helper()
	var hw net.HardwareAddr
	if err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			hw = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return hw
}

// neigh adds the kernel's static ARP entry for the link's address 198.18.0.2.
func (p *pair) neigh(t testing.TB) {
	t.Helper()
	run(t, "ip", "-n", p.nsK, "neigh", "replace", "198.18.0.2", "lladdr", p.macX.String(), "dev", ifK, "nud", "permanent")
	run(t, "ip", "-n", p.nsK, "neigh", "replace", "fd42:5eed::2", "lladdr", p.macX.String(), "dev", ifK, "nud", "permanent")
}

// xdpAttached reports whether ip(8) shows a program on the link's end.
func (p *pair) xdpAttached(t testing.TB) bool {
	t.Helper()
	out := run(t, "ip", "-n", p.nsX, "-d", "link", "show", ifX)
	return strings.Contains(out, "prog/xdp")
}
