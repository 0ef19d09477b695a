package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/tcpapp"
)

// A stream: the dialer writes a header and then the pattern of seed until the stop, then
// CloseWrite; the acceptor reads and checks everything (stalling as its kind says), and at
// EOF answers with the byte count it received, which must equal what the dialer wrote.
const (
	streamMagic  = 0x77735331 // "wsS1"
	streamHdrLen = 16         // magic, kind, 3 zero bytes, seed
)

// Stream kinds.
const (
	bulkStream  = iota // never stalls
	stallAWhile        // reads 2-6 s, stalls 5-15 s, again and again
	stallDrain         // reads 1-3 s, then stalls until the stop; then drains and checks
	stallAbort         // reads 1-3 s, then stalls until the stop; then closes with data unread (RST)
	numKinds
)

var kindNames = [numKinds]string{"bulk", "stall-a-while", "stall-then-drain", "stall-then-reset"}

// stallKind is the kind of the i-th stalled stream: most come back, some never do until
// the end (half of those drain, half reset).
func stallKind(i int) int {
	return [...]int{stallAWhile, stallDrain, stallAbort, stallAWhile}[i%4]
}

// streamWriter is the dialing side of stream i: one connection for the whole run, or a new
// one after each failure (so that the progress check keeps measuring it).
func (s *soak) streamWriter(i, kind int) {
	defer s.load.Done()
	r := s.rng(rngStream, i)
	from, to := s.pair(i)
	for !s.stopped() {
		dst := netip.AddrPortFrom(to.addrs[r.IntN(2)], portStream)
		what := fmt.Sprintf("%s stream %d %s→%s %v", kindNames[kind], i, from.name, to.name, dst)
		err := s.streamWrite(from, dst, kind, r.Uint64(), r)
		if kind == stallAbort && s.stopped() && resetByPeer(err) {
			err = nil // the reader saw the stop first and closed with data unread: a reset
		}
		if err == nil {
			if s.cfg.Verbose {
				s.logf("%7s %s ended\n", s.since(), what)
			}
			return
		}
		s.fail(kindOf("stream", err), "%s: %v", what, err)
		select {
		case <-time.After(time.Second):
		case <-s.stop:
		}
	}
}

