//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	ebpflink "github.com/cilium/ebpf/link"
)

// objects are the program, its maps and its attachment.
type objects struct {
	prog     *ebpf.Program
	xsks     *ebpf.Map
	v4, v6   *ebpf.Map
	attached ebpflink.Link
	mode     string // "driver" or "generic" once attached
	addrs    map[netip.Addr]bool
}

// loadRedirect creates the maps and loads the program (fallback: see redirectProgram).
func loadRedirect(queues int, fallback int32) (*objects, error) {
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			MapXSKs: {Name: MapXSKs, Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues)},
			MapV4:   {Name: MapV4, Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: maxAddrs},
			MapV6:   {Name: MapV6, Type: ebpf.Hash, KeySize: 16, ValueSize: 1, MaxEntries: maxAddrs},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			"wisp_redirect": {
				Name:         "wisp_redirect",
				Type:         ebpf.XDP,
				License:      "Dual MIT/GPL",
				Instructions: redirectProgram(fallback),
			},
		},
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, bpfError("loading the XDP program", err)
	}
	return &objects{
		prog:  coll.Programs["wisp_redirect"],
		xsks:  coll.Maps[MapXSKs],
		v4:    coll.Maps[MapV4],
		v6:    coll.Maps[MapV6],
		addrs: map[netip.Addr]bool{},
	}, nil
}

// bpfError wraps a failure to create BPF objects, with the verifier's log when there is one.
func bpfError(what string, err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%s: %+v", what, ve)
	}
	return fmt.Errorf("%s (needs CAP_BPF/CAP_NET_ADMIN and a kernel with BPF): %w", what, err)
}

// attach attaches the program to ifindex through a BPF link: the driver's hook first,
// generic on failure, as mode allows.
func (o *objects) attach(ifindex int, mode AttachMode) (fallback error, err error) {
	try := func(flags ebpflink.XDPAttachFlags) error {
		l, err := ebpflink.AttachXDP(ebpflink.XDPOptions{Program: o.prog, Interface: ifindex, Flags: flags})
		if err == nil {
			o.attached = l
		}
		return err
	}
	switch mode {
	case AttachGeneric:
		if err := try(ebpflink.XDPGenericMode); err != nil {
			return nil, fmt.Errorf("attaching XDP (generic): %w", err)
		}
		o.mode = "generic"
		return nil, nil
	case AttachDriver:
		if err := try(ebpflink.XDPDriverMode); err != nil {
			return nil, fmt.Errorf("attaching XDP (driver): %w", err)
		}
		o.mode = "driver"
		return nil, nil
	}
	derr := try(ebpflink.XDPDriverMode)
	if derr == nil {
		o.mode = "driver"
		return nil, nil
	}
	if err := try(ebpflink.XDPGenericMode); err != nil {
		return nil, fmt.Errorf("attaching XDP: driver: %v; generic: %w", derr, err)
	}
	o.mode = "generic"
	return derr, nil
}

// setAddrs makes the address maps hold exactly addrs.
func (o *objects) setAddrs(addrs []netip.Addr) error {
	want := make(map[netip.Addr]bool, len(addrs))
	var n4, n6 int
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsValid() || want[a] {
			continue
		}
		want[a] = true
		if a.Is4() {
			n4++
		} else {
			n6++
		}
	}
	if n4 > maxAddrs || n6 > maxAddrs {
		return fmt.Errorf("more than %d addresses of a family", maxAddrs)
	}
	one := uint8(1)
	for a := range o.addrs {
		if want[a] {
			continue
		}
		var err error
		if a.Is4() {
			k := a.As4()
			err = o.v4.Delete(k[:])
		} else {
			k := a.As16()
			err = o.v6.Delete(k[:])
		}
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("removing %v: %w", a, err)
		}
		delete(o.addrs, a)
	}
	for a := range want {
		if o.addrs[a] {
			continue
		}
		var err error
		if a.Is4() {
			k := a.As4()
			err = o.v4.Put(k[:], one)
		} else {
			k := a.As16()
			err = o.v6.Put(k[:], one)
		}
		if err != nil {
			return fmt.Errorf("adding %v: %w", a, err)
		}
		o.addrs[a] = true
	}
	return nil
}

