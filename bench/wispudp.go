package main

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"github.com/wispstack/wisp/endpoint"
)

// wisp's UDP column goes through the socket layer, as a Go program would use it:
// endpoint.Net's ListenUDP on B and DialUDP on A (the TCP column uses the raw API; UDP has
// no raw-API driver here, and the sockets are what users meet).
func (n *wispNet) listenUDP(port uint16) (packetConn, error) {
	c, err := endpoint.New(n.b).ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB, port)))
	if err != nil {
		return nil, err
	}
	return &wispUDP{udpConn{c: c}}, nil
}

func (n *wispNet) dialUDP(port uint16) (packetConn, error) {
	c, err := endpoint.New(n.a).DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB, port)))
	if err != nil {
		return nil, err
	}
	return &wispUDP{udpConn{c: c, connected: true}}, nil
}

// wispUDP is udpConn for wisp, whose send fails at once with ENOMEM when the link's queue
// is full (esp-lwip's semantics) instead of blocking as gVisor's and the kernel's do: the
// sender yields before retrying, so that the link's delivery goroutine can drain.
type wispUDP struct{ udpConn }

func (u *wispUDP) write(b []byte) error {
	err := u.udpConn.write(b)
	if errors.Is(err, syscall.ENOMEM) {
		runtime.Gosched()
	}
	return err
}
