package stack

import (
	"bytes"
	"context"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/ip"
)

// pinger sends the stack's own echo requests and matches replies (core context).
type pinger struct {
	s       *Stack
	id      uint16
	seq     uint16
	waiting map[uint16]*pingWait
}

type pingWait struct {
	dst        netip.Addr
	data       []byte
	start, end time.Time // on the stack's clock; end is taken when the reply is processed
	done       chan struct{}
}

func (p *pinger) init(s *Stack, seed uint64) {
	p.s = s
	p.id = uint16(seed>>17) | 1
	p.waiting = make(map[uint16]*pingWait)
	s.ip.SetEchoHandler(p.reply)
}

// reply runs in core context for every echo reply.
func (p *pinger) reply(h *ip.Header, id, seq uint16, data []byte) {
	if id != p.id {
		return
	}
	w := p.waiting[seq]
	if w == nil || w.dst != h.Src || !bytes.Equal(w.data, data) {
		return
	}
	delete(p.waiting, seq)
	w.end = p.s.timers.Now()
	close(w.done)
}

func (p *pinger) closeLocked() {
	for seq, w := range p.waiting {
		delete(p.waiting, seq)
		close(w.done)
	}
}

// Ping sends one ICMP echo request with size bytes of data to dst (IPv4 or IPv6) and waits
// for the matching reply or for ctx. It returns the round-trip time measured on the stack's
// clock. A reply whose data differs from what was sent does not count.
func (s *Stack) Ping(ctx context.Context, dst netip.Addr, size int) (time.Duration, error) {
	if size < 0 || size > 65507 {
		return 0, errs.Val
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	s.core.Lock()
	if s.closed {
		s.core.Unlock()
		return 0, errs.Clsd
	}
	p := &s.ping
	p.seq++
	seq := p.seq
	w := &pingWait{dst: dst.Unmap(), data: data, done: make(chan struct{})}
	p.waiting[seq] = w
	w.start = s.timers.Now()
	err := s.ip.SendEcho(netip.Addr{}, dst.Unmap(), p.id, seq, data, ip.OutputOptions{})
	if err != nil {
		delete(p.waiting, seq)
		s.core.Unlock()
		return 0, err
	}
	s.core.Unlock()
	select {
	case <-w.done:
		s.core.Lock()
		defer s.core.Unlock()
		if w.end.IsZero() { // woken by Close
			return 0, errs.Clsd
		}
		return w.end.Sub(w.start), nil
	case <-ctx.Done():
		s.core.Lock()
		delete(p.waiting, seq)
		s.core.Unlock()
		return 0, ctx.Err()
	}
}
