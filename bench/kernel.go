package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// kernelEngine is the Linux kernel between two network namespaces joined by a veth pair: the
// reference for what a mature stack reaches on this machine. It needs root (to create the
// namespaces) and the ip tool. The namespaces are the harness's own, carry only addresses
// from 198.18.0.0/15, have no default route and are deleted when the network closes (and by
// cleanupKernel on exit or interrupt).
//
// Not the shared link: veth hands packets between the namespaces inside the kernel, with
// the kernel's own GSO/GRO (64 KiB segments) and checksum offload on by default. The kernel
// has no netem here, so the loss/delay cells other than {0, 0} are not run.
type kernelEngine struct{}

func (kernelEngine) name() string { return "kernel" }

func (kernelEngine) missing() string {
	if runtime.GOOS != "linux" {
		return "not Linux"
	}
	if os.Geteuid() != 0 {
		return "needs root (network namespaces)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "no ip(8) tool"
	}
	return ""
}

// The namespaces' names carry the pid so that concurrent runs do not collide.
var (
	kernelNS = [2]string{
		fmt.Sprintf("wispbench-%d-a", os.Getpid()),
		fmt.Sprintf("wispbench-%d-b", os.Getpid()),
	}
	kernelMu sync.Mutex // serializes namespace setup and teardown
)

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cleanupKernel deletes the namespaces (the kernel engine's, with their veth pair, the
// WireGuard scenarios' wgNSName, the TUN scenarios' tunNSName, with their TUN, and the xdp
// scenarios' pair). Safe to call anytime.
func cleanupKernel() {
	kernelMu.Lock()
	defer kernelMu.Unlock()
	for _, ns := range append(kernelNS[:], wgNSName, tunNSName, xdpNSK, xdpNSE, proxyNSC, proxyNSS) {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			_ = ipCmd("netns", "del", ns)
		}
	}
}

// cleanupStale deletes the namespaces of earlier runs whose process is gone (a run killed
// before its cleanup could run).
func cleanupStale() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "wispbench-")
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if pid == fmt.Sprint(os.Getpid()) {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // still running
		}
		_ = ipCmd("netns", "del", e.Name())
	}
}

type kernelNet struct {
	nsfd [2]int
}

func (kernelEngine) open(cfg netConfig) (network, error) {
	if cfg.Impair.active() {
		return nil, notAvailable("no netem in this kernel")
	}
	if cfg.WireGuard != wgNone {
		return nil, notAvailable("a userspace WireGuard scenario")
	}
	cleanupStale()
	cleanupKernel()
	a, b := kernelNS[0], kernelNS[1]
	mtu := fmt.Sprint(cfg.MTU)
	steps := [][]string{
		{"netns", "add", a},
		{"netns", "add", b},
		{"link", "add", "wbveth", "netns", a, "mtu", mtu, "type", "veth", "peer", "name", "wbveth", "netns", b, "mtu", mtu},
		{"-n", a, "addr", "add", addrA.String() + "/24", "dev", "wbveth"},
		{"-n", b, "addr", "add", addrB.String() + "/24", "dev", "wbveth"},
		{"-n", a, "link", "set", "lo", "up"},
		{"-n", b, "link", "set", "lo", "up"},
		{"-n", a, "link", "set", "wbveth", "up"},
		{"-n", b, "link", "set", "wbveth", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			cleanupKernel()
			return nil, err
		}
	}
	n := &kernelNet{nsfd: [2]int{-1, -1}}
	for i, ns := range kernelNS {
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			n.close()
			return nil, err
		}
		n.nsfd[i] = fd
	}
	// The veth comes up asynchronously: wait until a connection goes through.
	if err := n.waitUp(); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *kernelNet) waitUp() error {
	l, err := n.listen(9)
	if err != nil {
		return err
	}
	defer l.close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var c conn
		err := n.in(0, func() error {
			d := net.Dialer{Timeout: 200 * time.Millisecond}
			nc, err := d.Dial("tcp4", netip.AddrPortFrom(addrB, 9).String())
			if err == nil {
				c = netConn{nc}
			}
			return err
		})
		if err == nil {
			s, aerr := l.accept()
			if aerr == nil {
				s.close()
			}
			return c.close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("veth not up: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// in runs fn on a thread switched into namespace i. Sockets created there stay in it.
func (n *kernelNet) in(i int, fn func() error) error { return inNamespace(n.nsfd[i], fn) }

// inNamespace runs fn on a thread switched into the network namespace open as nsfd.
func inNamespace(nsfd int, fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(orig)
	if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with the goroutine instead of serving others
		// in the wrong namespace.
		return fmt.Errorf("restoring namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func (n *kernelNet) listen(port uint16) (listener, error) {
	return kernelListen(n.nsfd[1], netip.AddrPortFrom(addrB, port))
}

func (n *kernelNet) dial(port uint16) (conn, error) {
	return kernelDial(n.nsfd[0], netip.AddrPortFrom(addrB, port))
}

// kernelListen opens a kernel TCP listener on addr inside the namespace open as nsfd.
func kernelListen(nsfd int, addr netip.AddrPort) (listener, error) {
	var l net.Listener
	err := inNamespace(nsfd, func() (err error) {
		l, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return netListener{l}, nil
}

// kernelDial connects a kernel TCP socket inside the namespace open as nsfd to addr.
func kernelDial(nsfd int, addr netip.AddrPort) (conn, error) {
	var c net.Conn
	err := inNamespace(nsfd, func() (err error) {
		c, err = net.Dial("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return netConn{c}, nil
}

func (n *kernelNet) listenUDP(port uint16) (packetConn, error) {
	var c *net.UDPConn
	err := n.in(1, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB, port)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &udpConn{c: c}, nil
}

func (n *kernelNet) dialUDP(port uint16) (packetConn, error) {
	var c *net.UDPConn
	err := n.in(0, func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB, port)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &udpConn{c: c, connected: true}, nil
}

func (n *kernelNet) packets() uint64      { return 0 }
func (n *kernelNet) linkSummary() string  { return "" }
func (n *kernelNet) memory() engineMemory { return engineMemory{} }
func (n *kernelNet) notes() []string      { return nil }

func (n *kernelNet) close() error {
	for i, fd := range n.nsfd {
		if fd >= 0 {
			unix.Close(fd)
			n.nsfd[i] = -1
		}
	}
	cleanupKernel()
	return nil
}
