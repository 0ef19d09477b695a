package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
)

// A UDP request is a header and the pattern of seed; the echo server sends it back as it
// came. Both ends check it.
const (
	udpMagic  = 0x77735531 // "wsU1"
	udpHdrLen = 20         // magic, seq, seed, length
	udpMaxLen = 8000       // one datagram in ten is 1400-8000 bytes: IP fragments
	// udpWait is how long a client waits for its reply before counting it lost: far above
	// the round trip, so only real losses (and severe stalls) count.
	udpWait = time.Second
)

// udpWorker sends a request, waits for its echo, and again, until the stop.
func (s *soak) udpWorker(i int) {
	defer s.load.Done()
	r := s.rng(rngUDP, i)
	from, to := s.pair(i)
	fam := i / 2 % 2
	dst := netip.AddrPortFrom(to.addrs[fam], portEcho)
	c, err := from.n.DialUDPAddrPort(netip.AddrPort{}, dst)
	if err != nil {
		s.fail("udp error", "%s→%s %v: dial: %v", from.name, to.name, dst, err)
		return
	}
	defer c.Close()
	out, in, want := make([]byte, udpMaxLen), make([]byte, 64<<10), make([]byte, 64<<10)
	q := s.cfg.Loss + impairDir(s.cfg, 0).Corrupt // per frame and direction
	var seq uint32
	for !s.stopped() {
		seq++
		size := udpHdrLen + r.IntN(1400-udpHdrLen)
		if r.IntN(10) == 0 {
			size = 1400 + r.IntN(udpMaxLen-1400)
		}
		seed := r.Uint64()
		binary.BigEndian.PutUint32(out[0:], udpMagic)
		binary.BigEndian.PutUint32(out[4:], seq)
		binary.BigEndian.PutUint64(out[8:], seed)
		binary.BigEndian.PutUint32(out[16:], uint32(size))
		tcpapp.FillPattern(out[udpHdrLen:size], seed, 0)
		c.SetWriteDeadline(time.Now().Add(opTimeout))
		if _, err := c.Write(out[:size]); err != nil {
			if errors.Is(err, syscall.ENOMEM) {
				// The link queue (or memory) is full: UDP says so instead of losing it.
				s.ctr.udpRefused.Add(1)
				time.Sleep(2 * time.Millisecond)
				continue
			}
			s.fail("udp error", "%s→%s %v: write: %v", from.name, to.name, dst, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.ctr.udpSent.Add(1)
		frames := float64(udpFrames(size, fam == 1))
		s.udpExpect.Add(uint64(1e6 * (1 - math.Pow(1-q, 2*frames))))
		deadline := time.Now().Add(udpWait)
		for {
			c.SetReadDeadline(deadline)
			n, err := c.Read(in)
			if err != nil {
				if !isTimeout(err) {
					s.fail("udp error", "%s→%s %v: read: %v", from.name, to.name, dst, err)
				}
				break
			}
			got, err := checkDatagram(in[:n], want)
			if err != nil {
				s.fail("corrupt", "%s→%s %v: reply: %v", from.name, to.name, dst, err)
				break
			}
			if got == seq {
				s.ctr.udpRecv.Add(1)
				break
			}
			s.ctr.udpLate.Add(1)
		}
	}
}

// udpFrames is the number of IP packets a datagram of size bytes takes on a 1500-byte link.
func udpFrames(size int, v6 bool) int {
	n := size + 8
	hdr, per := 20, 1480
	if v6 {
		hdr, per = 40, 1448 // fragments carry a fragment header, in multiples of 8
	}
	if n+hdr <= 1500 {
		return 1
	}
	return (n + per - 1) / per
}

// checkDatagram checks a request or reply and returns its sequence number.
func checkDatagram(b, want []byte) (uint32, error) {
	if len(b) < udpHdrLen || binary.BigEndian.Uint32(b[0:]) != udpMagic {
		return 0, fmt.Errorf("%w: bad header in a %d-byte datagram", errCorrupt, len(b))
	}
	if n := int(binary.BigEndian.Uint32(b[16:])); n != len(b) {
		return 0, fmt.Errorf("%w: datagram of %d bytes says %d", errCorrupt, len(b), n)
	}
	w := want[:len(b)-udpHdrLen]
	tcpapp.FillPattern(w, binary.BigEndian.Uint64(b[8:]), 0)
	if !bytes.Equal(b[udpHdrLen:], w) {
		return 0, fmt.Errorf("%w: payload of a %d-byte datagram differs", errCorrupt, len(b))
	}
	return binary.BigEndian.Uint32(b[4:]), nil
}

// echoServer sends every request back to its sender until its socket closes.
func (s *soak) echoServer(sd *side) {
	defer s.servers.Done()
	buf, want := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		n, from, err := sd.echo.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.fail("udp error", "%s echo: read: %v", sd.name, err)
			}
			return
		}
		if _, err := checkDatagram(buf[:n], want); err != nil {
			s.fail("corrupt", "%s echo: request from %v: %v", sd.name, from, err)
			continue
		}
		if _, err := sd.echo.WriteToUDPAddrPort(buf[:n], from); err != nil {
			if errors.Is(err, syscall.ENOMEM) {
				s.ctr.udpEchoRefused.Add(1)
				continue
			}
			s.fail("udp error", "%s echo: write to %v: %v", sd.name, from, err)
		}
	}
}

// udpExpectedLoss is how many exchanges the impairment alone should have lost.
func (s *soak) udpExpectedLoss() float64 { return float64(s.udpExpect.Load()) / 1e6 }

// checkUDPLoss fails the run when UDP lost clearly more than the impairment explains:
// twice the expectation plus 1% of what was sent (stalls of a second count as losses),
// not counting replies the echo server's stack refused for lack of room.
func (s *soak) checkUDPLoss() {
	sent := s.ctr.udpSent.Load()
	got := s.ctr.udpRecv.Load() + s.ctr.udpLate.Load() + s.ctr.udpEchoRefused.Load()
	if sent == 0 || got >= sent {
		return
	}
	lost := float64(sent - got)
	bound := 2*s.udpExpectedLoss() + 0.01*float64(sent) + 10
	if lost > bound {
		s.fail("udp loss", "%0.f of %d exchanges lost, the impairment explains ~%.0f (bound %.0f)",
			lost, sent, s.udpExpectedLoss(), bound)
	}
}
