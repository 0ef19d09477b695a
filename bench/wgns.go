package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The namespaces of the scenarios that need one besides the kernel engine's pair: the
// wg-udp scenarios' (only lo, so that real UDP on 127.0.0.1 stays inside the harness) and
// the TUN scenarios' (lo and the TUN the engine opens). The pid keeps concurrent runs
// apart; cleanupKernel deletes them on exit and interrupt, cleanupStale after a killed run.
var (
	wgNSName  = fmt.Sprintf("wispbench-%d-wg", os.Getpid())
	tunNSName = fmt.Sprintf("wispbench-%d-tun", os.Getpid())
)

// namespace is an open network namespace the harness created.
type namespace struct {
	name string
	fd   int
}

// newNamespace creates the namespace name (deleting a leftover of the same name) with lo
// up.
func newNamespace(name string) (*namespace, error) {
	cleanupStale()
	kernelMu.Lock()
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		_ = ipCmd("netns", "del", name)
	}
	kernelMu.Unlock()
	if err := ipCmd("netns", "add", name); err != nil {
		return nil, err
	}
	if err := ipCmd("-n", name, "link", "set", "lo", "up"); err != nil {
		_ = ipCmd("netns", "del", name)
		return nil, err
	}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = ipCmd("netns", "del", name)
		return nil, err
	}
	return &namespace{name: name, fd: fd}, nil
}

// in runs fn on a thread inside the namespace: sockets and TUN devices it opens stay there.
func (ns *namespace) in(fn func() error) error { return inNamespace(ns.fd, fn) }

// close deletes the namespace (sockets still open in it keep it alive until they close).
func (ns *namespace) close() {
	if ns.fd >= 0 {
		unix.Close(ns.fd)
		ns.fd = -1
	}
	kernelMu.Lock()
	defer kernelMu.Unlock()
	_ = ipCmd("netns", "del", ns.name)
}