// close detaches the program (closing the BPF link) and frees the maps.
func (o *objects) close() error {
	var err error
	if o.attached != nil {
		err = o.attached.Close()
		o.attached = nil
	}
	for _, m := range []*ebpf.Map{o.xsks, o.v4, o.v6} {
		if m != nil {
			m.Close()
		}
	}
	if o.prog != nil {
		o.prog.Close()
	}
	return err
}

// Dropper is DropProgram attached to an interface, with its counter: the kernel's XDP_DROP
// rate on a link, the limit an AF_XDP receiver is compared with.
type Dropper struct {
	prog     *ebpf.Program
	drops    *ebpf.Map
	attached ebpflink.Link
	// Mode is the hook used: "driver" or "generic".
	Mode string
}

// NewDropper loads DropProgram and attaches it to the interface ifname (in the calling
// thread's network namespace) as mode says.
func NewDropper(ifname string, mode AttachMode) (*Dropper, error) {
	ifindex, err := ifIndex(ifname)
	if err != nil {
		return nil, fmt.Errorf("xdp: %s: %w", ifname, err)
	}
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			MapDrops: {Name: MapDrops, Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			"wisp_drop": {Name: "wisp_drop", Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: DropProgram()},
		},
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("xdp: %s: %w", ifname, bpfError("loading the drop program", err))
	}
	o := &objects{prog: coll.Programs["wisp_drop"]}
	d := &Dropper{prog: o.prog, drops: coll.Maps[MapDrops]}
	if _, err := o.attach(ifindex, mode); err != nil {
		d.prog.Close()
		d.drops.Close()
		return nil, fmt.Errorf("xdp: %s: %w", ifname, err)
	}
	d.attached, d.Mode = o.attached, o.mode
	return d, nil
}

// Count returns the frames dropped so far, summed over the CPUs.
func (d *Dropper) Count() (uint64, error) {
	var per []uint64
	if err := d.drops.Lookup(uint32(0), &per); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// Close detaches the program and frees it.
func (d *Dropper) Close() error {
	err := d.attached.Close()
	d.prog.Close()
	d.drops.Close()
	return err
}

// Redirect is RedirectProgram with its maps, attached to an interface, for AF_XDP sockets
// opened elsewhere (another engine's link, a benchmark): the program a Link uses, without
// the Link.
type Redirect struct {
	obj *objects
}

// AttachRedirect loads RedirectProgram with fds (the AF_XDP sockets of queues 0, 1, ...,
// already bound) in its XSKMAP and addrs in its address maps, and attaches it to the
// interface ifname (in the calling thread's network namespace) as mode says.
func AttachRedirect(ifname string, mode AttachMode, fds []int, addrs []netip.Addr) (*Redirect, error) {
	wrap := func(err error) error { return fmt.Errorf("xdp: %s: %w", ifname, err) }
	ifindex, err := ifIndex(ifname)
	if err != nil {
		return nil, wrap(err)
	}
	if len(fds) > maxQueues {
		return nil, wrap(fmt.Errorf("%d sockets: at most %d", len(fds), maxQueues))
	}
	obj, err := loadRedirect(max(len(fds), 1), xdpPass)
	if err != nil {
		return nil, wrap(err)
	}
	fail := func(err error) (*Redirect, error) {
		obj.close()
		return nil, wrap(err)
	}
	for q, fd := range fds {
		if err := obj.xsks.Put(uint32(q), uint32(fd)); err != nil {
			return fail(fmt.Errorf("XSKMAP entry of queue %d: %w", q, err))
		}
	}
	if err := obj.setAddrs(addrs); err != nil {
		return fail(err)
	}
	if _, err := obj.attach(ifindex, mode); err != nil {
		return fail(err)
	}
	return &Redirect{obj: obj}, nil
}

// Mode is the hook used: "driver" or "generic".
func (r *Redirect) Mode() string { return r.obj.mode }

// SetAddrs makes the program redirect exactly the traffic of addrs. Not safe for
// concurrent use with itself.
func (r *Redirect) SetAddrs(addrs []netip.Addr) error { return r.obj.setAddrs(addrs) }

// Close detaches the program and frees it and its maps.
func (r *Redirect) Close() error { return r.obj.close() }
