package tcp

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
)

func TestPoolDecls(t *testing.T) {
	for _, o := range []opt.Options{opt.Embedded(), opt.Tunnel(), testOpts()} {
		n := newNode(t, clock.NewFake(time.Unix(0, 0)), o, 7)
		decls := PoolDecls(o)
		for _, d := range decls {
			p := n.Pools.Lookup(d.ID)
			if p == nil {
				t.Fatalf("%v declared but not registered", d.ID)
			}
			st := p.Stats()
			if st.Avail != d.Count || st.Size != d.Size {
				t.Errorf("%v: declared %d×%d, registered %d×%d", d.ID, d.Count, d.Size, st.Avail, st.Size)
			}
		}
		for _, id := range []memp.ID{memp.TCPPCB, memp.TCPPCBListen, memp.TCPSeg} {
			found := false
			for _, d := range decls {
				found = found || d.ID == id
			}
			if !found {
				t.Errorf("%v registered but not declared", id)
			}
		}
		n.Do(func() {
			if c, l := n.tcp.NumPCBs(); c != 0 || l != 0 {
				t.Errorf("NumPCBs = %d, %d", c, l)
			}
		})
		n.Close()
	}
}

// app is a test application on one node: it records what it receives and what happens.
type app struct {
	n        *node
	c        *PCB
	got      bytes.Buffer
	h        [32]byte
	hash     hasher
	fin      bool
	err      error
	sent     int
	accepted []*PCB
	consume  bool // Recved at once
	keep     bool // keep bytes (else only hash)
	rcvd     int
	hold     bool // keep the pbufs (a stalled reader) instead of freeing them
	held     []*pbuf.Pbuf
}

type hasher struct {
	d interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
}

func newApp(n *node) *app {
	a := &app{n: n, consume: true, keep: true}
	a.hash.d = sha256.New()
	return a
}

func (a *app) attach(c *PCB) {
	a.c = c
	c.OnRecv(func(c *PCB, p *pbuf.Pbuf) {
		if p == nil {
			a.fin = true
			return
		}
		for q := p; q != nil; q = q.Next() {
			if a.keep {
				a.got.Write(q.Payload())
			}
			a.hash.d.Write(q.Payload())
		}
		n := p.TotLen()
		a.rcvd += n
		if a.hold {
			a.held = append(a.held, p)
		} else {
			p.Free()
		}
		if a.consume {
			c.Recved(n)
		}
	})
	c.OnSent(func(c *PCB, n int) { a.sent += n })
	c.OnErr(func(c *PCB, err error) { a.err = err; a.c = nil })
}

func (a *app) sum() []byte { return a.hash.d.Sum(nil) }

// listen starts a listener on n at port whose accepted connections are attached to a.
func listen(t testing.TB, n *node, port uint16, a *app) *Listener {
	t.Helper()
	return listenFunc(t, n, port, 0, func(l *Listener, c *PCB) {
		a.accepted = append(a.accepted, c)
		a.attach(c)
	})
}

// listenFunc listens on n's port (every address) with backlog (0: the default) and hands
// the connections to fn.
func listenFunc(t testing.TB, n *node, port uint16, backlog int, fn AcceptFunc) *Listener {
	t.Helper()
	var l *Listener
	n.Do(func() {
		c, err := n.tcp.NewPCB()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Bind(netip.AddrPortFrom(netip.Addr{}, port)); err != nil {
			t.Fatal(err)
		}
		l, err = c.Listen(backlog)
		if err != nil {
			t.Fatal(err)
		}
		l.OnAccept(fn)
	})
	return l
}

// sinkRecv is a RecvFunc that adds the bytes it gets to *n, frees them and reopens the
// window.
func sinkRecv(n *int) RecvFunc {
	return func(c *PCB, p *pbuf.Pbuf) {
		if p == nil {
			return
		}
		k := p.TotLen()
		*n += k
		p.Free()
		c.Recved(k)
	}
}

// dial connects from n to raddr and attaches a; connected reports success.
func dial(t testing.TB, n *node, raddr netip.AddrPort, a *app) (connected *bool) {
	t.Helper()
	ok := new(bool)
	n.Do(func() {
		c, err := n.tcp.NewPCB()
		if err != nil {
			t.Fatal(err)
		}
		a.attach(c)
		if err := c.Connect(raddr, func(c *PCB) { *ok = true }); err != nil {
			t.Fatal(err)
		}
	})
	return ok
}

