package main

// wisp on its AF_XDP link (xdp/): one socket per queue, wisp's address-filtering program,
// opt.Tunnel(), one core per queue where the stack takes an Ethernet link on several cores
// (else one core, noted).

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/xdp"
)

var (
	xdpRxZC     = flag.Bool("xdp-rxzc", false, "xdp/*: wisp delivers pbufs that reference the UMEM frames (xdp.Config.RxZeroCopy) instead of copying")
	xdpBusyPoll = flag.Bool("xdp-busypoll", false, "xdp/*: wisp's AF_XDP sockets busy-poll (xdp.Config.BusyPoll)")
)

// wispXDP is wisp's side of an xdp network.
type wispXDP struct {
	s *stack.Stack
	l *xdp.Link
}

// openWispXDP opens wisp on wxbe's queues 0..queues-1 in ns.
func openWispXDP(ns *namespace, queues int) (xdpSide, []string, error) {
	var notes []string
	cores := queues
	for {
		w, err := openWispXDPCores(ns, queues, cores, &notes)
		if err != nil && cores > 1 && errors.Is(err, errs.Val) {
			notes = append(notes, fmt.Sprintf("wisp: %d cores refused on an Ethernet link (%v): 1 core", cores, err))
			cores = 1
			continue
		}
		return w, notes, err
	}
}

func openWispXDPCores(ns *namespace, queues, cores int, notes *[]string) (*wispXDP, error) {
	s, err := stack.New(stack.Config{Options: opt.Tunnel(), Cores: cores})
	if err != nil {
		return nil, err
	}
	var logs tunLog
	var l *xdp.Link
	err = ns.in(func() (err error) {
		l, err = xdp.Open(xdp.Config{
			Interface: xdpEngineDev, Queues: queues, Mode: xdp.AttachDriver,
			Addrs: []netip.Addr{xdpEngineAddr}, MTU: xdpMTU,
			RxZeroCopy: *xdpRxZC, Alloc: s.Allocator(), BusyPoll: *xdpBusyPoll, Logf: logs.logf,
		})
		return err
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	if _, err := s.AddNetif(l, stack.NetifConfig{Name: "xdp0", Addrs: []netip.Prefix{netip.PrefixFrom(xdpEngineAddr, 24)}}); err != nil {
		l.Close()
		s.Close()
		return nil, err
	}
	*notes = append(*notes, logs.lines()...)
	*notes = append(*notes, fmt.Sprintf("wisp: %v, %d core(s), RxZeroCopy %v, BusyPoll %v", l.Info(), cores, *xdpRxZC, *xdpBusyPoll))
	return &wispXDP{s: s, l: l}, nil
}

func (w *wispXDP) listenUDP(port uint16) (net.PacketConn, error) {
	return endpoint.New(w.s).ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(xdpEngineAddr, port)))
}

func (w *wispXDP) listen(port uint16) (listener, error) {
	return wispListen(w.s, netip.AddrPortFrom(xdpEngineAddr, port))
}

func (w *wispXDP) dial(to netip.AddrPort) (conn, error) { return wispDial(w.s, to) }
func (w *wispXDP) dropped() uint64                      { return 0 }

func (w *wispXDP) summary() string {
	d := stats.Device{Queues: w.l.DeviceStats(nil)}
	t := d.Total()
	u := w.s.Stats().UDP
	return fmt.Sprintf("wisp xdp: %d frames in (%d no pbuf, %d rx ring full, %d fill ring empty, %d dropped), %d out (%d kicks, %d tx full); UDP %d received, %d dropped",
		t.RxPackets, t.RxNoBuf, t.RxRingFull, t.FillRingEmpty, t.RxDropped, t.TxPackets, t.TxKicks, t.TxFull, u.Recv, u.Drop)
}

func (w *wispXDP) memory() engineMemory {
	var m engineMemory
	m.add(w.s)
	return m
}

func (w *wispXDP) close() { w.s.Close() } // closes the link: the program is detached

// tunListenUDP opens the UDP socket of a TUN network's engine (the TUN reference rows).
func tunListenUDP(t tunSide, a netip.AddrPort) (net.PacketConn, error) {
	switch t := t.(type) {
	case *wispTUN:
		return endpoint.New(t.s).ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
	case *gvTUN:
		return t.listenUDP(a)
	}
	return nil, errUnsupported
}
