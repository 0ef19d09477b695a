package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/wispstack/wisp/xdp"
)

// openXDP opens an AF_XDP link on queues 0..queues-1 of the interface iface, its XDP program
// sending wisp the frames for the addresses of addrs. Errors say what is missing: the
// interface, the privileges, the kernel's AF_XDP or BPF. xdp.Open leaves nothing attached
// when it fails.
func openXDP(iface string, queues int, addrs prefixList, logf func(string, ...any)) (*xdp.Link, error) {
	if _, err := net.InterfaceByName(iface); err != nil {
		return nil, fmt.Errorf("--xdp %s: no such interface in this network namespace (%v); run wisp in the interface's namespace (ip netns exec NAME wisp serve ...)", iface, err)
	}
	as := make([]netip.Addr, len(addrs))
	for i, p := range addrs {
		as[i] = p.Addr()
	}
	l, err := xdp.Open(xdp.Config{Interface: iface, Queues: queues, Addrs: as, Logf: logf})
	if err == nil {
		return l, nil
	}
	var hint string
	switch {
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		hint = "run wisp as root: AF_XDP sockets and XDP programs need CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF"
	case errors.Is(err, syscall.EAFNOSUPPORT):
		hint = "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)"
	case errors.Is(err, syscall.ENOSYS):
		hint = "this kernel has no bpf(2) (CONFIG_BPF_SYSCALL)"
	case errors.Is(err, syscall.EINVAL) && queues > 1:
		hint = fmt.Sprintf("does %s have %d queues? (ethtool -l %s)", iface, queues, iface)
	}
	if hint != "" {
		return nil, fmt.Errorf("--xdp %s: %w (%s)", iface, err, hint)
	}
	return nil, fmt.Errorf("--xdp %s: %w", iface, err)
}
