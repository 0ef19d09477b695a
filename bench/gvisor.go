package main

import (
	"fmt"
	"net"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/wispstack/wisp/pbuf"
)

// gvEngine is gVisor netstack at the version wireguard-go pins.
//
// Default: exactly what wireguard-go's tun/netstack.CreateNetTUN sets up (IPv4, IPv6, TCP,
// UDP, ICMP, HandleLocal, SACK on; everything else gVisor's defaults: Reno, RACK, 1 MiB
// buffers with receive autotuning up to 4 MiB, Nagle off), users on gonet.
//
// Tuned: what the issue calls "the way Tailscale tunes it": SACK, RACK, CUBIC, receive buffer
// 1 MiB default / 8 MiB max, send buffer 1 MiB default / 6 MiB max. (Tailscale today pins
// Reno and turns RACK off to dodge gVisor bugs #11632 and tailscale#9707; the issue asks for
// the best configuration, so CUBIC and RACK it is.)
type gvEngine struct{ tuned bool }

func (g gvEngine) name() string {
	if g.tuned {
		return "netstack-tuned"
	}
	return "netstack"
}

func (gvEngine) missing() string { return "" }

// newGVisorStack builds a gVisor stack as the bench runs it (tuned: RACK, CUBIC, larger
// buffers), with IPv4, IPv6 and the extra network protocols (ARP for an Ethernet link).
func newGVisorStack(tuned bool, extra ...stack.NetworkProtocolFactory) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   append([]stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol}, extra...),
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol6, icmp.NewProtocol4},
		HandleLocal:        true,
	})
	opts := []tcpip.SettableTransportProtocolOption{ptr(tcpip.TCPSACKEnabled(true))}
	if tuned {
		opts = append(opts,
			ptr(tcpip.TCPRecovery(tcpip.TCPRACKLossDetection)),
			ptr(tcpip.CongestionControlOption("cubic")),
			&tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultSendBufferSize, Max: 8 << 20},
			&tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultReceiveBufferSize, Max: 6 << 20},
		)
	}
	for _, o := range opts {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			s.Close()
			return nil, fmt.Errorf("gvisor option %T: %v", o, err)
		}
	}
	return s, nil
}

func ptr[T any](v T) *T { return &v }

type gvNet struct {
	a, b   *stack.Stack
	ea, eb *gvEndpoint
	l      *sharedLink
	gso    bool
}

func (g gvEngine) open(cfg netConfig) (network, error) {
	if cfg.WireGuard != wgNone {
		if g.tuned {
			return nil, notAvailable("tun/netstack exposes no stack to tune")
		}
		return openWG(false, cfg)
	}
	if cfg.TUN != tunNone {
		return openTUN(cfg, openGVisorTUN(g.tuned, cfg.Offload))
	}
	n := &gvNet{gso: cfg.LargeSegments}
	var err error
	if n.a, err = newGVisorStack(g.tuned); err != nil {
		return nil, err
	}
	if n.b, err = newGVisorStack(g.tuned); err != nil {
		n.a.Close()
		return nil, err
	}
	lc := linkConfig{MTU: cfg.MTU, Impair: cfg.Impair}
	n.ea = &gvEndpoint{mtu: uint32(cfg.MTU), gso: cfg.LargeSegments}
	n.eb = &gvEndpoint{mtu: uint32(cfg.MTU), gso: cfg.LargeSegments}
	n.l = newLink(lc, n.ea, n.eb)
	n.ea.out, n.eb.out = n.l.ab, n.l.ba
	for _, x := range []struct {
		s    *stack.Stack
		ep   *gvEndpoint
		addr tcpip.Address
	}{{n.a, n.ea, tcpip.AddrFrom4(addrA.As4())}, {n.b, n.eb, tcpip.AddrFrom4(addrB.As4())}} {
		if err := x.s.CreateNIC(1, x.ep); err != nil {
			n.close()
			return nil, fmt.Errorf("gvisor CreateNIC: %v", err)
		}
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: x.addr.WithPrefix()}
		if err := x.s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
			n.close()
			return nil, fmt.Errorf("gvisor address: %v", err)
		}
		x.s.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: 1})
	}
	n.l.start()
	return n, nil
}

func (n *gvNet) listen(port uint16) (listener, error) {
	l, err := gonet.ListenTCP(n.b, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrB.As4()), Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	return netListener{l}, nil
}

func (n *gvNet) dial(port uint16) (conn, error) {
	c, err := gonet.DialTCP(n.a, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrB.As4()), Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	return netConn{c}, nil
}

