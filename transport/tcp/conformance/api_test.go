package conformance

// The raw API's documented semantics (pcbapi.go, listen.go, types.go) as seen on the wire:
// Write limits, SentFunc, PollFunc, callbacks that close or abort their PCB, BacklogDelayed,
// Proto.Close.

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp"
	"github.com/wispstack/wisp/wire"
)

// SentFunc reports acknowledged bytes; SndBuf shrinks by what Write queued and grows back as
// it is acknowledged; a Write beyond SndBuf fails whole with errs.Mem.
func TestWriteSndBufAndSent(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.pcb.SetNoDelay(true)
		total := c.pcb.SndBuf()
		if total != e.o.TCPSndBuf {
			t.Errorf("SndBuf %d on a fresh connection, want TCPSndBuf %d", total, e.o.TCPSndBuf)
		}
		c.write(pattern(3000, 1))
		if got := c.pcb.SndBuf(); got != total-3000 {
			t.Errorf("SndBuf %d after writing 3000, want %d", got, total-3000)
		}
		segs := e.drain()
		c.ackTo(segs[0].end())
		if c.rec.sent != len(segs[0].data) {
			t.Errorf("SentFunc reported %d bytes, want %d", c.rec.sent, len(segs[0].data))
		}
		c.ackTo(c.iss + 1 + 3000)
		if c.rec.sent != 3000 {
			t.Errorf("SentFunc reported %d bytes in all, want 3000", c.rec.sent)
		}
		if got := c.pcb.SndBuf(); got != total {
			t.Errorf("SndBuf %d with everything acknowledged, want %d", got, total)
		}
		c.stackNxt = c.iss + 1 + 3000
		// All or nothing.
		if err := c.pcb.Write(make([]byte, total+1), tcp.WriteCopy); !errors.Is(err, errs.Mem) {
			t.Errorf("Write of SndBuf+1 bytes: %v, want errs.Mem", err)
		}
		if got := c.pcb.SndBuf(); got != total {
			t.Errorf("a failed Write queued data: SndBuf %d", got)
		}
		e.expectNothing("after a failed Write")
	})
}

// Zero-copy Write references the caller's memory until SentFunc; the bytes on the wire are
// the caller's.
func TestWriteZeroCopy(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.pcb.SetNoDelay(true)
	d := pattern(2000, 3)
	if err := c.pcb.Write(d, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.pcb.Output(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, s := range e.drain() {
		got = append(got, s.data...)
	}
	if !bytes.Equal(got, d) {
		t.Fatalf("zero-copy write sent %d bytes, not the caller's", len(got))
	}
	c.ackTo(c.iss + 1 + 2000)
	if c.rec.sent != 2000 {
		t.Errorf("SentFunc %d", c.rec.sent)
	}
}

// WritePbuf takes ownership of the chain whatever the result.
func TestWritePbuf(t *testing.T) {
	e := newEnv(t, v6)
	c := e.established(false, plain())
	c.pcb.SetNoDelay(true)
	p, err := e.Alloc.Alloc(pbuf.LayerTransport, 1000, pbuf.RAM)
	if err != nil {
		t.Fatal(err)
	}
	d := pattern(1000, 4)
	_ = p.CopyIn(d, 0)
	if err := c.pcb.WritePbuf(p, 0); err != nil {
		t.Fatal(err)
	}
	c.pcb.Output()
	s := c.expectData("WritePbuf data", 1000)
	if !bytes.Equal(s.data, d) {
		t.Error("WritePbuf data corrupt")
	}
	// A chain too big for the send buffer is refused and still freed (pools are checked at
	// the end of the test).
	big, err := e.Alloc.Alloc(pbuf.LayerTransport, c.pcb.SndBuf()+1, pbuf.RAM)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.pcb.WritePbuf(big, 0); !errors.Is(err, errs.Mem) {
		t.Errorf("WritePbuf beyond SndBuf: %v, want errs.Mem", err)
	}
	c.ack()
}

// WriteMore holds a small tail (no PSH, Nagle may wait); without it the last segment of a
// write carries PSH (RFC 9293 §3.9.1).
func TestWriteMoreAndPSH(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.write([]byte("hello"))
	s := c.expectData("write", 5)
	if !s.Flags.Has(wire.TCPFlagPSH) {
		t.Errorf("last segment of a write without PSH: %v", s)
	}
	c.ack()
	if err := c.pcb.Write(pattern(3000, 5), tcp.WriteCopy|tcp.WriteMore); err != nil {
		t.Fatal(err)
	}
	c.pcb.Output()
	for _, s := range e.drain() {
		if s.Flags.Has(wire.TCPFlagPSH) {
			t.Errorf("PSH with WriteMore: %v", s)
		}
	}
}

// PollFunc runs every interval while the connection exists, and stops after Close.
func TestPollCallback(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	polls := 0
	c.pcb.OnPoll(func(*tcp.PCB) { polls++ }, 500*time.Millisecond)
	e.advance(2*time.Second + 10*time.Millisecond)
	if polls < 3 || polls > 5 {
		t.Errorf("%d polls in 2 s at 500 ms, want about 4", polls)
	}
	c.pcb.Close()
	e.drain()
	n := polls
	e.advance(5 * time.Second)
	if polls != n {
		t.Errorf("PollFunc ran %d times after Close", polls-n)
	}
}

// A RecvFunc may Abort its PCB; the stack stops touching it (the RST goes out, nothing else,
// no pool leaks).
func TestAbortInsideRecvFunc(t *testing.T) {
	forBoth(t, plain, func(t *testing.T, e *env, c *conn) {
		c.rec.recvHook = func(p *tcp.PCB, n int) { p.Abort() }
		c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("bye"))
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) {
			t.Fatalf("Abort in RecvFunc: got %v, want RST", s)
		}
		e.expectNothing("after Abort in RecvFunc")
		if !errors.Is(c.rec.err(), errs.Abrt) {
			t.Errorf("ErrFunc %v, want errs.Abrt", c.rec.errs)
		}
		if e.conns() != 0 {
			t.Errorf("%d connections", e.conns())
		}
	})
}

