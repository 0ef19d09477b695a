package tcp_test

// Two real stacks (package stack) over an asynchronous pipe on the real clock: the engine as
// users run it, with one delivery goroutine per direction and the core locks contended.

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/tcp"
)

type stackPair struct {
	a, b *stack.Stack
}

func newStackPair(t testing.TB, mtu int, o opt.Options) *stackPair {
	t.Helper()
	ea, eb := pipe.New(pipe.Config{MTU: mtu, QueueLen: 1024})
	return newStackPairOn(t, o, ea, eb)
}

// newStackPairOn is newStackPair over the given link ends.
func newStackPairOn(t testing.TB, o opt.Options, ea, eb link.Endpoint) *stackPair {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	a, err := stack.New(stack.Config{Options: o, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := stack.New(stack.Config{Options: o, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, a)
	stacktest.Closed(t, b)
	if _, err := a.AddNetif(ea, stack.NetifConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddNetif(eb, stack.NetifConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	return &stackPair{a: a, b: b}
}

// transfer sends n bytes A → B with the raw API and returns the elapsed time; the receiver
// checks the sha256 of what arrives.
func (p *stackPair) transfer(t testing.TB, n int, verify bool) time.Duration {
	t.Helper()
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte(i*31 + i>>8)
	}
	want := sha256.New()
	for off := 0; off < n; off += len(block) {
		want.Write(block[:min(len(block), n-off)])
	}
	got := sha256.New()
	done := make(chan int, 1)
	rcvd := 0
	p.b.Callback(func() {
		c, _ := p.b.TCP().NewPCB()
		// The previous transfer's accepted PCB may still be in LAST-ACK on port 80; a
		// restarting server needs SO_REUSEADDR then, exactly as on Linux.
		c.SetReuseAddr(true)
		if err := c.Bind(netip.MustParseAddrPort("0.0.0.0:80")); err != nil {
			t.Error(err)
			return
		}
		l, err := c.Listen(0)
		if err != nil {
			t.Error(err)
			return
		}
		l.OnAccept(func(l *tcp.Listener, c *tcp.PCB) {
			c.OnRecv(func(c *tcp.PCB, q *pbuf.Pbuf) {
				if q == nil {
					c.Close()
					l.Close()
					done <- rcvd
					return
				}
				for r := q; r != nil && verify; r = r.Next() {
					got.Write(r.Payload())
				}
				rcvd += q.TotLen()
				c.Recved(q.TotLen())
				q.Free()
			})
		})
	})
	start := time.Now()
	sent := 0
	var fill func(c *tcp.PCB)
	fill = func(c *tcp.PCB) {
		for sent < n {
			off := sent % len(block)
			k := min(len(block)-off, n-sent, c.SndBuf())
			if k <= 0 || k < 16<<10 && sent+k < n && off+k < len(block) {
				break
			}
			if c.Write(block[off:off+k], tcp.WriteCopy) != nil {
				break
			}
			sent += k
		}
		if sent == n {
			sent++ // close once
			c.Close()
			return
		}
		c.Output()
	}
	failed := make(chan error, 1)
	p.a.Callback(func() {
		c, _ := p.a.TCP().NewPCB()
		c.OnErr(func(_ *tcp.PCB, err error) { failed <- err })
		c.OnSent(func(c *tcp.PCB, _ int) { fill(c) })
		if err := c.Connect(netip.MustParseAddrPort("198.18.0.2:80"), func(c *tcp.PCB) { fill(c) }); err != nil {
			t.Error(err)
		}
	})
	select {
	case r := <-done:
		if r != n || verify && string(got.Sum(nil)) != string(want.Sum(nil)) {
			t.Fatalf("received %d of %d bytes, sha256 match %v", r, n, string(got.Sum(nil)) == string(want.Sum(nil)))
		}
	case err := <-failed:
		t.Fatalf("sender's connection failed after %d bytes: %v", sent, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("transfer stalled: %d of %d received", rcvd, n)
	}
	return time.Since(start)
}

func TestStacksAsyncTransfer(t *testing.T) {
	for _, mtu := range []int{1500, 9000, 65535} {
		t.Run("mtu"+itoa(mtu), func(t *testing.T) {
			o := opt.Tunnel()
			o.TCPMSS = 65495
			p := newStackPair(t, mtu, o)
			p.transfer(t, 8<<20, true) // byte-exact
			n := 64 << 20
			if testing.Short() {
				n = 8 << 20
			}
			d := p.transfer(t, n, false) // throughput (hashing would dominate the CPU)
			t.Logf("MTU %d: %d MiB in %v: %.2f Gbit/s", mtu, n>>20, d.Round(time.Millisecond), float64(n)*8/d.Seconds()/1e9)
			sa, sb := p.a.Stats(), p.b.Stats()
			t.Logf("A: xmit %d rtx %d rto %d tlp %d recoveries %d; B: recv %d xmit %d ooo %d clamped %d; link A %+v",
				sa.TCP.Xmit, sa.TCPExt.Retransmits, sa.TCPExt.RTOs, sa.TCPExt.TLPs, sa.TCPExt.SACKRecoveries,
				sb.TCP.Recv, sb.TCP.Xmit, sb.TCPExt.OOOQueued, sb.TCPExt.RcvWndClamped, sa.Link)
			time.Sleep(50 * time.Millisecond) // let the FIN exchange finish before Close
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// congester is a pipe end whose full queue stands for congestion (link.TxCongester), as the
// WireGuard device's does.
type congester struct{ *pipe.End }

func (congester) TxFullIsCongestion() bool { return true }

// A link queue far shorter than the window: TCP waits for room instead of overflowing it
// (nothing dropped at the sender's link, nothing resent), and reduces its window without a
// loss only when the link says a full queue is congestion.
func TestLinkBackPressure(t *testing.T) {
	for _, congests := range []bool{false, true} {
		t.Run(fmt.Sprintf("congests=%v", congests), func(t *testing.T) {
			ea, eb := pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumIP, QueueLen: 16})
			var la link.Endpoint = ea
			if congests {
				la = congester{ea}
			}
			p := newStackPairOn(t, opt.Tunnel(), la, eb)
			p.transfer(t, 8<<20, true)
			sa := p.a.Stats()
			t.Logf("A: link %+v; LinkFull %d LinkCongestion %d retransmits %d", sa.Link, sa.TCPExt.LinkFull, sa.TCPExt.LinkCongestion, sa.TCPExt.Retransmits)
			if sa.TCPExt.LinkFull == 0 {
				t.Error("the 16-frame queue never stopped the sender")
			}
			// Only new data waits for room; a retransmission (a timer that fired on a
			// starved CPU, as under -race on a loaded machine) may still meet a full queue.
			if timers := sa.TCPExt.RTOs + sa.TCPExt.TLPs; timers == 0 && (sa.Link.Drop != 0 || sa.TCPExt.Retransmits != 0) {
				t.Errorf("sender's link dropped %d frames and TCP resent %d segments; want both 0", sa.Link.Drop, sa.TCPExt.Retransmits)
			}
			if got := sa.TCPExt.LinkCongestion > 0; got != congests {
				t.Errorf("window reductions for a full queue: %d, want them only on a TxCongester link", sa.TCPExt.LinkCongestion)
			}
			time.Sleep(50 * time.Millisecond) // let the FIN exchange finish before Close
		})
	}
}