func (n *gvNet) listenUDP(port uint16) (packetConn, error) {
	c, err := gonet.DialUDP(n.b, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrB.As4()), Port: port}, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	return &udpConn{c: c}, nil
}

func (n *gvNet) dialUDP(port uint16) (packetConn, error) {
	c, err := gonet.DialUDP(n.a, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrB.As4()), Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	return &udpConn{c: c, connected: true}, nil
}

func (n *gvNet) packets() uint64 {
	return n.l.ab.stats.Packets.Load() + n.l.ba.stats.Packets.Load()
}

func (n *gvNet) linkSummary() string { return n.l.summary() }

func (n *gvNet) memory() engineMemory { return engineMemory{} }

func (n *gvNet) notes() []string {
	if n.gso {
		return []string{"large-segment variant: host GSO, segments of up to 64 KiB cross the 1500-byte MTU link whole; the link completes their checksum and the receiver takes them as verified (CapabilityRXChecksumOffload)"}
	}
	return nil
}

func (n *gvNet) close() error {
	if n.l != nil {
		n.l.close()
	}
	for _, s := range []*stack.Stack{n.a, n.b} {
		if s != nil {
			s.Close()
			s.Wait()
		}
	}
	return nil
}

// netConn adapts a net.Conn (gonet or the kernel's).
type netConn struct{ net.Conn }

func (c netConn) setNoDelay(on bool) {
	// gVisor's default is already no delay (TCPDelayEnabled false), and gonet has no
	// SetNoDelay; the kernel's Go default and wisp's endpoint too.
	if tc, ok := c.Conn.(interface{ SetNoDelay(bool) error }); ok {
		_ = tc.SetNoDelay(on)
	}
}

func (c netConn) close() error { return c.Conn.Close() }

// udpConn adapts a gonet or kernel UDP socket.
type udpConn struct {
	c interface {
		net.PacketConn
		Write([]byte) (int, error)
	}
	connected bool
	writes    int
	mu        sync.Mutex
	last      net.Addr
}

// udpWriteDeadline bounds a blocked write. gVisor's gonet UDPConn.WriteTo registers for
// "writable" only after its write failed and does not retry before waiting, so space freed
// in between is never signalled and the writer sleeps until its deadline (a lost wakeup;
// gonet's TCPConn.Write retries and has no such race). Without a deadline the sender hangs
// for good once the link drains; with one it retries (runUDP treats the error as
// backpressure). Set once per 256 writes, so the timer costs nothing measurable.
const udpWriteDeadline = 20 * time.Millisecond

func (u *udpConn) write(b []byte) error {
	if u.writes++; u.writes%256 == 1 {
		_ = u.c.SetWriteDeadline(time.Now().Add(udpWriteDeadline))
	}
	if u.connected {
		_, err := u.c.Write(b)
		return err
	}
	u.mu.Lock()
	a := u.last
	u.mu.Unlock()
	if a == nil {
		return errUnsupported
	}
	_, err := u.c.WriteTo(b, a)
	return err
}

func (u *udpConn) rearm() { u.writes = 0 }

func (u *udpConn) read(b []byte, deadline time.Time) (int, error) {
	_ = u.c.SetReadDeadline(deadline)
	n, a, err := u.c.ReadFrom(b)
	if err == nil && !u.connected {
		u.mu.Lock()
		u.last = a
		u.mu.Unlock()
	}
	return n, err
}

func (u *udpConn) close() error { return u.c.Close() }

// gvEndpoint is gVisor's side of the shared link: a stack.LinkEndpoint that puts the
// stack's PacketBuffers (by reference) on the link and receives by copying into new ones.
type gvEndpoint struct {
	mtu uint32
	gso bool
	out *direction

	mu      sync.RWMutex
	disp    stack.NetworkDispatcher // guarded by mu
	onClose func()
}

var (
	_ stack.LinkEndpoint = (*gvEndpoint)(nil)
	_ stack.GSOEndpoint  = (*gvEndpoint)(nil)
)

func (e *gvEndpoint) MTU() uint32                             { return e.mtu }
func (e *gvEndpoint) SetMTU(mtu uint32)                       { e.mtu = mtu }
func (e *gvEndpoint) MaxHeaderLength() uint16                 { return 0 }
func (e *gvEndpoint) LinkAddress() tcpip.LinkAddress          { return "" }
func (e *gvEndpoint) SetLinkAddress(tcpip.LinkAddress)        {}
func (e *gvEndpoint) Wait()                                   {}
func (e *gvEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }
func (e *gvEndpoint) AddHeader(*stack.PacketBuffer)           {}
func (e *gvEndpoint) ParseHeader(*stack.PacketBuffer) bool    { return true }
func (e *gvEndpoint) SetOnCloseAction(f func())               { e.onClose = f }

