package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/stats"
	"github.com/wispstack/wisp/wire"
)

// rfc5961Echo is the bytes each round trip of TestAttackRFC5961 echoes.
const rfc5961Echo = 256 << 10

// segLog is every TCP segment the sniffer saw, both ways, in order, except those the test
// injected.
type segLog struct {
	mu   sync.Mutex
	segs []loggedSeg
}

type loggedSeg struct {
	sniffedTCP
	fromWisp bool
}

func (l *segLog) add(p []byte, fromWisp bool) {
	if s, ok := parseSniffedTCP(p); ok && (fromWisp || s.ttl != injectTTL) {
		l.mu.Lock()
		l.segs = append(l.segs, loggedSeg{s, fromWisp})
		l.mu.Unlock()
	}
}

func (l *segLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segs)
}

// seqEnd is the sequence number after s: its data, SYN and FIN.
func seqEnd(s sniffedTCP) uint32 {
	n := s.seq + uint32(s.dataLen)
	if s.flags&wire.TCPFlagSYN != 0 {
		n++
	}
	if s.flags&wire.TCPFlagFIN != 0 {
		n++
	}
	return n
}

// state returns, for the connection kern↔wisp, the sequence number after the highest
// byte each side sent: the kernel's is wisp's RCV.NXT, wisp's is its SND.NXT once all is
// acknowledged; and wisp's last ACK number.
func (l *segLog) state(kern, wisp netip.AddrPort) (kernNxt, wispNxt, wispAck uint32, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var seenK, seenW bool
	for _, s := range l.segs {
		switch {
		case !s.fromWisp && s.src == kern && s.dst == wisp:
			if e := seqEnd(s.sniffedTCP); !seenK || int32(e-kernNxt) > 0 {
				kernNxt = e
			}
			seenK = true
		case s.fromWisp && s.src == wisp && s.dst == kern:
			if e := seqEnd(s.sniffedTCP); !seenW || int32(e-wispNxt) > 0 {
				wispNxt = e
			}
			if s.flags&wire.TCPFlagACK != 0 {
				wispAck = s.ack
			}
			seenW = true
		}
	}
	return kernNxt, wispNxt, wispAck, seenK && seenW
}

// acksSince returns wisp's segments to kern after index from that carry no data.
func (l *segLog) acksSince(from int, kern netip.AddrPort) []sniffedTCP {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sniffedTCP
	for _, s := range l.segs[min(from, len(l.segs)):] {
		if s.fromWisp && s.dst == kern && s.dataLen == 0 && s.flags&wire.TCPFlagACK != 0 {
			out = append(out, s.sniffedTCP)
		}
	}
	return out
}

// echoRoundTrip writes n bytes of the pattern of seed at offset off and reads them back,
// byte-exact, within d.
func echoRoundTrip(conn *net.TCPConn, n int, seed uint64, off int64, d time.Duration) error {
	conn.SetDeadline(time.Now().Add(d))
	defer conn.SetDeadline(time.Time{})
	out := make([]byte, n)
	tcpapp.FillPattern(out, seed, off)
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(out)
		werr <- err
	}()
	in := make([]byte, n)
	_, rerr := io.ReadFull(conn, in)
	if err := errors.Join(<-werr, rerr); err != nil {
		return err
	}
	for i := range in {
		if in[i] != out[i] {
			return fmt.Errorf("echo differs at byte %d of %d", off+int64(i), off+int64(n))
		}
	}
	return nil
}