// sender streams a deterministic pseudo-random byte sequence through a PCB, refilling from
// the sent callback.
type sender struct {
	a     *app
	total int
	off   int
	rng   *rand.ChaCha8
	buf   []byte
	h     hasher
	close bool // Close when done
	flags WriteFlags
}

func newSender(a *app, total int, seed uint64) *sender {
	s := &sender{a: a, total: total, buf: make([]byte, 64<<10), flags: WriteCopy}
	var k [32]byte
	k[0] = byte(seed)
	k[1] = byte(seed >> 8)
	s.rng = rand.NewChaCha8(k)
	s.h.d = sha256.New()
	return s
}

// pump writes as much as fits (core context).
func (s *sender) pump() {
	c := s.a.c
	if c == nil {
		return
	}
	for s.off < s.total {
		n := min(len(s.buf), s.total-s.off, c.SndBuf())
		if n <= 0 {
			break
		}
		b := s.buf[:n]
		s.rng.Read(b)
		if err := c.Write(b, s.flags); err != nil {
			// Roll back is impossible with a stream generator: regenerate would differ.
			// Tests size SndBuf so this does not happen; fail loudly.
			panic("write failed: " + err.Error())
		}
		s.h.d.Write(b)
		s.off += n
	}
	if s.off == s.total && s.close {
		s.close = false
		c.Close()
		s.a.c = nil
		return
	}
	c.Output()
}

func (s *sender) start() {
	c := s.a.c
	prev := c.sentFn
	c.OnSent(func(c *PCB, n int) {
		if prev != nil {
			prev(c, n)
		}
		s.pump()
	})
	s.pump()
}

func TestHandshakeTransferClose(t *testing.T) {
	for _, fam := range []string{"v4", "v6"} {
		t.Run(fam, func(t *testing.T) {
			w := newWorld(t, worldCfg{})
			srv := newApp(w.b)
			l := listen(t, w.b, 80, srv)
			dst := netip.AddrPortFrom(addrB, 80)
			if fam == "v6" {
				dst = netip.AddrPortFrom(addrB6, 80)
			}
			cli := newApp(w.a)
			connected := dial(t, w.a, dst, cli)
			w.Run(time.Millisecond)
			if !*connected {
				t.Fatalf("not connected: client state %v", w.a.state(cli.c))
			}
			if len(srv.accepted) != 1 {
				t.Fatalf("accepted %d", len(srv.accepted))
			}
			const size = 3<<20 + 12345
			s := newSender(cli, size, 1)
			s.close = true
			w.a.Do(s.start)
			if !w.Until(10*time.Second, func() bool { return srv.fin }) {
				t.Fatalf("no FIN: got %d of %d bytes", srv.rcvd, size)
			}
			if srv.rcvd != size || !bytes.Equal(srv.sum(), s.h.d.Sum(nil)) {
				t.Fatalf("got %d bytes, want %d; sha mismatch=%v", srv.rcvd, size, !bytes.Equal(srv.sum(), s.h.d.Sum(nil)))
			}
			sc := srv.accepted[0]
			if st := w.b.state(sc); st != StateCloseWait {
				t.Errorf("server state %v, want CLOSE-WAIT", st)
			}
			w.b.Do(func() { sc.Close(); l.Close() })
			w.Run(10 * time.Millisecond)
			if ca := w.a.conns(); ca != 1 {
				t.Errorf("client PCBs %d, want 1 (TIME-WAIT)", ca)
			}
			if cb := w.b.conns(); cb != 0 {
				t.Errorf("server PCBs %d, want 0", cb)
			}
			w.Run(2*w.a.Opts.TCPMSL + time.Second)
			if ca := w.a.conns(); ca != 0 {
				t.Errorf("client PCBs after 2MSL: %d", ca)
			}
			st := w.a.stats()
			if st.TCPExt.Retransmits != 0 {
				t.Errorf("retransmits on a clean link: %d", st.TCPExt.Retransmits)
			}
			t.Logf("a: %+v", st.TCP)
			t.Logf("a: %+v", st.TCPExt)
		})
	}
}

var _ = errs.Mem
