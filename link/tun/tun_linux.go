//go:build linux

package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// maxIov bounds the iovecs of one readv or writev: the kernel's UIO_MAXIOV.
const maxIov = 1024

// vnetHdrLen is the virtio-net header's length, as TUNSETVNETHDRSZ sets it.
const vnetHdrLen = wire.VirtioNetHdrLen

// TUNSETOFFLOAD flags (linux/if_tun.h).
const (
	tunFCsum = 0x01
	tunFTSO4 = 0x02
	tunFTSO6 = 0x04
	tunFUSO4 = 0x20 // Linux 6.2
	tunFUSO6 = 0x40
)

// Device is an open TUN or TAP interface; it implements link.Endpoint and link.Offloader.
type Device struct {
	name    string
	mtu     int
	tap     bool    // Ethernet frames (IFF_TAP)
	lh      int     // link header bytes before the IP packet: 0, or 14 on a TAP
	hw      [6]byte // the stack's MAC address on a TAP
	kernHW  [6]byte // the kernel interface's own MAC address on a TAP
	offload bool    // every packet read and written has a virtio-net header
	uso     bool    // the kernel took USO: UDP GSO packets both ways
	rxCap   int     // the longest frame a read takes: MTU (or rxMax with offloads) + lh
	queues  []*queue

	dmu   sync.RWMutex
	disp  link.Dispatcher // guarded by dmu
	start sync.Once       // the readers start at the first Attach
	wg    sync.WaitGroup
	once  sync.Once

	wmu   sync.Mutex
	wiov  []unix.Iovec          // guarded by wmu: the vnet header, then the frame's pbufs
	whdr  [vnetHdrLen]byte      // guarded by wmu
	wpeek [peekLen]byte         // guarded by wmu: the frame's first bytes, for its header
	wcur  []unix.Iovec          // guarded by wmu: what wfn writes
	werr  error                 // guarded by wmu: what wfn's writev returned
	wfn   func(fd uintptr) bool // made once: a closure per write would be allocated
	wbuf  []byte                // guarded by wmu: a frame of more than maxIov pbufs, copied

	rxFrames, rxDropped, txFrames, txDropped atomic.Uint64
	rxGSO, rxPartial, rxBadHdr, txGSO        atomic.Uint64
	rerr                                     atomic.Pointer[error]
}

var (
	_ link.Endpoint  = (*Device)(nil)
	_ link.Offloader = (*Device)(nil)
)

// Open creates (or attaches to) the TUN interface name ("" lets the kernel choose, and a
// "%d" in name is numbered by the kernel), sets its MTU and brings it up: one queue, no
// offloads (OpenConfig has both).
func Open(name string, mtu int) (*Device, error) {
	return OpenConfig(Config{Name: name, MTU: mtu})
}

// OpenConfig creates (or attaches to) the TUN interface c.Name (a TAP interface with
// c.TAP) with c.Queues queues, sets its MTU and brings it up. With c.Offload it asks for
// virtio-net headers, checksum offload and TSO; when the kernel refuses, it logs one line
// through c.Logf and opens the device as without c.Offload.
func OpenConfig(c Config) (*Device, error) {
	nq, err := c.check(unix.IFNAMSIZ)
	if err != nil {
		return nil, err
	}
	if c.Offload {
		d, err := open(&c, nq, true)
		var refused *offloadRefused
		if !errors.As(err, &refused) {
			return d, err
		}
		logf := c.Logf
		if logf == nil {
			logf = log.Printf
		}
		logf("tun: %s: the kernel refuses offloads (%v): packets go without virtio-net headers, no TSO, no checksum offload", refused.name, refused.err)
	}
	return open(&c, nq, false)
}

// offloadRefused is the kernel's refusal of a virtio-net header setting: OpenConfig then
// falls back to plain packets.
type offloadRefused struct {
	name string
	err  error
}

func (e *offloadRefused) Error() string { return fmt.Sprintf("tun: %s: offloads: %v", e.name, e.err) }

// setOffload is TUNSETOFFLOAD (a variable so that tests can make the kernel refuse).
var setOffload = func(fd int, flags int) error {
	return unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, flags)
}

