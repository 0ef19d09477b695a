package main

// gVisor netstack behind the TUN of the TUN scenarios (tun.go).
//
// Without offloads: gVisor's own fdbased endpoint on the TUN fd (IFF_TUN|IFF_NO_PI), one
// packet per read and write, checksums in software: what a gVisor TUN proxy runs today.
//
// With offloads: the TUN gets IFF_VNET_HDR and TUNSETOFFLOAD CSUM|TSO4|TSO6, and gVisor
// host GSO (stack.HostGSOSupported, GSOMaxSize 65536), as Tailscale configures gVisor. Not
// fdbased: at the pinned gVisor, fdbased.New turns GSO on only for socket fds (an AF_PACKET
// socket; "if isSocket { ... e.gsoKind = stack.HostGSOSupported }"), so a TUN fd never gets
// it, and its virtio-net header puts csum_start after an Ethernet header
// (EthernetMinimumSize + L3HdrLen), which is wrong on a TUN. gvTUNEndpoint below is that
// same link for a TUN: the virtio-net header fdbased writes, with csum_start at the end of
// the IP header; reads of up to 64 KiB delivered whole, and receive checksum offload
// declared (CapabilityRXChecksumOffload, as Tailscale's link endpoint declares it): the
// kernel leaves its packets' checksums partial (NEEDS_CSUM), and wisp's link/tun takes
// them as verified too.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/wire"
)

// gvTUNGSOMaxSize is the GSOMaxSize Tailscale gives gVisor (64 KiB; gVisor's TCP keeps
// its segments below it by the largest header).
const gvTUNGSOMaxSize = 1 << 16

const (
	virtioHdrLen       = wire.VirtioNetHdrLen
	gvTUNSmallCopy     = 2048   // a frame up to this size is copied into a view of its own
	gvTUNReadViewBytes = 0xffff // the view a frame is read into
)

// openTUNFD creates the TUN tunDevName in the calling thread's namespace: non-blocking,
// and with a virtio-net header and checksum and TSO offloads when vnet.
func openTUNFD(vnet bool) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(tunDevName)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", tunDevName, err)
	}
	if vnet {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("TUNSETOFFLOAD: %w", err)
		}
	}
	return fd, nil
}

// gvTUN is gVisor's side of a TUN network.
type gvTUN struct {
	s   *stack.Stack
	fd  int            // fdbased's TUN (closed here after the stack); -1 with own
	own *gvTUNEndpoint // the offload link; nil on fdbased
}

// openGVisorTUN opens gVisor's side (newGVisorStack's options, tuned or not) on fdbased,
// or with host GSO on gvTUNEndpoint.
func openGVisorTUN(tuned, gso bool) func(ns *namespace) (tunSide, []string, error) {
	return func(ns *namespace) (tunSide, []string, error) {
		var fd int
		if err := ns.in(func() (err error) { fd, err = openTUNFD(gso); return err }); err != nil {
			return nil, nil, err
		}
		g := &gvTUN{fd: -1}
		var ep stack.LinkEndpoint
		var note string
		if gso {
			own, err := newGVTUNEndpoint(fd, tunMTU)
			if err != nil {
				unix.Close(fd)
				return nil, nil, err
			}
			g.own, ep = own, own
			note = fmt.Sprintf("TUN with IFF_VNET_HDR, TUNSETOFFLOAD CSUM|TSO4|TSO6; gVisor host GSO, GSOMaxSize %d, on the bench's TUN link (gvtun.go: fdbased turns GSO on for socket fds only)", gvTUNGSOMaxSize)
		} else {
			var err error
			if ep, err = fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: tunMTU}); err != nil {
				unix.Close(fd)
				return nil, nil, err
			}
			g.fd = fd
			note = "fdbased on the TUN (readv dispatcher), no offloads"
		}
		s, err := newGVisorStack(tuned)
		if err != nil {
			g.closeLink()
			return nil, nil, err
		}
		g.s = s
		if err := s.CreateNIC(1, ep); err != nil {
			g.close()
			return nil, nil, fmt.Errorf("gvisor CreateNIC: %v", err)
		}
		addr := tcpip.AddrFrom4(tunEngineAddr.As4()).WithPrefix()
		addr.PrefixLen = 24
		if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr}, stack.AddressProperties{}); err != nil {
			g.close()
			return nil, nil, fmt.Errorf("gvisor address: %v", err)
		}
		s.AddRoute(tcpip.Route{Destination: addr.Subnet(), NIC: 1})
		return g, []string{note}, nil
	}
}