// Capabilities: none. Checksums are computed and verified in software, as for every engine
// (a TUN in front of WireGuard offers no offload either). In the large-segment variant,
// receive checksum offload: the link completes the checksums the sender left partial
// (prepareGSO) and the receiver takes them as verified, as wisp's side marks them
// (FlagChecksumOK) — gVisor's NIC takes that from the capability alone, not per packet.
func (e *gvEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	if e.gso {
		return stack.CapabilityRXChecksumOffload
	}
	return 0
}

// gsoMaxSize bounds a large segment so that the IPv4 total length still fits 16 bits.
const gsoMaxSize = 65535 - 128

// GSOMaxSize and SupportedGSO implement stack.GSOEndpoint. In the large-segment variant the
// link takes host-GSO segments (what Tailscale's link endpoint asks of gVisor): TCP hands
// down up to 64 KiB at once and the link completes the checksum, the work a NIC or the
// kernel's GSO does; the receiver gets the segment whole, as after GRO, marked verified.
// wisp's side (wispEndpoint) gets the same. None otherwise.
func (e *gvEndpoint) GSOMaxSize() uint32 {
	if e.gso {
		return gsoMaxSize
	}
	return 0
}

func (e *gvEndpoint) SupportedGSO() stack.SupportedGSO {
	if e.gso {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// prepareGSO completes a CHECKSUM_PARTIAL TCP checksum: the field holds the pseudo-header
// sum; the final value covers the TCP header and payload too.
func prepareGSO(pkt *stack.PacketBuffer) {
	if !pkt.GSOOptions.NeedsCsum {
		return
	}
	th := header.TCP(pkt.TransportHeader().Slice())
	if len(th) < header.TCPMinimumSize {
		return
	}
	xsum := th.Checksum() // the pseudo-header sum gVisor stored
	th.SetChecksum(0)
	xsum = checksum.Combine(xsum, checksum.Checksum(th, 0))
	xsum = checksum.Combine(xsum, pkt.Data().Checksum())
	th.SetChecksum(^xsum)
	pkt.GSOOptions.NeedsCsum = false
}

func (e *gvEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.disp = d
	e.mu.Unlock()
}

func (e *gvEndpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.disp != nil
}

func (e *gvEndpoint) Close() {
	if e.onClose != nil {
		e.onClose()
	}
}

// WritePackets queues every packet by reference; a full queue drops (counted by the link).
func (e *gvEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	d := e.out
	n := 0
	d.lock()
	for _, pkt := range pkts.AsSlice() {
		gso := e.gso && pkt.GSOOptions.Type != stack.GSONone
		done := false
		if gso {
			done = pkt.GSOOptions.NeedsCsum
			prepareGSO(pkt)
		}
		f := d.slot(pkt.Size(), gso)
		if f == nil {
			continue
		}
		if gso && pkt.Data().Size() > int(pkt.GSOOptions.MSS) {
			f.gso, f.gsoSize = pbuf.GSOTCPv4, int(pkt.GSOOptions.MSS)
			if pkt.GSOOptions.Type == stack.GSOTCPv6 {
				f.gso = pbuf.GSOTCPv6
			}
		}
		// The link completed the checksum (the receiver takes it as verified:
		// Capabilities).
		f.linkCsum = done
		vl, off := pkt.AsViewList()
		for v := vl.Front(); v != nil; v = v.Next() {
			b := v.AsSlice()
			if off >= len(b) {
				off -= len(b)
				continue
			}
			f.parts = append(f.parts, b[off:])
			off = 0
		}
		f.owner = pkt.IncRef()
		n++
	}
	d.unlock()
	return n, nil
}

func (e *gvEndpoint) release(owner any) { owner.(*stack.PacketBuffer).DecRef() }

// deliver copies each frame into a new gVisor buffer (the one copy) and injects it.
func (e *gvEndpoint) deliver(frames []frame) {
	e.mu.RLock()
	d := e.disp
	e.mu.RUnlock()
	if d == nil {
		return
	}
	for i := range frames {
		f := &frames[i]
		v := buffer.NewView(f.size)
		for _, p := range f.parts {
			_, _ = v.Write(p)
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
		proto := header.IPv4ProtocolNumber
		if v.AsSlice()[0]>>4 == 6 {
			proto = header.IPv6ProtocolNumber
		}
		d.DeliverNetworkPacket(proto, pkt)
		pkt.DecRef()
	}
}