// A RecvFunc may Close its PCB; a FIN follows.
func TestCloseInsideRecvFunc(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.rec.recvHook = func(p *tcp.PCB, n int) { p.Close() }
	c.send(wire.TCPFlagACK|wire.TCPFlagPSH, []byte("bye"))
	s := e.next()
	if !s.Flags.Has(wire.TCPFlagFIN) || s.AckNum != c.peerNxt {
		t.Fatalf("Close in RecvFunc: got %v, want FIN acking %d", s, c.peerNxt)
	}
}

// A SentFunc may write more; an AcceptFunc may abort the new connection; a ConnectedFunc may
// write at once.
func TestCallbacksCallingAPI(t *testing.T) {
	t.Run("sent-writes", func(t *testing.T) {
		e := newEnv(t, v4)
		c := e.established(true, plain())
		c.pcb.SetNoDelay(true)
		more := 3
		c.pcb.OnSent(func(p *tcp.PCB, n int) {
			if more > 0 {
				more--
				p.Write([]byte("more"), tcp.WriteCopy)
				p.Output()
			}
		})
		c.write([]byte("first"))
		c.expectData("first", 5)
		for range 3 {
			c.ack()
			c.expectData("written from SentFunc", 4)
		}
		c.ack()
		e.expectNothing("done")
	})
	t.Run("accept-aborts", func(t *testing.T) {
		e := newEnv(t, v4)
		ls := e.listen(listenPort, 0)
		ls.onAccept = func(l *tcp.Listener, p *tcp.PCB) { p.Abort() }
		c := e.synToListener(ls, plain())
		c.ack()
		s := e.next()
		if !s.Flags.Has(wire.TCPFlagRST) || s.SeqNum != c.iss+1 {
			t.Fatalf("Abort in AcceptFunc: got %v, want RST seq=%d", s, c.iss+1)
		}
		if e.conns() != 0 {
			t.Errorf("%d connections", e.conns())
		}
		e.passiveOpen(ls, func() peerOpts { p := plain(); p.port = peerPort + 1; ls.onAccept = nil; return p }())
	})
	t.Run("connected-writes", func(t *testing.T) {
		e := newEnv(t, v4)
		pcb, _ := e.tcp.NewPCB()
		c := &conn{e: e, pcb: pcb, rport: remotePort}
		c.rec = e.watch(pcb)
		pcb.SetNoDelay(true)
		err := pcb.Connect(netipAP(e.remote.String(), remotePort), func(p *tcp.PCB) {
			p.Write([]byte("hi"), tcp.WriteCopy)
			p.Output()
		})
		if err != nil {
			t.Fatal(err)
		}
		syn := e.next()
		c.lport, c.iss, c.stackNxt, c.synack = syn.SrcPort, syn.SeqNum, syn.SeqNum+1, syn
		e.synAck(c, plain())
		var data []byte
		for _, s := range e.drain() {
			data = append(data, s.data...)
		}
		if string(data) != "hi" {
			t.Errorf("data written in ConnectedFunc: sent %q", data)
		}
	})
}

// BacklogDelayed keeps an accepted connection counted against the backlog until
// BacklogAccepted.
func TestBacklogDelayed(t *testing.T) {
	e := newEnv(t, v4, func(o *opt.Options) { o.TCPSynCookies = false })
	ls := e.listen(listenPort, 1)
	ls.delayAccepts(e)
	e.passiveOpen(ls, plain())
	pb := plain()
	pb.port = peerPort + 1
	e.inject(segment{srcPort: pb.port, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 1000})
	e.expectNothing("SYN while the only backlog slot is held by BacklogDelayed")
	ls.accepted[0].BacklogAccepted()
	e.inject(segment{srcPort: pb.port, dstPort: listenPort, seq: peerISS, flags: wire.TCPFlagSYN, wnd: 1000})
	s := e.next()
	if !flagsEq(s.Flags, wire.TCPFlagSYN|wire.TCPFlagACK) {
		t.Errorf("SYN after BacklogAccepted: got %v, want SYN-ACK", s)
	}
}

