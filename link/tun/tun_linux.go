//go:build linux

package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// maxIov bounds the pbufs of one frame written or read with one syscall.
const maxIov = 64

// Device is an open TUN interface; it implements link.Endpoint.
type Device struct {
	name string
	mtu  int
	f    *os.File
	rc   syscall.RawConn

	dmu   sync.RWMutex
	disp  link.Dispatcher // guarded by dmu
	start sync.Once       // the reader starts at the first Attach
	wg    sync.WaitGroup
	once  sync.Once

	wmu  sync.Mutex
	wiov [][]byte // guarded by wmu

	// reader-owned scratch
	riov    [][]byte
	batch   []*pbuf.Pbuf
	discard []byte

	rxFrames, rxDropped, txFrames, txDropped atomic.Uint64
	rerr                                     atomic.Pointer[error]
}

var _ link.Endpoint = (*Device)(nil)

// Open creates (or attaches to) the TUN interface name ("" lets the kernel choose, and a
// "%d" in name is numbered by the kernel), sets its MTU and brings it up.
func Open(name string, mtu int) (*Device, error) {
	if mtu < 68 || mtu > 65535 {
		return nil, fmt.Errorf("tun: MTU %d out of range [68, 65535]", mtu)
	}
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tun: interface name %q longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return nil, fmt.Errorf("tun: /dev/net/tun is missing (load the tun module, or pass the device into the container): %w", err)
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("tun: opening /dev/net/tun needs CAP_NET_ADMIN (run as root): %w", err)
		}
		return nil, fmt.Errorf("tun: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: bad interface name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("tun: creating %q needs CAP_NET_ADMIN (run as root): %w", name, err)
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
			return nil, fmt.Errorf("tun: bad interface name %q (in use by another kind of device, or invalid): %w", name, err)
		}
		return nil, fmt.Errorf("tun: TUNSETIFF %q: %w", name, err)
	}
	name = ifr.Name()
	if err := configure(name, mtu); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The fd is non-blocking, so os.NewFile registers it with the netpoller.
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tun: %w", err)
	}
	return &Device{
		name: name, mtu: mtu, f: f, rc: rc,
		wiov:    make([][]byte, 0, maxIov),
		riov:    make([][]byte, 0, maxIov),
		batch:   make([]*pbuf.Pbuf, 0, link.MaxBatch),
		discard: make([]byte, mtu),
	}, nil
}

// configure sets the MTU and the IFF_UP flag with ioctls on an AF_INET socket.
func configure(name string, mtu int) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tun: control socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("tun: bad interface name %q: %w", name, err)
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("tun: set MTU %d on %s: %w", mtu, name, err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("tun: get flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("tun: bring %s up: %w", name, err)
	}
	return nil
}

// Name returns the interface name the kernel gave.
func (d *Device) Name() string { return d.name }

// Medium implements link.Endpoint: bare IP packets.
func (d *Device) Medium() link.Medium { return link.MediumIP }

// MTU implements link.Endpoint.
func (d *Device) MTU() int { return d.mtu }

// HardwareAddr implements link.Endpoint; a TUN device has none.
func (d *Device) HardwareAddr() [6]byte { return [6]byte{} }

// Stats returns frames received (delivered), received but dropped (no dispatcher or no rx
// buffer), written, and refused by the kernel or too long.
func (d *Device) Stats() (rx, rxDropped, tx, txDropped uint64) {
	return d.rxFrames.Load(), d.rxDropped.Load(), d.txFrames.Load(), d.txDropped.Load()
}

// Attach implements link.Endpoint. The reader goroutine starts at the first Attach of a
// dispatcher; until then packets wait in the kernel's queue.
func (d *Device) Attach(disp link.Dispatcher) {
	d.dmu.Lock()
	d.disp = disp
	d.dmu.Unlock()
	if disp != nil {
		d.start.Do(func() {
			d.wg.Add(1)
			go d.reader()
		})
	}
}