// openFD opens /dev/net/tun, non-blocking.
func openFD() (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return -1, fmt.Errorf("tun: /dev/net/tun is missing (load the tun module, or pass the device into the container): %w", err)
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return -1, fmt.Errorf("tun: opening /dev/net/tun needs CAP_NET_ADMIN (run as root): %w", err)
		}
		return -1, fmt.Errorf("tun: open /dev/net/tun: %w", err)
	}
	return fd, nil
}

// open opens nq queues of the interface c.Name, each a TUNSETIFF on its own fd (the first
// creates the interface, the others attach to it), with virtio-net headers and offloads
// when vnet is set; it fails with *offloadRefused when the kernel refuses those.
func open(c *Config, nq int, vnet bool) (d *Device, err error) {
	name, mtu := c.Name, c.MTU
	var fds []int
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}()
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if c.TAP {
		flags = unix.IFF_TAP | unix.IFF_NO_PI
	}
	if nq > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	for range nq {
		fd, err := openFD()
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return nil, fmt.Errorf("tun: bad interface name %q: %w", name, err)
		}
		ifr.SetUint16(flags)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			switch {
			case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
				return nil, fmt.Errorf("tun: creating %q needs CAP_NET_ADMIN (run as root): %w", name, err)
			case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
				return nil, fmt.Errorf("tun: bad interface name %q (in use by another kind of device, with other queue flags, or invalid): %w", name, err)
			}
			return nil, fmt.Errorf("tun: TUNSETIFF %q: %w", name, err)
		}
		name = ifr.Name() // the queues after the first attach to the same interface
	}
	uso := false
	if vnet {
		var err error
		if uso, err = vnetSetup(fds[0]); err != nil {
			return nil, &offloadRefused{name: name, err: err}
		}
	}
	kernHW, err := configure(name, mtu, c.TAP)
	if err != nil {
		return nil, err
	}
	d = &Device{
		name: name, mtu: mtu, offload: vnet, uso: uso,
		wiov: make([]unix.Iovec, 0, maxIov),
	}
	if c.TAP {
		d.tap, d.lh, d.kernHW = true, wire.EthernetHeaderLen, kernHW
		switch d.hw = c.HardwareAddr; d.hw {
		case [6]byte{}:
			d.hw = randomMAC(kernHW)
		case kernHW:
			return nil, fmt.Errorf("tun: hardware address %s is the kernel interface %s's own", macString(kernHW), name)
		}
	}
	d.rxCap = mtu + d.lh
	d.wfn = func(fd uintptr) bool {
		_, d.werr = writev(int(fd), d.wcur)
		return true // never wait: a full device drops, as a real link does
	}
	if vnet {
		d.rxCap = rxMax + d.lh
	}
	d.wbuf = make([]byte, d.rxCap)
	for _, fd := range fds {
		// The fd is non-blocking, so os.NewFile registers it with the netpoller.
		f := os.NewFile(uintptr(fd), "/dev/net/tun")
		rc, err := f.SyscallConn()
		if err != nil {
			for _, q := range d.queues {
				q.f.Close()
			}
			f.Close()
			fds = nil // closed with their files
			return nil, fmt.Errorf("tun: %w", err)
		}
		d.queues = append(d.queues, &queue{
			d: d, f: f, rc: rc,
			iov:     make([]unix.Iovec, 0, maxIov),
			batch:   make([]*pbuf.Pbuf, 0, link.MaxBatch),
			discard: make([]byte, vnetHdrLen+d.rxCap),
		})
	}
	return d, nil
}

// vnetSetup sets the virtio-net header's size and byte order and asks for checksum offload,
// TSO and, where the kernel has it (Linux 6.2), USO (the settings belong to the interface:
// one fd is enough). It reports whether USO was taken.
func vnetSetup(fd int) (uso bool, err error) {
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		return false, fmt.Errorf("TUNSETVNETHDRSZ %d: %w", vnetHdrLen, err)
	}
	// Little-endian fields on every host (the default on little-endian hosts, where a
	// kernel without the ioctl needs nothing).
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil && !littleEndian() {
		return false, fmt.Errorf("TUNSETVNETLE: %w", err)
	}
	if setOffload(fd, tunFCsum|tunFTSO4|tunFTSO6|tunFUSO4|tunFUSO6) == nil {
		return true, nil
	}
	if err := setOffload(fd, tunFCsum|tunFTSO4|tunFTSO6); err != nil {
		return false, fmt.Errorf("TUNSETOFFLOAD csum,tso4,tso6: %w", err)
	}
	return false, nil
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