func (g *gvTUN) listen(port uint16) (listener, error) {
	l, err := gonet.ListenTCP(g.s, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(tunEngineAddr.As4()), Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	return netListener{l}, nil
}

func (g *gvTUN) dial(to netip.AddrPort) (conn, error) {
	c, err := gonet.DialTCP(g.s, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()}, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	return netConn{c}, nil
}

func (g *gvTUN) packets() uint64 {
	if g.own == nil {
		return 0
	}
	return g.own.rx.Load() + g.own.tx.Load()
}

func (g *gvTUN) summary() string {
	if g.own == nil {
		return ""
	}
	o := g.own
	return fmt.Sprintf("tun: %d frames in (%d GSO), %d out (%d GSO), %d write errors",
		o.rx.Load(), o.rxGSO.Load(), o.tx.Load(), o.txGSO.Load(), o.txErr.Load())
}

func (g *gvTUN) memory() engineMemory { return engineMemory{} }

// close stops the stack (Wait removes the NIC, which stops the link's reader) and then
// closes the TUN.
func (g *gvTUN) close() {
	if g.s != nil {
		g.s.Close()
		g.s.Wait()
	}
	g.closeLink()
}

func (g *gvTUN) closeLink() {
	if g.own != nil {
		g.own.Close()
	}
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
}

// gvTUNEndpoint is a stack.LinkEndpoint on a TUN fd with a virtio-net header and host GSO.
// One reader goroutine (started by Attach) reads each frame, header apart, into a 64 KiB
// gVisor view it hands over whole (a small frame is copied into a view of its size
// instead, so an ACK does not hold 64 KiB); writes gather the header and the packet's
// views with writev under wmu.
type gvTUNEndpoint struct {
	f   *os.File
	rc  syscall.RawConn
	fd  int
	mtu uint32

	mu      sync.RWMutex
	disp    stack.NetworkDispatcher // guarded by mu
	started bool                    // guarded by mu
	onClose func()
	wg      sync.WaitGroup
	once    sync.Once

	wmu  sync.Mutex
	whdr [virtioHdrLen]byte // guarded by wmu
	wiov [][]byte           // guarded by wmu

	rx, rxGSO, tx, txGSO, txErr atomic.Uint64
}

var (
	_ stack.LinkEndpoint = (*gvTUNEndpoint)(nil)
	_ stack.GSOEndpoint  = (*gvTUNEndpoint)(nil)
)

// newGVTUNEndpoint wraps fd (non-blocking; the endpoint owns it from here: Close closes it).
func newGVTUNEndpoint(fd int, mtu int) (*gvTUNEndpoint, error) {
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &gvTUNEndpoint{f: f, rc: rc, fd: fd, mtu: uint32(mtu), wiov: make([][]byte, 0, 64)}, nil
}

func (e *gvTUNEndpoint) MTU() uint32                             { return e.mtu }
func (e *gvTUNEndpoint) SetMTU(mtu uint32)                       { e.mtu = mtu }
func (e *gvTUNEndpoint) MaxHeaderLength() uint16                 { return 0 }
func (e *gvTUNEndpoint) LinkAddress() tcpip.LinkAddress          { return "" }
func (e *gvTUNEndpoint) SetLinkAddress(tcpip.LinkAddress)        {}
func (e *gvTUNEndpoint) Wait()                                   {}
func (e *gvTUNEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }
func (e *gvTUNEndpoint) AddHeader(*stack.PacketBuffer)           {}
func (e *gvTUNEndpoint) ParseHeader(*stack.PacketBuffer) bool    { return true }
func (e *gvTUNEndpoint) SetOnCloseAction(f func())               { e.onClose = f }

// Capabilities: receive checksum offload, as Tailscale's link endpoint declares it (gVisor's
// NIC sets PacketBuffer.RXChecksumValidated from it alone): with TUN_F_CSUM the kernel
// hands over its own packets with the checksum left partial (NEEDS_CSUM), which gVisor
// could not verify.
func (e *gvTUNEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

// GSOMaxSize and SupportedGSO implement stack.GSOEndpoint: host GSO, Tailscale's kind.
func (e *gvTUNEndpoint) GSOMaxSize() uint32               { return gvTUNGSOMaxSize }
func (e *gvTUNEndpoint) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// Attach starts the reader on the first dispatcher; nil (the NIC removed) stops
// delivering.
func (e *gvTUNEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.disp = d
	start := d != nil && !e.started
	if start {
		e.started = true
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if start {
		go e.reader()
	}
}

func (e *gvTUNEndpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.disp != nil
}

// Close closes the TUN, which ends the reader, and waits for it. Idempotent.
func (e *gvTUNEndpoint) Close() {
	e.once.Do(func() {
		e.f.Close()
		e.wg.Wait()
		if e.onClose != nil {
			e.onClose()
		}
	})
}

// WritePackets writes each packet behind its virtio-net header: a GSO packet whole, with
// the kernel to cut it (gso_type, gso_size, hdr_len) and to finish its checksum
// (NEEDS_CSUM at csum_start = the IP header's length: a TUN frame has no link header).
func (e *gvTUNEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	n := 0
	for _, pkt := range pkts.AsSlice() {
		var r wire.VirtioNetHdrRepr
		if g := pkt.GSOOptions; g.Type != stack.GSONone {
			if g.NeedsCsum {
				r.Flags, r.CsumStart, r.CsumOffset = wire.VirtioNetNeedsCsum, g.L3HdrLen, g.CsumOffset
			}
			if pkt.Data().Size() > int(g.MSS) {
				r.GSOType = wire.VirtioNetGSOTCPv4
				if g.Type == stack.GSOTCPv6 {
					r.GSOType = wire.VirtioNetGSOTCPv6
				}
				r.HdrLen, r.GSOSize = uint16(pkt.HeaderSize()), g.MSS
			}
		}
		h := e.whdr[:]
		_ = r.Emit(h) // cannot fail: known flags and type, room for the header
		iov := append(e.wiov[:0], h)
		vl, off := pkt.AsViewList()
		for v := vl.Front(); v != nil; v = v.Next() {
			b := v.AsSlice()
			if off >= len(b) {
				off -= len(b)
				continue
			}
			iov = append(iov, b[off:])
			off = 0
		}
		e.wiov = iov[:0]
		if _, err := unix.Writev(e.fd, iov); err != nil {
			e.txErr.Add(1)
			continue // the kernel dropped it; TCP recovers
		}
		e.tx.Add(1)
		if r.GSOType != wire.VirtioNetGSONone {
			e.txGSO.Add(1)
		}
		n++
	}
	return n, nil
}

// reader reads frames until the TUN closes and delivers each to the stack.
func (e *gvTUNEndpoint) reader() {
	defer e.wg.Done()
	var h [virtioHdrLen]byte
	big := buffer.NewViewSize(gvTUNReadViewBytes)
	defer func() { big.Release() }()
	iov := make([][]byte, 2)
	for {
		var n int
		var rerr error
		err := e.rc.Read(func(fd uintptr) bool {
			iov[0], iov[1] = h[:], big.AsSlice()
			n, rerr = unix.Readv(int(fd), iov)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			if errors.Is(rerr, unix.EBADF) {
				return
			}
			continue
		}
		n -= virtioHdrLen
		if n <= 0 {
			continue
		}
		var v *buffer.View
		if n <= gvTUNSmallCopy {
			v = buffer.NewViewWithData(big.AsSlice()[:n])
		} else {
			v = big
			v.CapLength(n)
			big = buffer.NewViewSize(gvTUNReadViewBytes)
		}
		e.rx.Add(1)
		if wire.VirtioNetHdr(h[:]).GSOType() != wire.VirtioNetGSONone {
			e.rxGSO.Add(1)
		}
		e.mu.RLock()
		d := e.disp
		e.mu.RUnlock()
		if d == nil {
			v.Release()
			continue
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
