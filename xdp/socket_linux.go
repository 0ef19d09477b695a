//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xsk is one AF_XDP socket with its own UMEM and four rings.
type xsk struct {
	fd       int
	umem     []byte // anonymous mapping: RX frames first, then TX frames
	maps     [][]byte
	fill     ring // producer: frames handed to the kernel for receiving
	comp     ring // consumer: transmitted frames coming back
	rx       ring // consumer: received descriptors
	tx       ring // producer: descriptors to transmit
	zeroCopy bool
	budget   int // XDP_MAX_TX_SKB_BUDGET set, 0 if refused
}

// bindRetry bounds the retries of a bind refused with EBUSY: a socket closed moments ago
// on the same queue is torn down by the kernel later (~300 ms measured).
const bindRetry = 2 * time.Second

func sockopt(fd, level, name int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, level, name int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// ifIndex returns the index of the interface name in the calling thread's namespace.
func ifIndex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("no such interface: %w", err)
	}
	return ifi.Index, nil
}

// newXSK opens and binds the socket of one queue. On error it holds nothing.
func newXSK(ifindex, queue int, c *Config) (x *xsk, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.ENOSYS):
			return nil, fmt.Errorf("AF_XDP sockets not supported by this kernel (CONFIG_XDP_SOCKETS): %w", err)
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("AF_XDP socket needs CAP_NET_RAW (run as root): %w", err)
		}
		return nil, fmt.Errorf("AF_XDP socket: %w", err)
	}
	x = &xsk{fd: fd}
	defer func() {
		if err != nil {
			x.close()
			x = nil
		}
	}()
	frames := c.RxFrames + c.TxFrames
	x.umem, err = unix.Mmap(-1, 0, frames*c.FrameSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return x, fmt.Errorf("UMEM of %d bytes: %w", frames*c.FrameSize, err)
	}
	reg := unix.XDPUmemReg{
		Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))),
		Len:  uint64(len(x.umem)),
		Size: uint32(c.FrameSize),
	}
	if err := sockopt(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return x, fmt.Errorf("XDP_UMEM_REG (memlock limit?): %w", err)
	}
	size := int32(c.RingSize)
	for _, o := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := sockopt(fd, unix.SOL_XDP, o, unsafe.Pointer(&size), 4); err != nil {
			return x, fmt.Errorf("ring size %d: %w", size, err)
		}
	}
	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return x, fmt.Errorf("XDP_MMAP_OFFSETS: %w", err)
	}
	n := uint32(c.RingSize)
	mapRing := func(o unix.XDPRingOffset, pgoff int64, entry uint64, prodSide bool) (ring, error) {
		m, err := unix.Mmap(fd, pgoff, int(o.Desc+uint64(n)*entry), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return ring{}, fmt.Errorf("mmap of a ring: %w", err)
		}
		x.maps = append(x.maps, m)
		base := unsafe.Pointer(&m[0])
		return newRing((*uint32)(unsafe.Add(base, o.Producer)), (*uint32)(unsafe.Add(base, o.Consumer)),
			(*uint32)(unsafe.Add(base, o.Flags)), unsafe.Add(base, o.Desc), n, prodSide), nil
	}
	if x.fill, err = mapRing(off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, 8, true); err != nil {
		return x, err
	}
	if x.comp, err = mapRing(off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, 8, false); err != nil {
		return x, err
	}
	if x.rx, err = mapRing(off.Rx, unix.XDP_PGOFF_RX_RING, 16, false); err != nil {
		return x, err
	}
	if x.tx, err = mapRing(off.Tx, unix.XDP_PGOFF_TX_RING, 16, true); err != nil {
		return x, err
	}
	if err := x.bind(ifindex, queue, c.ZeroCopy); err != nil {
		return x, err
	}
	var opts uint32
	if err := getsockopt(fd, unix.SOL_XDP, unix.XDP_OPTIONS, unsafe.Pointer(&opts), 4); err == nil {
		x.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	}
	// More than 32 frames per sendto kick in copy mode (Linux 6.16's XDP_MAX_TX_SKB_BUDGET).
	budget := int32(min(c.RingSize, 256))
	if sockopt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, unsafe.Pointer(&budget), 4) == nil {
		x.budget = int(budget)
	}
	if c.BusyPoll {
		one, usec, b := int32(1), int32(20), int32(c.Batch)
		sockopt(fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, unsafe.Pointer(&one), 4)
		sockopt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, unsafe.Pointer(&usec), 4)
		sockopt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL_BUDGET, unsafe.Pointer(&b), 4)
	}
	return x, nil
}

