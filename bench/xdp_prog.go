package main

// The XDP programs of the xdp/* scenarios come from the xdp package: the kernel column is
// xdp.Dropper (DropProgram: XDP_DROP counting every frame in a per-CPU array), and gVisor's
// AF_XDP link — which binds its socket but ships no program loader (runsc loads one of its
// own) — gets wisp's own RedirectProgram with its maps, loaded here: both engines meet
// the same program, the same address filter and the same per-frame cost in the kernel.

import (
	"fmt"
	"net/netip"
	"unsafe"

	"github.com/cilium/ebpf"
	ciliumlink "github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/xdp"
)

// xdpRedirect is xdp.RedirectProgram with its maps, attached to a device.
type xdpRedirect struct {
	coll *ebpf.Collection
	l    ciliumlink.Link
}

// attachRedirect loads xdp.RedirectProgram with an XSKMAP holding fds (the AF_XDP sockets
// of queues 0, 1, ...) and addrs in its IPv4 map, and attaches it to ifindex in driver
// mode. The caller's thread must be in the device's namespace.
func attachRedirect(ifindex int, fds []int, addrs []netip.Addr) (*xdpRedirect, error) {
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			xdp.MapXSKs: {Name: xdp.MapXSKs, Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(max(len(fds), 1))},
			xdp.MapV4:   {Name: xdp.MapV4, Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: 16},
			xdp.MapV6:   {Name: xdp.MapV6, Type: ebpf.Hash, KeySize: 16, ValueSize: 1, MaxEntries: 16},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			"wxb_redirect": {Name: "wxb_redirect", Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: xdp.RedirectProgram()},
		},
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("redirect program: %+v", err)
	}
	r := &xdpRedirect{coll: coll}
	for q, fd := range fds {
		if err := coll.Maps[xdp.MapXSKs].Put(uint32(q), uint32(fd)); err != nil {
			r.close()
			return nil, fmt.Errorf("XSKMAP[%d]: %w", q, err)
		}
	}
	for _, a := range addrs {
		k := a.As4()
		if err := coll.Maps[xdp.MapV4].Put(k[:], uint8(1)); err != nil {
			r.close()
			return nil, fmt.Errorf("address map: %w", err)
		}
	}
	r.l, err = ciliumlink.AttachXDP(ciliumlink.XDPOptions{Program: coll.Programs["wxb_redirect"], Interface: ifindex, Flags: ciliumlink.XDPDriverMode})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("attach redirect program: %w", err)
	}
	return r, nil
}

func (r *xdpRedirect) close() {
	if r.l != nil {
		r.l.Close()
	}
	r.coll.Close()
}

// getXDPStats reads an AF_XDP socket's XDP_STATISTICS.
func getXDPStats(fd int, st *unix.XDPStatistics) error {
	n := uint32(unsafe.Sizeof(*st))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_STATISTICS, uintptr(unsafe.Pointer(st)), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
