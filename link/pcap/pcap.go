package pcap

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// File format constants (pcap-savefile(5)).
const (
	MagicMicro = 0xa1b2c3d4 // timestamps in microseconds
	MagicNano  = 0xa1b23c4d // timestamps in nanoseconds

	LinkTypeEthernet = 1   // LINKTYPE_ETHERNET
	LinkTypeRaw      = 101 // LINKTYPE_RAW: bare IPv4 or IPv6

	fileHeaderLen   = 24
	recordHeaderLen = 16
	// DefaultSnapLen is used when Wrap is given a snaplen of zero or less.
	DefaultSnapLen = 262144
)

// Option adjusts a capture.
type Option func(*Link)

// WithClock takes timestamps from c instead of the wall clock (deterministic tests).
func WithClock(c clock.Clock) Option { return func(l *Link) { l.clk = c } }

// WithNanoseconds writes nanosecond timestamps (magic 0xa1b23c4d).
func WithNanoseconds() Option { return func(l *Link) { l.nano = true } }

// Link records the frames of the link it wraps; it implements link.Endpoint and, towards
// the inner link, link.Dispatcher.
type Link struct {
	inner link.Endpoint
	clk   clock.Clock
	nano  bool
	snap  int
	once  sync.Once

	mu      sync.Mutex
	w       io.Writer // guarded by mu
	buf     []byte    // guarded by mu: one record, reused
	err     error     // guarded by mu: the first write error; later records are skipped
	records uint64    // guarded by mu

	dmu   sync.RWMutex
	upper link.Dispatcher // guarded by dmu
}

var (
	_ link.Endpoint   = (*Link)(nil)
	_ link.Dispatcher = (*Link)(nil)
)

// Wrap writes the capture file header to w and returns a Link recording inner's traffic.
// The Link owns inner (Close closes it) and attaches itself to it; w stays the caller's.
func Wrap(inner link.Endpoint, w io.Writer, snaplen int, opts ...Option) (*Link, error) {
	if snaplen <= 0 {
		snaplen = DefaultSnapLen
	}
	l := &Link{inner: inner, clk: clock.Real, snap: snaplen, w: w}
	for _, o := range opts {
		o(l)
	}
	var lt uint32
	switch inner.Medium() {
	case link.MediumEthernet:
		lt = LinkTypeEthernet
	case link.MediumIP:
		lt = LinkTypeRaw
	default:
		return nil, fmt.Errorf("pcap: no link type for medium %v", inner.Medium())
	}
	magic := uint32(MagicMicro)
	if l.nano {
		magic = MagicNano
	}
	var h [fileHeaderLen]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], magic)
	le.PutUint16(h[4:], 2) // version 2.4
	le.PutUint16(h[6:], 4)
	// thiszone and sigfigs stay zero.
	le.PutUint32(h[16:], uint32(snaplen))
	le.PutUint32(h[20:], lt)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap: writing file header: %w", err)
	}
	l.buf = make([]byte, recordHeaderLen+snaplen)
	inner.Attach(l)
	return l, nil
}

// Inner returns the wrapped link.
func (l *Link) Inner() link.Endpoint { return l.inner }

// Medium implements link.Endpoint.
func (l *Link) Medium() link.Medium { return l.inner.Medium() }

// MTU implements link.Endpoint.
func (l *Link) MTU() int { return l.inner.MTU() }

// Offloads implements link.Offloader: the inner link's, so that capturing does not change
// what goes on the wire. GSO packets are recorded whole and partial checksums as they are,
// as tcpdump on a Linux host with offloads records them.
func (l *Link) Offloads() link.Offloads {
	if o, ok := l.inner.(link.Offloader); ok {
		return o.Offloads()
	}
	return link.Offloads{}
}

// HardwareAddr implements link.Endpoint.
func (l *Link) HardwareAddr() [6]byte { return l.inner.HardwareAddr() }

// Attach implements link.Endpoint.
func (l *Link) Attach(d link.Dispatcher) {
	l.dmu.Lock()
	l.upper = d
	l.dmu.Unlock()
}

// Err returns the first error writing the capture; after it nothing more is recorded.
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Records returns how many frames were recorded.
func (l *Link) Records() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records
}

// WritePackets implements link.Endpoint: it records each frame, then passes the batch, and
// ownership of every pbuf, to the inner link.
func (l *Link) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	l.record(pkts)
	return l.inner.WritePackets(pkts)
}

// TxRoom implements link.TxRoomer: the inner link's room, or math.MaxInt when it does not
// say.
func (l *Link) TxRoom() int {
	if r, ok := l.inner.(link.TxRoomer); ok {
		return r.TxRoom()
	}
	return math.MaxInt
}

// AllocRx implements link.Dispatcher for the inner link by forwarding; the caller owns
// the returned chain, as link.Dispatcher.AllocRx says.
func (l *Link) AllocRx(n int) *pbuf.Pbuf {
	l.dmu.RLock()
	d := l.upper
	l.dmu.RUnlock()
	if d == nil {
		return nil
	}
	return d.AllocRx(n)
}

// DeliverPackets implements link.Dispatcher for the inner link: it records each frame and
// hands the batch (ownership included) to the attached dispatcher, or frees it.
func (l *Link) DeliverPackets(pkts []*pbuf.Pbuf) {
	l.record(pkts)
	l.dmu.RLock()
	d := l.upper
	l.dmu.RUnlock()
	if d == nil {
		for _, p := range pkts {
			p.Free()
		}
		return
	}
	d.DeliverPackets(pkts)
}

// Close closes the inner link; it is idempotent. The writer is left open.
func (l *Link) Close() error {
	var err error
	l.once.Do(func() { err = l.inner.Close() })
	return err
}

// record writes one record per frame (borrowed).
func (l *Link) record(pkts []*pbuf.Pbuf) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	for _, p := range pkts {
		t := l.clk.Now()
		frac := uint32(t.Nanosecond() / 1000)
		if l.nano {
			frac = uint32(t.Nanosecond())
		}
		n := min(p.TotLen(), l.snap)
		le := binary.LittleEndian
		le.PutUint32(l.buf[0:], uint32(t.Unix()))
		le.PutUint32(l.buf[4:], frac)
		le.PutUint32(l.buf[8:], uint32(n))
		le.PutUint32(l.buf[12:], uint32(p.TotLen()))
		p.CopyOut(l.buf[recordHeaderLen:recordHeaderLen+n], 0)
		if _, err := l.w.Write(l.buf[:recordHeaderLen+n]); err != nil {
			l.err = err
			return
		}
		l.records++
	}
}
