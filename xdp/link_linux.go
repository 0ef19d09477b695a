//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// Link is an AF_XDP link over one interface: one socket per queue. It implements
// link.Endpoint (Ethernet), link.TxRoomer, link.MultiQueue, link.AddrFilter,
// link.DeviceStater and link.Offloader.
type Link struct {
	cfg     Config
	name    string
	ifindex int
	mac     [6]byte
	mtu     int
	info    Info
	queues  []*queue
	evfd    int // readable once Close starts: wakes the receivers

	amu sync.Mutex // serializes SetAddrs and Close's detach
	obj *objects   // guarded by amu

	dmu   sync.RWMutex
	disp  link.Dispatcher // guarded by dmu
	start sync.Once
	wg    sync.WaitGroup // the receivers
	kwg   sync.WaitGroup // the kickers

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ link.Endpoint     = (*Link)(nil)
	_ link.TxRoomer     = (*Link)(nil)
	_ link.MultiQueue   = (*Link)(nil)
	_ link.AddrFilter   = (*Link)(nil)
	_ link.DeviceStater = (*Link)(nil)
	_ link.Offloader    = (*Link)(nil)
)

// Open binds cfg.Queues AF_XDP sockets to the interface cfg.Interface, loads the redirect
// program with cfg.Addrs and attaches it. Every socket and BPF object is made on the
// calling goroutine's OS thread, so they belong to its network namespace; the receivers
// start at the first Attach. On error nothing is left attached or open.
func Open(cfg Config) (l *Link, err error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("xdp: %s: %w", c.Interface, err) }
	ifi, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return nil, wrap(fmt.Errorf("no such interface: %w", err))
	}
	mtu := c.MTU
	if mtu == 0 {
		mtu = min(ifi.MTU, c.maxMTU())
	}
	l = &Link{cfg: c, name: c.Interface, ifindex: ifi.Index, mtu: mtu, evfd: -1}
	copy(l.mac[:], ifi.HardwareAddr)
	defer func() {
		if err != nil {
			l.teardown()
			l = nil
		}
	}()
	devQueues := rxQueues(c.Interface)
	if devQueues > 0 && c.Queues > devQueues {
		return l, wrap(fmt.Errorf("%d queues asked, the interface has %d RX queues (ethtool -L to add more)", c.Queues, devQueues))
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return l, wrap(fmt.Errorf("eventfd: %w", err))
	}
	obj, err := loadRedirect(c.Queues, xdpPass)
	if err != nil {
		return l, wrap(err)
	}
	l.obj = obj
	if err := obj.setAddrs(c.Addrs); err != nil {
		return l, wrap(err)
	}
	for i := range c.Queues {
		x, err := newXSK(ifi.Index, i, &c)
		if err != nil {
			return l, wrap(err)
		}
		q := newQueue(l, i, x)
		l.queues = append(l.queues, q)
		if err := obj.xsks.Put(uint32(i), uint32(x.fd)); err != nil {
			return l, wrap(fmt.Errorf("XSKMAP entry of queue %d: %w", i, err))
		}
	}
	fallback, err := obj.attach(ifi.Index, c.Mode)
	if err != nil {
		return l, wrap(err)
	}
	x0 := l.queues[0].x
	l.info = Info{
		Interface: c.Interface, IfIndex: ifi.Index, Attach: obj.mode, ZeroCopy: x0.zeroCopy,
		NeedWakeup: true, FrameSize: c.FrameSize, Queues: c.Queues, MTU: mtu,
		RxZeroCopy: c.RxZeroCopy && c.Alloc != nil, TxSkbBudget: x0.budget, DeviceQueues: devQueues,
	}
	if asyncKick {
		for _, q := range l.queues {
			q.kickc = make(chan struct{}, 1)
			l.kwg.Add(1)
			go q.kicker()
		}
	}
	if c.Logf != nil {
		if devQueues > c.Queues {
			c.Logf("xdp: %s: %d of the interface's %d RX queues have a socket: flows the NIC hashes to the others reach the kernel, not wisp (ethtool -L %s combined %d, or Config.Queues %d)",
				c.Interface, c.Queues, devQueues, c.Interface, c.Queues, devQueues)
		}
		if fallback != nil {
			c.Logf("xdp: %s: driver attach refused (%v): generic mode", c.Interface, fallback)
		}
		if c.ZeroCopy && !x0.zeroCopy {
			c.Logf("xdp: %s: zero-copy refused by the driver: copy mode", c.Interface)
		}
		if c.RxZeroCopy && c.Alloc == nil {
			c.Logf("xdp: %s: RxZeroCopy without Config.Alloc: received frames are copied", c.Interface)
		}
	}
	return l, nil
}

// teardown releases what Open made, in the order that leaves nothing attached.
func (l *Link) teardown() {
	l.amu.Lock()
	if l.obj != nil {
		l.obj.close()
		l.obj = nil
	}
	l.amu.Unlock()
	for _, q := range l.queues {
		q.close()
	}
	if l.evfd >= 0 {
		unix.Close(l.evfd)
		l.evfd = -1
	}
}