func (s *soak) streamWrite(from *side, dst netip.AddrPort, kind int, seed uint64, r *rand.Rand) error {
	c, err := dial(from, dst)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	var hdr [streamHdrLen]byte
	binary.BigEndian.PutUint32(hdr[0:], streamMagic)
	hdr[4] = byte(kind)
	binary.BigEndian.PutUint64(hdr[8:], seed)
	if err := writeFull(c, hdr[:]); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	b := newBufs()
	// A writer to a stalled reader waits a second at a time, so it sees the stop; a bulk
	// writer that waits opTimeout is stuck.
	wait := opTimeout
	if kind != bulkStream {
		wait = time.Second
	}
	var sent int64
	for !s.stopped() {
		k := 1 + r.IntN(len(b.data))
		// Write from the byte where the last one stopped: timed-out writes are partial.
		tcpapp.FillPattern(b.data[:k], seed, sent)
		c.SetWriteDeadline(time.Now().Add(wait))
		n, err := c.Write(b.data[:k])
		sent += int64(n)
		if err != nil && !(isTimeout(err) && kind != bulkStream) {
			return fmt.Errorf("write after %d bytes: %w", sent, err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("close write after %d bytes: %w", sent, err)
	}
	// The reader drains (what a stalled reader held may take a while, and a lost window
	// update a probe interval) and reports.
	var tr [8]byte
	c.SetReadDeadline(time.Now().Add(2*opTimeout + persistMax))
	_, err = io.ReadFull(c, tr[:])
	if kind == stallAbort {
		if err == nil {
			return fmt.Errorf("the reader closed with data unread, yet reported %d bytes", binary.BigEndian.Uint64(tr[:]))
		}
		if isTimeout(err) {
			return fmt.Errorf("no reset from the reader that closed with data unread: %w", err)
		}
		return nil // reset (or EOF): what closing with unread data does
	}
	if err != nil {
		return fmt.Errorf("read the reader's count after writing %d bytes: %w", sent, err)
	}
	if got := int64(binary.BigEndian.Uint64(tr[:])); got != sent {
		return fmt.Errorf("wrote %d bytes, the reader got %d", sent, got)
	}
	s.ctr.streamsDone.Add(1)
	return expectEOF(c, b)
}

// streamReader is the accepting side of one stream: it reads, checks and stalls.
func (s *soak) streamReader(sd *side, c *endpoint.TCPConn) {
	defer s.handlers.Done()
	kind, err := s.streamRead(c)
	if err != nil && !peerReset(err) { // the writer reports what made it reset
		s.fail(kindOf("stream reader", err), "%s %s from %v: %v", sd.name, kindNames[kind], c.RemoteAddr(), err)
		c.Abort()
	}
}

func (s *soak) streamRead(c *endpoint.TCPConn) (int, error) {
	var hdr [streamHdrLen]byte
	if err := readFull(c, hdr[:]); err != nil {
		return 0, fmt.Errorf("read header: %w", err)
	}
	kind := int(hdr[4])
	if binary.BigEndian.Uint32(hdr[0:]) != streamMagic || kind >= numKinds {
		return 0, fmt.Errorf("%w: bad stream header %x", errCorrupt, hdr)
	}
	seed := binary.BigEndian.Uint64(hdr[8:])
	r := rand.New(rand.NewPCG(seed, 0x57a11)) // the reader's stalls
	count := &s.ctr.bulkBytes
	if kind != bulkStream {
		count = &s.ctr.stalledBytes
	}
	b := newBufs()
	var got int64
	readFor := func(lo, hi int) time.Time {
		return time.Now().Add(time.Duration(lo)*time.Second + time.Duration(r.Int64N(int64(hi-lo)*int64(time.Second))))
	}
	var stallAt time.Time
	switch kind {
	case stallAWhile:
		stallAt = readFor(2, 6)
	case stallDrain, stallAbort:
		stallAt = readFor(1, 3)
	}
	readWait := opTimeout
	for {
		if !stallAt.IsZero() && time.Now().After(stallAt) && !s.stopped() {
			var until <-chan time.Time // nil: until the stop
			if kind == stallAWhile {
				until = time.After(5*time.Second + time.Duration(r.Int64N(int64(10*time.Second))))
			}
			s.ctr.stalls.Add(1)
			s.ctr.stalledNow.Add(1)
			select {
			case <-until:
			case <-s.stop:
			}
			s.ctr.stalledNow.Add(-1)
			if kind == stallAbort {
				// Close with unread data: a reset, and the PCB and its pbufs must go.
				c.Close()
				return kind, nil
			}
			stallAt = time.Time{}
			if kind == stallAWhile {
				stallAt = readFor(2, 6)
			}
			// After a stall the writer probes a zero window with backed-off probes
			// (up to TCPMaxRTO apart, as Linux's up to TCP_RTO_MAX). When the window
			// update that reopens it is lost, the next probe is what restarts the
			// stream: legitimate, and up to a probe interval late.
			readWait = opTimeout + persistMax
		}
		c.SetReadDeadline(time.Now().Add(readWait))
		n, err := c.Read(b.data)
		if n > 0 {
			if cerr := check(b.data[:n], seed, got, b); cerr != nil {
				return kind, cerr
			}
			got += int64(n)
			count.Add(uint64(n))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return kind, fmt.Errorf("read after %d bytes: %w", got, err)
		}
	}
	var tr [8]byte
	binary.BigEndian.PutUint64(tr[:], uint64(got))
	if err := writeFull(c, tr[:]); err != nil {
		return kind, fmt.Errorf("write the count: %w", err)
	}
	if err := c.Close(); err != nil && !errors.Is(err, io.EOF) {
		return kind, fmt.Errorf("close: %w", err)
	}
	return kind, nil
}