// Proto.Close aborts every connection with errs.Abrt and closes listeners; the end-of-test
// checks (pools, heap, timers) then find nothing.
func TestProtoCloseAbortsAll(t *testing.T) {
	e := newEnv(t, v4)
	ls, a := e.passiveOpened()
	a.write(pattern(5000, 1)) // data in flight and queued
	e.drain()
	b := e.activeOpen(plain())
	b.send(wire.TCPFlagACK, pattern(100, 2))
	s := b.seg(wire.TCPFlagACK, pattern(100, 3))
	s.seq += 1000 // out of order data held
	e.inject(s)
	e.drain()
	e.synToListener(ls, plain().from(peerPort+5))
	e.close()
	for _, r := range []*rec{a.rec, b.rec} {
		if !errors.Is(r.err(), errs.Abrt) || len(r.errs) != 1 {
			t.Errorf("after Proto.Close: ErrFunc %v, want one errs.Abrt", r.errs)
		}
	}
}

// Ephemeral ports are in range and distinct for connections to the same peer port.
func TestEphemeralPorts(t *testing.T) {
	e := newEnv(t, v4)
	seen := map[uint16]bool{}
	for range 8 {
		c, _ := e.connect(nil)
		if c.lport < e.o.TCPPortLow || c.lport > e.o.TCPPortHigh {
			t.Errorf("ephemeral port %d out of [%d, %d]", c.lport, e.o.TCPPortLow, e.o.TCPPortHigh)
		}
		if seen[c.lport] {
			t.Errorf("ephemeral port %d reused while in use", c.lport)
		}
		seen[c.lport] = true
	}
}

// Bind with port 0 picks an ephemeral port; LocalAddr reports it.
func TestBindPortZero(t *testing.T) {
	e := newEnv(t, v6)
	pcb, _ := e.tcp.NewPCB()
	if err := pcb.Bind(netipAP(e.local.String(), 0)); err != nil {
		t.Fatal(err)
	}
	if p := pcb.LocalAddr().Port(); p < e.o.TCPPortLow || p > e.o.TCPPortHigh {
		t.Errorf("Bind(0) gave port %d", p)
	}
	pcb.Close()
}

// SetTTL and SetTOS set the IP header of the connection's segments.
func TestSetTTLAndTOS(t *testing.T) {
	bothEnvs(t, func(t *testing.T, e *env) {
		c := e.established(false, plain())
		c.pcb.SetTTL(7)
		c.pcb.SetTOS(0x28)
		c.write([]byte("ttl"))
		s := c.expectData("data", 3)
		if s.ttl != 7 || s.tos != 0x28 {
			t.Errorf("TTL %d TOS %#x, want 7 and 0x28", s.ttl, s.tos)
		}
	})
}

// Info reports the send queue: Unacked is in flight, Unsent waits for the window.
func TestInfoQueues(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(false, plain())
	c.pcb.SetNoDelay(true)
	c.wnd = 3000
	c.ack()
	c.write(pattern(5000, 1))
	sent := 0
	for _, s := range e.drain() {
		sent += len(s.data)
	}
	in := c.pcb.Info()
	if in.Unacked != sent || in.Unacked+in.Unsent != 5000 {
		t.Errorf("Info Unacked %d Unsent %d; %d bytes were sent of 5000", in.Unacked, in.Unsent, sent)
	}
	if in.SndNxt != c.iss+1+uint32(sent) || in.SndUna != c.iss+1 {
		t.Errorf("Info SndUna %d SndNxt %d, want %d %d", in.SndUna, in.SndNxt, c.iss+1, c.iss+1+uint32(sent))
	}
	if in.State != tcp.StateEstablished || in.Congestion == "" {
		t.Errorf("Info State %v Congestion %q", in.State, in.Congestion)
	}
	if got := c.pcb.SndQueueLen(); got == 0 {
		t.Error("SndQueueLen 0 with 5000 bytes queued")
	}
}

// Write fails with errs.Mem, all or nothing, once the queue would exceed TCPSndQueueLen pbufs
// (lwIP TCP_SND_QUEUELEN); SndQueueLen never exceeds it.
func TestWriteQueueLenLimit(t *testing.T) {
	e := newEnv(t, v4)
	c := e.established(true, plain())
	c.wnd = 0 // nothing leaves: everything stays queued
	c.ack()
	chunk := []byte("z")
	n := 0
	var err error
	for ; n < 4*e.o.TCPSndQueueLen; n++ {
		if err = c.pcb.Write(chunk, 0); err != nil { // zero-copy: one pbuf per write
			break
		}
		if q := c.pcb.SndQueueLen(); q > e.o.TCPSndQueueLen {
			t.Fatalf("SndQueueLen %d > TCPSndQueueLen %d", q, e.o.TCPSndQueueLen)
		}
	}
	if !errors.Is(err, errs.Mem) {
		t.Fatalf("%d one-byte zero-copy writes all succeeded (TCPSndQueueLen %d); last error %v", n, e.o.TCPSndQueueLen, err)
	}
	if n > e.o.TCPSndQueueLen {
		t.Errorf("%d writes queued before errs.Mem, TCPSndQueueLen is %d", n, e.o.TCPSndQueueLen)
	}
	e.drain()
}