// configure sets the MTU and the IFF_UP flag with ioctls on an AF_INET socket, and
// returns the interface's MAC address when tap is set.
func configure(name string, mtu int, tap bool) (hw [6]byte, err error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return hw, fmt.Errorf("tun: control socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return hw, fmt.Errorf("tun: bad interface name %q: %w", name, err)
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		return hw, fmt.Errorf("tun: set MTU %d on %s: %w", mtu, name, err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return hw, fmt.Errorf("tun: get flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return hw, fmt.Errorf("tun: bring %s up: %w", name, err)
	}
	if tap {
		if err := unix.IoctlIfreq(s, unix.SIOCGIFHWADDR, ifr); err != nil {
			return hw, fmt.Errorf("tun: get the hardware address of %s: %w", name, err)
		}
		// struct sockaddr in the ifreq's union: a family, then the address bytes.
		copy(hw[:], (*[unix.IFNAMSIZ + 16]byte)(unsafe.Pointer(ifr))[unix.IFNAMSIZ+2:])
	}
	return hw, nil
}

// Name returns the interface name the kernel gave.
func (d *Device) Name() string { return d.name }

// Medium implements link.Endpoint: bare IP packets, or Ethernet frames on a TAP.
func (d *Device) Medium() link.Medium {
	if d.tap {
		return link.MediumEthernet
	}
	return link.MediumIP
}

// MTU implements link.Endpoint: the largest IP packet (a TAP's frames are 14 bytes longer).
func (d *Device) MTU() int { return d.mtu }

// HardwareAddr implements link.Endpoint: the stack's MAC address on a TAP
// (Config.HardwareAddr, or the random one chosen at open); a TUN device has none.
func (d *Device) HardwareAddr() [6]byte { return d.hw }

// KernelHardwareAddr returns the kernel interface's own MAC address on a TAP (the
// kernel's side of the link), zero on a TUN.
func (d *Device) KernelHardwareAddr() [6]byte { return d.kernHW }

// Stats returns frames received (delivered), received but dropped (no dispatcher, no rx
// buffer, or a malformed virtio-net header), written, and refused by the kernel or too long.
func (d *Device) Stats() (rx, rxDropped, tx, txDropped uint64) {
	return d.rxFrames.Load(), d.rxDropped.Load(), d.txFrames.Load(), d.txDropped.Load()
}

// OffloadStats returns the GSO packets received (coalesced by the kernel), the packets
// received with a partial checksum, those dropped for a malformed virtio-net header (counted
// in Stats' rxDropped as well), and the GSO packets written.
func (d *Device) OffloadStats() (rxGSO, rxPartial, rxBadHeader, txGSO uint64) {
	return d.rxGSO.Load(), d.rxPartial.Load(), d.rxBadHdr.Load(), d.txGSO.Load()
}

// Offloads implements link.Offloader: checksum offload and TSO for IPv4 and IPv6 up to
// 64 KiB when the device was opened with offloads the kernel accepted, else none.
func (d *Device) Offloads() link.Offloads {
	if !d.offload {
		return link.Offloads{}
	}
	return link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, USO: d.uso, GSOMax: gsoMax}
}

// USO reports whether the kernel took UDP segmentation offload (Linux 6.2 and later): UDP
// GSO packets are then read and written whole.
func (d *Device) USO() bool { return d.uso }

// Queues returns the number of queues, each with its reader goroutine.
func (d *Device) Queues() int { return len(d.queues) }

// Attach implements link.Endpoint. The reader goroutines start at the first Attach of a
// dispatcher; until then packets wait in the kernel's queues.
func (d *Device) Attach(disp link.Dispatcher) {
	d.dmu.Lock()
	d.disp = disp
	d.dmu.Unlock()
	if disp != nil {
		d.start.Do(func() {
			for _, q := range d.queues {
				d.wg.Add(1)
				go q.reader()
			}
		})
	}
}

func (d *Device) dispatcher() link.Dispatcher {
	d.dmu.RLock()
	defer d.dmu.RUnlock()
	return d.disp
}

// WritePackets implements link.Endpoint: it takes ownership of every pbuf and writes each
// frame with one writev of its virtio-net header (with offloads) and its pbuf payloads. It
// returns how many the kernel took and the first error (errs.Val: longer than the MTU
// without being a GSO packet, or a GSO packet or partial checksum the header cannot
// describe; errs.Clsd: closed; else the kernel's error).
//
// Every write goes to the first queue's fd: writes are serialized by one mutex anyway, the
// kernel takes a packet written to any queue the same way, and one fd keeps the frames of
// a flow in the order the stack sent them.
func (d *Device) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	var first error
	n := 0
	for _, p := range pkts {
		err := d.write(p)
		p.Free()
		if err != nil {
			d.txDropped.Add(1)
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	d.txFrames.Add(uint64(n))
	return n, first
}

// write writes one frame (borrowed); d.wmu is held.
func (d *Device) write(p *pbuf.Pbuf) error {
	gso, size := p.GSO()
	partial := p.Flags()&pbuf.FlagChecksumPartial != 0
	n := p.TotLen()
	if gso != pbuf.GSONone {
		if !d.offload || n-d.lh > gsoMax {
			return errs.Val
		}
	} else if n-d.lh > d.mtu || d.tap && n <= d.lh || partial && !d.offload {
		return errs.Val
	}
	iov := d.wiov[:0]
	if d.offload {
		var r wire.VirtioNetHdrRepr
		if gso != pbuf.GSONone || partial {
			k := p.CopyOut(d.wpeek[:], 0)
			if txHdr(&r, d.wpeek[:k], n, d.lh, gso, size, partial) != nil {
				return errs.Val
			}
		}
		if r.Emit(d.whdr[:]) != nil {
			return errs.Val
		}
		iov = append(iov, iovec(d.whdr[:]))
	}
	hdrs := len(iov)
	for q := p; q != nil; q = q.Next() {
		if q.Len() == 0 {
			continue
		}
		if len(iov) == cap(iov) {
			// More pbufs than one writev takes (a GSO packet of many small writes): one
			// copy into the device's buffer.
			clear(iov[hdrs:])
			iov = append(iov[:hdrs], iovec(d.wbuf[:p.CopyOut(d.wbuf, 0)]))
			break
		}
		iov = append(iov, iovec(q.Payload()))
	}
	d.wcur, d.werr = iov, nil
	err := d.queues[0].rc.Write(d.wfn)
	werr := d.werr
	clear(iov)
	d.wcur, d.werr = nil, nil
	if err != nil {
		return errs.Clsd
	}
	if werr != nil {
		if werr == unix.EAGAIN {
			return errs.WouldBlock
		}
		return werr
	}
	if gso != pbuf.GSONone {
		d.txGSO.Add(1)
	}
	return nil
}

// Err returns the error that stopped a reader, if any (nil after a plain Close).
func (d *Device) Err() error {
	if e := d.rerr.Load(); e != nil {
		return fmt.Errorf("tun: read %s: %w", d.name, *e)
	}
	return nil
}

// Close implements link.Endpoint: it closes every queue, which unblocks the readers, and
// waits for them. Idempotent.
func (d *Device) Close() error {
	var err error
	d.once.Do(func() {
		for _, q := range d.queues {
			if e := q.f.Close(); err == nil {
				err = e
			}
		}
		d.wg.Wait()
	})
	return err
}

// iovec is the iovec of b, which must not be empty.
func iovec(b []byte) unix.Iovec {
	v := unix.Iovec{Base: unsafe.SliceData(b)}
	v.SetLen(len(b))
	return v
}

// readv and writev are the system calls on iovecs the caller keeps: x/sys/unix's Readv and
// Writev allocate theirs beyond eight buffers.
func readv(fd int, iov []unix.Iovec) (int, error) {
	n, _, e := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func writev(fd int, iov []unix.Iovec) (int, error) {
	n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