// bind binds the socket to (ifindex, queue) with need_wakeup, asking for zero-copy when
// zc (and falling back to copy when refused), retrying EBUSY for up to bindRetry.
func (x *xsk) bind(ifindex, queue int, zc bool) error {
	mode := uint16(unix.XDP_COPY)
	if zc {
		mode = unix.XDP_ZEROCOPY
	}
	deadline := time.Now().Add(bindRetry)
	wait := 10 * time.Millisecond
	for {
		sa := &unix.SockaddrXDP{Flags: unix.XDP_USE_NEED_WAKEUP | mode, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
		err := unix.Bind(x.fd, sa)
		switch {
		case err == nil:
			return nil
		case mode == unix.XDP_ZEROCOPY && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPROTONOSUPPORT)):
			mode = unix.XDP_COPY
			continue
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(wait)
			wait = min(2*wait, 200*time.Millisecond)
			continue
		case errors.Is(err, unix.EINVAL) && queue > 0:
			return fmt.Errorf("bind to queue %d (beyond the interface's queues?): %w", queue, err)
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("bind to queue %d: in use by another AF_XDP socket: %w", queue, err)
		}
		return fmt.Errorf("bind to queue %d: %w", queue, err)
	}
}

// statistics reads XDP_STATISTICS.
func (x *xsk) statistics() (unix.XDPStatistics, error) {
	var s unix.XDPStatistics
	err := getsockopt(x.fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&s), unsafe.Sizeof(s))
	return s, err
}

// kick wakes the kernel's transmit (sendto with MSG_DONTWAIT).
func (x *xsk) kick() error {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.ENXIO {
		return e // unbound: the interface is gone
	}
	// EAGAIN, EBUSY, ENOBUFS: the kernel is busy or out of skbs; ENETDOWN: the interface
	// is down for now. The frames stay in the TX ring and the next kick retries.
	return nil
}

// wakeRx wakes the kernel's receive (recvfrom with MSG_DONTWAIT): for the fill ring's
// need_wakeup, busy polling, and to learn that the device went away (ENXIO).
func (x *xsk) wakeRx() error {
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.ENXIO {
		return e // unbound: the interface is gone
	}
	return nil // ENETDOWN: down for now, it may come back up
}

// close unmaps the rings, closes the socket and unmaps the UMEM (Open's error path; a
// queue's close keeps the UMEM while frames are lent).
func (x *xsk) close() {
	for _, m := range x.maps {
		unix.Munmap(m)
	}
	x.maps = nil
	if x.fd >= 0 {
		unix.Close(x.fd)
		x.fd = -1
	}
	if x.umem != nil {
		unix.Munmap(x.umem)
		x.umem = nil
	}
}

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	cmd                                         uint32
	maxRx, maxTx, maxOther, maxCombined         uint32
	rxCount, txCount, otherCount, combinedCount uint32
}

// ifreqData is struct ifreq with its union holding a pointer (ifr_data).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// rxQueues returns how many RX queues the interface has (ETHTOOL_GCHANNELS: combined and
// RX-only channels), or 0 when the driver does not say. The socket is made on the calling
// thread, so the interface is looked up in its network namespace.
func rxQueues(name string) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	ch := ethtoolChannels{cmd: unix.ETHTOOL_GCHANNELS}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], name)
	ifr.data = unsafe.Pointer(&ch)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return 0
	}
	return int(ch.combinedCount + ch.rxCount)
}
