package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/endpoint"
)

// A churn connection: the client sends a header and a request, the server checks it and
// answers with a response, and both close in the order the mode says. The request is the
// pattern of seed, the response the pattern of seed^respSalt.
const (
	churnMagic  = 0x77734331 // "wsC1"
	churnHdrLen = 24         // magic, mode, 3 zero bytes, request length, response length, seed
	respSalt    = 0x5eed5eed5eed5eed
	maxRequest  = 256 << 10
	maxResponse = 1 << 20
)

// Closing orders.
const (
	serverCloses    = iota // server closes after the response; client reads EOF, closes
	clientCloses           // client closes after the response; server reads EOF, closes
	clientHalfClose        // client CloseWrite after the request; server reads EOF, answers, closes
	numModes
)

// churnWorker opens connection after connection until the stop.
func (s *soak) churnWorker(i int) {
	defer s.load.Done()
	r := s.rng(rngChurn, i)
	b := newBufs()
	for !s.stopped() {
		from, to := s.pair(r.IntN(2))
		fam := r.IntN(2)
		req, resp := sizeLog(r, maxRequest), sizeLog(r, maxResponse)
		mode := r.IntN(numModes)
		seed := r.Uint64()
		dst := netip.AddrPortFrom(to.addrs[fam], portChurn)
		if err := s.churnOnce(from, dst, mode, req, resp, seed, b); err != nil {
			s.fail(kindOf("churn", err), "%s→%s %v mode %d req %d resp %d: %v", from.name, to.name, dst, mode, req, resp, err)
			time.Sleep(100 * time.Millisecond) // a broken stack must not flood the report
			continue
		}
		s.ctr.churnConns.Add(1)
	}
}

// churnOnce is the client side of one connection.
func (s *soak) churnOnce(from *side, dst netip.AddrPort, mode int, req, resp int64, seed uint64, b *bufs) error {
	c, err := dial(from, dst)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			c.Abort()
		}
	}()
	var hdr [churnHdrLen]byte
	binary.BigEndian.PutUint32(hdr[0:], churnMagic)
	hdr[4] = byte(mode)
	binary.BigEndian.PutUint32(hdr[8:], uint32(req))
	binary.BigEndian.PutUint32(hdr[12:], uint32(resp))
	binary.BigEndian.PutUint64(hdr[16:], seed)
	if err := writeFull(c, hdr[:]); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	if _, err := writePattern(c, seed, 0, req, b); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	if mode == clientHalfClose {
		if err := c.CloseWrite(); err != nil {
			return fmt.Errorf("close write: %w", err)
		}
	}
	count := func(n int) { s.ctr.churnBytes.Add(uint64(n)) }
	if _, err := readPattern(c, seed^respSalt, 0, resp, b, count); err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if mode != clientCloses {
		if err := expectEOF(c, b); err != nil {
			return err
		}
	}
	closed = true
	if err := c.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// serveChurn is the server side of one churn connection.
func (s *soak) serveChurn(sd *side, c *endpoint.TCPConn) {
	defer s.handlers.Done()
	err := s.serveChurnErr(c)
	if err != nil && !peerReset(err) { // the client reports what made it reset
		s.fail(kindOf("churn server", err), "%s from %v: %v", sd.name, c.RemoteAddr(), err)
		c.Abort()
	}
}

func (s *soak) serveChurnErr(c *endpoint.TCPConn) error {
	b := newBufs()
	var hdr [churnHdrLen]byte
	if err := readFull(c, hdr[:]); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if binary.BigEndian.Uint32(hdr[0:]) != churnMagic || hdr[4] >= numModes {
		return fmt.Errorf("%w: bad header %x", errCorrupt, hdr)
	}
	mode := int(hdr[4])
	req := int64(binary.BigEndian.Uint32(hdr[8:]))
	resp := int64(binary.BigEndian.Uint32(hdr[12:]))
	seed := binary.BigEndian.Uint64(hdr[16:])
	count := func(n int) { s.ctr.churnBytes.Add(uint64(n)) }
	if _, err := readPattern(c, seed, 0, req, b, count); err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	if mode == clientHalfClose {
		if err := expectEOF(c, b); err != nil {
			return err
		}
	}
	if _, err := writePattern(c, seed^respSalt, 0, resp, b); err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	if mode == clientCloses {
		if err := expectEOF(c, b); err != nil {
			return err
		}
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