// Medium is Ethernet.
func (l *Link) Medium() link.Medium { return link.MediumEthernet }

// MTU is the link's MTU (Config.MTU or the interface's, capped to fit a frame).
func (l *Link) MTU() int { return l.mtu }

// HardwareAddr is the interface's MAC address.
func (l *Link) HardwareAddr() [6]byte { return l.mac }

// Offloads: no TSO and no checksum offload, but GSO packets of up to 64 KiB, which the
// stack cuts into frames just before the link.
func (l *Link) Offloads() link.Offloads { return link.Offloads{GSOMax: gsoMax} }

// gsoMax is Offloads' GSOMax (a variable so that a measurement can compare it with none).
var gsoMax = 65535

// Info says what Open obtained.
func (l *Link) Info() Info { return l.info }

// Queues is the number of queues (sockets).
func (l *Link) Queues() int { return len(l.queues) }

// TxQueues is Queues: one TX queue per socket.
func (l *Link) TxQueues() int { return len(l.queues) }

// Attach sets the dispatcher; the receivers start at the first one.
func (l *Link) Attach(d link.Dispatcher) {
	l.dmu.Lock()
	defer l.dmu.Unlock()
	l.disp = d
	// Under dmu, which Close takes to set closed: either the receivers start before
	// Close waits for them, or they never start.
	if d == nil || l.closed.Load() {
		return
	}
	l.start.Do(func() {
		for _, q := range l.queues {
			l.wg.Add(1)
			go q.receiver()
		}
	})
}

func (l *Link) dispatcher() link.Dispatcher {
	l.dmu.RLock()
	d := l.disp
	l.dmu.RUnlock()
	return d
}

// WritePackets is WriteQueue(0, pkts).
func (l *Link) WritePackets(pkts []*pbuf.Pbuf) (int, error) { return l.queues[0].write(pkts) }

// WriteQueue copies each frame of pkts into a free TX frame of queue q and posts them, and
// wakes the queue's kicker once for the batch. It takes ownership of every pbuf. A frame larger than a UMEM
// frame is dropped (errs.Val); when no frame is free, the rest are dropped
// (errs.WouldBlock); after Close or once the interface is gone, errs.Clsd.
func (l *Link) WriteQueue(q int, pkts []*pbuf.Pbuf) (int, error) {
	if q < 0 || q >= len(l.queues) {
		for _, p := range pkts {
			p.Free()
		}
		return 0, errs.Arg
	}
	return l.queues[q].write(pkts)
}

// TxRoom is QueueRoom(0).
func (l *Link) TxRoom() int { return l.queues[0].room() }

// QueueRoom reports how many frames WriteQueue(q) would accept now.
func (l *Link) QueueRoom(q int) int {
	if q < 0 || q >= len(l.queues) {
		return 0
	}
	return l.queues[q].room()
}

// SetAddrs makes the program redirect exactly the traffic of addrs (updating its maps,
// without reloading it).
func (l *Link) SetAddrs(addrs []netip.Addr) error {
	l.amu.Lock()
	defer l.amu.Unlock()
	if l.obj == nil {
		return errs.Clsd
	}
	if !l.cfg.LinkLocal {
		addrs = slices.DeleteFunc(slices.Clone(addrs), netip.Addr.IsLinkLocalUnicast)
	}
	if err := l.obj.setAddrs(addrs); err != nil {
		return fmt.Errorf("xdp: %s: %w", l.name, err)
	}
	return nil
}

// DeviceStats appends one record per queue: the link's counters and the socket's
// XDP_STATISTICS.
func (l *Link) DeviceStats(dst []stats.Queue) []stats.Queue {
	for _, q := range l.queues {
		dst = append(dst, q.stats())
	}
	return dst
}

// Err reports why the link stopped on its own (the interface went away), or nil.
func (l *Link) Err() error {
	for _, q := range l.queues {
		if q.dead.Load() {
			return fmt.Errorf("xdp: %s: queue %d: %w", l.name, q.id, *q.deadErr.Load())
		}
	}
	return nil
}

// Close detaches the program, stops the receivers (waiting for a delivery in progress) and
// the kickers, closes the sockets and unmaps the UMEM (once every frame lent to the stack
// is back). Later writes fail with errs.Clsd.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.dmu.Lock()
		l.closed.Store(true)
		l.dmu.Unlock()
		l.amu.Lock()
		if l.obj != nil {
			if err := l.obj.close(); err != nil && !errors.Is(err, unix.ENODEV) {
				l.closeErr = fmt.Errorf("xdp: %s: detach: %w", l.name, err)
			}
			l.obj = nil
		}
		l.amu.Unlock()
		var one [8]byte
		one[0] = 1
		unix.Write(l.evfd, one[:])
		l.wg.Wait()
		for _, q := range l.queues {
			q.tmu.Lock()
			if q.kickc != nil {
				close(q.kickc)
			}
			q.tmu.Unlock()
		}
		l.kwg.Wait()
		l.teardown()
	})
	return l.closeErr
}