func (d *Device) dispatcher() link.Dispatcher {
	d.dmu.RLock()
	defer d.dmu.RUnlock()
	return d.disp
}

// WritePackets implements link.Endpoint: it takes ownership of every pbuf and writes each
// frame with one writev of its pbuf payloads. It returns how many the kernel took and the
// first error (errs.Val: longer than the MTU, errs.Clsd: closed, else the kernel's error).
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
	if p.TotLen() > d.mtu {
		return errs.Val
	}
	iov := d.wiov[:0]
	for q := p; q != nil; q = q.Next() {
		if q.Len() == 0 {
			continue
		}
		if len(iov) == cap(iov) {
			return errs.Val // more pbufs than one writev takes
		}
		iov = append(iov, q.Payload())
	}
	var werr error
	err := d.rc.Write(func(fd uintptr) bool {
		_, werr = unix.Writev(int(fd), iov)
		return true // never wait: a full device drops, as a real link does
	})
	clear(iov)
	if err != nil {
		return errs.Clsd
	}
	if werr != nil {
		if werr == unix.EAGAIN {
			return errs.WouldBlock
		}
		return werr
	}
	return nil
}

// reader is the receive goroutine: it waits for the fd to become readable, reads a batch,
// and delivers it. It stops when the device is closed or a read fails for good.
func (d *Device) reader() {
	defer d.wg.Done()
	var rerr error
	readBatch := func(fd uintptr) bool {
		for len(d.batch) < cap(d.batch) {
			err := d.readOne(int(fd))
			switch err {
			case nil, unix.EINTR:
			case unix.EAGAIN:
				// Nothing (more) to read: deliver what we have, or wait for the poller.
				return len(d.batch) > 0
			default:
				rerr = err
				return true
			}
		}
		return true
	}
	for {
		err := d.rc.Read(readBatch)
		if len(d.batch) > 0 {
			if disp := d.dispatcher(); disp != nil {
				d.rxFrames.Add(uint64(len(d.batch)))
				disp.DeliverPackets(d.batch)
			} else {
				for _, p := range d.batch {
					p.Free()
				}
				d.rxDropped.Add(uint64(len(d.batch)))
			}
			clear(d.batch)
			d.batch = d.batch[:0]
		}
		if err != nil {
			return // closed
		}
		if rerr != nil {
			d.rerr.Store(&rerr)
			return
		}
	}
}

// Err returns the error that stopped the reader, if any (nil after a plain Close).
func (d *Device) Err() error {
	if e := d.rerr.Load(); e != nil {
		return fmt.Errorf("tun: read %s: %w", d.name, *e)
	}
	return nil
}

// readOne reads one frame into a chain from the dispatcher (appended to d.batch), or into
// the discard buffer when there is no dispatcher or no buffer.
func (d *Device) readOne(fd int) error {
	var p *pbuf.Pbuf
	if disp := d.dispatcher(); disp != nil {
		p = disp.AllocRx(d.mtu)
	}
	if p == nil {
		_, err := unix.Read(fd, d.discard)
		if err == nil {
			d.rxDropped.Add(1)
		}
		return err
	}
	iov := d.riov[:0]
	for q := p; q != nil && len(iov) < cap(iov); q = q.Next() {
		iov = append(iov, q.Payload())
	}
	n, err := unix.Readv(fd, iov)
	clear(iov)
	if err != nil || n <= 0 {
		p.Free()
		if err == nil {
			err = unix.EAGAIN
		}
		return err
	}
	p.Shrink(n)
	d.batch = append(d.batch, p)
	return nil
}

// Close implements link.Endpoint: it closes the device, which unblocks the reader, and waits
// for it. Idempotent.
func (d *Device) Close() error {
	var err error
	d.once.Do(func() {
		err = d.f.Close()
		d.wg.Wait()
	})
	return err
}
