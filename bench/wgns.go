package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// wgNSName is the namespace of the wg-udp scenarios: only lo, up, so that real UDP on
// 127.0.0.1 stays inside the harness. The pid keeps concurrent runs apart; cleanupKernel
// deletes it on exit and interrupt, cleanupStale after a killed run.
var wgNSName = fmt.Sprintf("wispbench-%d-wg", os.Getpid())

// wgNamespace is the open namespace of a wg-udp network.
type wgNamespace struct{ fd int }

// newWGNamespace creates wgNSName with lo up.
func newWGNamespace() (*wgNamespace, error) {
	cleanupStale()
	kernelMu.Lock()
	if _, err := os.Stat("/run/netns/" + wgNSName); err == nil {
		_ = ipCmd("netns", "del", wgNSName)
	}
	kernelMu.Unlock()
	if err := ipCmd("netns", "add", wgNSName); err != nil {
		return nil, err
	}
	if err := ipCmd("-n", wgNSName, "link", "set", "lo", "up"); err != nil {
		_ = ipCmd("netns", "del", wgNSName)
		return nil, err
	}
	fd, err := unix.Open("/run/netns/"+wgNSName, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = ipCmd("netns", "del", wgNSName)
		return nil, err
	}
	return &wgNamespace{fd: fd}, nil
}

// in runs fn on a thread inside the namespace: sockets it opens stay there.
func (ns *wgNamespace) in(fn func() error) error { return inNamespace(ns.fd, fn) }

// close deletes the namespace (sockets still open in it keep it alive until they close).
func (ns *wgNamespace) close() {
	if ns.fd >= 0 {
		unix.Close(ns.fd)
		ns.fd = -1
	}
	kernelMu.Lock()
	defer kernelMu.Unlock()
	_ = ipCmd("netns", "del", wgNSName)
}