// An attacker who knows the 4-tuple of an established connection (a kernel client of a
// wisp echo server) injects RFC 5961's blind attacks: a RST in the window but not at
// RCV.NXT, a SYN, and data with an ACK beyond SND.NXT must each be answered with a
// challenge ACK and change nothing (the connection then echoes byte-exact); a RST exactly
// at RCV.NXT resets it, and the kernel's next segment gets wisp's RST.
func TestAttackRFC5961(t *testing.T) {
	e := newAttackEnv(t, 61, attackOptions())
	var log segLog
	newSniffer(t, e, nil, log.add)
	j := newInjector(t, e)
	j.window = 0
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			wisp := netip.AddrPortFrom(e.wisp[f.idx], 7)
			l, err := tcpapp.Echo(e.s, wisp)
			if err != nil {
				t.Fatal(err)
			}
			defer tcpapp.CloseListener(e.s, l)
			conn := e.ns.dial(t, f.net, wisp)
			la := conn.LocalAddr().(*net.TCPAddr).AddrPort()
			kern := netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
			var off int64
			roundTrip := func(what string) {
				t.Helper()
				if err := echoRoundTrip(conn, rfc5961Echo, 61, off, 10*time.Second); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				off += rfc5961Echo
			}
			// settle waits until nothing moves and wisp has acknowledged all it received,
			// and returns RCV.NXT and SND.NXT.
			settle := func() (rcvNxt, sndNxt uint32) {
				t.Helper()
				n := -1
				if _, ok := pollUntil(5*time.Second, func() bool {
					k, w, a, ok := log.state(kern, wisp)
					quiet := log.len() == n
					n = log.len()
					rcvNxt, sndNxt = k, w
					time.Sleep(100 * time.Millisecond)
					return ok && quiet && a == k
				}); !ok {
					t.Fatalf("the connection %v→%v did not settle (sniffed %d segments)", kern, wisp, log.len())
				}
				return rcvNxt, sndNxt
			}
			// attack injects seg and waits for counter to move and for a challenge ACK
			// <SEQ=SND.NXT><ACK=RCV.NXT>.
			attack := func(what string, seg tcpSeg, counter func(*stats.TCPExt) uint64) {
				t.Helper()
				rcvNxt, sndNxt := settle()
				before := e.s.Stats().TCPExt
				mark := log.len()
				if err := j.send([][]byte{seg.packet()}, time.Now().Add(2*time.Second)); err != nil {
					t.Fatal(err)
				}
				var after stats.TCPExt
				if _, ok := pollUntil(3*time.Second, func() bool {
					after = e.s.Stats().TCPExt
					return counter(&after) > counter(&before) && after.ChallengeACKs > before.ChallengeACKs
				}); !ok {
					t.Fatalf("%s: the drop counter went %d→%d and ChallengeACKs %d→%d",
						what, counter(&before), counter(&after), before.ChallengeACKs, after.ChallengeACKs)
				}
				var acks []sniffedTCP
				pollUntil(2*time.Second, func() bool {
					acks = log.acksSince(mark, kern)
					return len(acks) > 0
				})
				found := false
				for _, a := range acks {
					found = found || a.seq == sndNxt && a.ack == rcvNxt
				}
				if !found {
					t.Fatalf("%s: no challenge ACK <SEQ=%d><ACK=%d> on the wire; wisp's ACKs since: %+v", what, sndNxt, rcvNxt, acks)
				}
				if n := tcpConns(e.s); n != 1 {
					t.Fatalf("%s: wisp holds %d connections, want 1", what, n)
				}
				t.Logf("%s: challenged (ACK seq %d ack %d)", what, sndNxt, rcvNxt)
			}

			roundTrip("before the attacks")
			rcvNxt, sndNxt := settle()
			attack("RST in the window, not at RCV.NXT",
				tcpSeg{src: kern, dst: wisp, seq: rcvNxt + 1000, flags: wire.TCPFlagRST},
				func(x *stats.TCPExt) uint64 { return x.DropBadRST })
			attack("SYN in ESTABLISHED",
				tcpSeg{src: kern, dst: wisp, seq: rcvNxt + 77, flags: wire.TCPFlagSYN, wnd: 64240, opts: linuxSYNOptions(1)},
				func(x *stats.TCPExt) uint64 { return x.DropBadSYN })
			attack("data with an ACK beyond SND.NXT",
				tcpSeg{src: kern, dst: wisp, seq: rcvNxt, ack: sndNxt + 1<<28, flags: wire.TCPFlagACK | wire.TCPFlagPSH,
					wnd: 1000, data: []byte("injected bytes that must never be echoed")},
				func(x *stats.TCPExt) uint64 { return x.DropBadAck })
			roundTrip("after the blind attacks")

			rcvNxt, _ = settle()
			before := e.s.Stats().TCPExt
			rst := tcpSeg{src: kern, dst: wisp, seq: rcvNxt, flags: wire.TCPFlagRST}
			if err := j.send([][]byte{rst.packet()}, time.Now().Add(2*time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, ok := pollUntil(3*time.Second, func() bool {
				return e.s.Stats().TCPExt.ResetsRecv > before.ResetsRecv && tcpConns(e.s) == 0
			}); !ok {
				t.Fatalf("RST at RCV.NXT: ResetsRecv %d→%d, wisp holds %d connections",
					before.ResetsRecv, e.s.Stats().TCPExt.ResetsRecv, tcpConns(e.s))
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, werr := conn.Write([]byte("anyone there?"))
			var rerr error
			if werr == nil {
				_, rerr = conn.Read(make([]byte, 64))
			}
			if err := errors.Join(werr, rerr); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("RST at RCV.NXT: the kernel's next write/read got %v, want ECONNRESET", err)
			}
			t.Logf("RST at RCV.NXT %d: connection reset; the kernel's next segment got wisp's RST", rcvNxt)
		})
	}
}
