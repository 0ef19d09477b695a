package packet

import (
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

// linkEP is the link as the stack sees it: a link.Endpoint carrying bare IP packets.
type linkEP Link

var (
	_ link.Endpoint    = (*linkEP)(nil)
	_ link.TxCongester = (*linkEP)(nil)
	_ link.Offloader   = (*linkEP)(nil)
)

// Offloads implements link.Offloader: with Config.Offload, the link completes checksums
// and cuts TCP segments of up to 64 KiB itself, on Read; without, nothing (the zero value:
// MTU-sized frames with complete checksums).
func (l *linkEP) Offloads() link.Offloads {
	if !l.offload {
		return link.Offloads{}
	}
	return link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: gsoMax}
}

// gsoMax is the largest GSO frame the link takes, IP header included.
const gsoMax = 0xffff

// TxFullIsCongestion implements link.TxCongester: the ring fills only when the host has
// stopped reading (wireguard-go, for one, once its own queues are full of 64 KiB buffers);
// TCP should back off, not just wait.
func (l *linkEP) TxFullIsCongestion() bool { return true }

// Medium implements link.Endpoint: bare IP packets.
func (l *linkEP) Medium() link.Medium { return link.MediumIP }

// MTU implements link.Endpoint.
func (l *linkEP) MTU() int { return l.mtu }

// HardwareAddr implements link.Endpoint: none.
func (l *linkEP) HardwareAddr() [6]byte { return [6]byte{} }

// Attach implements link.Endpoint. It never waits for a delivery in progress; one that
// raced with a detach reaches the old dispatcher, which drops it.
func (l *linkEP) Attach(disp link.Dispatcher) {
	if disp == nil {
		l.disp.Store(nil)
		return
	}
	l.disp.Store(&dispatcher{disp})
}

// WritePackets implements link.Endpoint: it takes ownership of every pbuf and queues them
// for Read, in order, until the ring is full (errs.WouldBlock) or closed (errs.Clsd); the
// rest are freed and counted. Frames longer than the MTU are refused (errs.Val), but for
// TCP GSO frames of up to 64 KiB when offloads are on.
func (l *linkEP) WritePackets(pkts []*pbuf.Pbuf) (int, error) {
	var err error
	n := 0
	l.mu.Lock()
	wasEmpty := l.ring.Len() == 0
	for i, p := range pkts {
		switch {
		case l.closed:
			err = errs.Clsd
		case l.ring.Full():
			err = errs.WouldBlock
		case p.TotLen() > l.mtu && !l.takesGSO(p):
			err = errs.Val
		}
		if err != nil {
			l.mu.Unlock()
			for _, q := range pkts[i:] {
				q.Free()
			}
			l.txDropped.Add(uint64(len(pkts) - i))
			l.signal(wasEmpty && n > 0)
			return n, err
		}
		l.ring.Push(p) // cannot fail: not full
		l.queued += wireSegs(p)
		n++
	}
	l.mu.Unlock()
	l.signal(wasEmpty && n > 0)
	return n, nil
}

// takesGSO reports whether p is a large segment the link cuts on Read.
func (l *linkEP) takesGSO(p *pbuf.Pbuf) bool {
	typ, _ := p.GSO()
	return l.offload && (typ == pbuf.GSOTCPv4 || typ == pbuf.GSOTCPv6) && p.TotLen() <= gsoMax
}

// signal wakes a waiting Read (never blocks: the channel holds one wake-up).
func (l *linkEP) signal(do bool) {
	if !do {
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// TxRoom implements link.TxRoomer: the packets the ring has room for, QueueLen less those
// its frames will be cut into. A large segment is one frame but fills the room of the
// packets it makes: the ring holds as many bytes as without offloads, so that it still fills,
// and tells TCP of congestion, once the host stops keeping up. WritePackets still takes
// frames while the ring has slots (a large segment sent into the last room is not dropped).
func (l *linkEP) TxRoom() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0
	}
	return max(min(l.ring.Cap()-l.ring.Len(), l.ring.Cap()-l.queued), 0)
}

// wireSegs is the number of packets frame p becomes on Read (for a malformed large
// segment, which Read drops, a number all the same).
func wireSegs(p *pbuf.Pbuf) int {
	typ, size := p.GSO()
	if typ == pbuf.GSONone {
		return 1
	}
	ip := wire.IPv6HeaderLen
	if typ != pbuf.GSOTCPv6 {
		b, _ := p.ByteAt(0)
		ip = int(b&0x0f) * 4
	}
	b, _ := p.ByteAt(ip + 12) // the TCP data offset
	return max((p.TotLen()-ip-int(b>>4)*4+size-1)/size, 1)
}

// Close implements link.Endpoint (the stack calls it when it closes): Link.Close.
func (l *linkEP) Close() error { return (*Link)(l).Close() }
