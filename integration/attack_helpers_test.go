package integration

// The tools of the attack tests (issue 11): a stack built with the test's options on a TUN
// whose kernel side is in the test's namespace, a packet injector and a sniffer on that
// TUN (AF_PACKET sockets created inside the namespace, so nothing they send can leave it),
// packet builders over wire's emitters, and the evidence a failure prints.
//
//	kernel side (namespace)                       wisp (this process)
//	  injector ── AF_PACKET sendmmsg ──▶ wisp0 ──▶ TUN fd ──▶ stack
//	  sniffer  ◀── AF_PACKET (BPF) ──── wisp0 ◀── TUN fd ◀── stack
//	  kernel sockets ◀──────────────────▶ wisp0

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/internal/tcpapp"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/tun"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/wire"
)

// attackEnv is a tcpEnv whose stack runs with the test's options, with what an attacker on
// the kernel side of the TUN needs: the interface index and the device's frame counters.
type attackEnv struct {
	*tcpEnv
	dev     *tun.Device
	ifindex int
}

// attackOptions is the tunnel preset with half-open connections that expire quickly
// (TCPSynRcvdTimeout 3 s, two SYN-ACK retransmissions), so a test can wait them out.
func attackOptions() opt.Options {
	o := opt.Tunnel()
	o.TCPSynRcvdTimeout = 3 * time.Second
	o.TCPSynAckMaxRtx = 2
	return o
}

// newAttackEnv is newTCPEnvWith plus what the injector needs (the TUN device, its index
// and a deeper queue): wisp has 198.18.<subnet>.2/24 and
// fd42:5eed:0:<subnet>::2/64, the kernel .1 and ::1. The stack is closed, its pools
// checked, the namespace removed and the goroutines counted when the test ends; a failed
// test first prints the stack's counters.
func newAttackEnv(t *testing.T, subnet int, o opt.Options) *attackEnv {
	t.Helper()
	e := &attackEnv{}
	e.tcpEnv = newTCPEnvWith(t, subnet, o, func(ep link.Endpoint) link.Endpoint {
		e.dev = ep.(*tun.Device)
		return ep
	})
	ns := e.ns
	var err error
	// A deeper TUN ring: the floods are paced to wisp's reading, this absorbs the bursts.
	ns.run(t, "ip", "link", "set", "wisp0", "txqueuelen", "8192")
	ns.do(t, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName("wisp0"); err == nil {
			e.ifindex = ifi.Index
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Registered after stacktest.Closed, so it runs before the stack is closed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("wisp stats at failure:\n%s", statsTable(e.s))
			t.Logf("kernel side:\n%s", e.ns.run(t, "ip", "-s", "link", "show", "wisp0"))
		}
	})
	return e
}

// statsTable is the stack's counters as stats_display() prints them.
func statsTable(s *stack.Stack) string {
	snap := s.Stats()
	return snap.String()
}

// tcpConns returns the TCP connections (TCP_PCB elements, TIME-WAIT included) wisp holds.
func tcpConns(s *stack.Stack) int {
	var n int
	s.Callback(func() { n, _ = s.TCP().NumPCBs() })
	return n
}

// framesRead is how many frames wisp has taken from the TUN (kept or dropped).
func (e *attackEnv) framesRead() uint64 {
	rx, rxDropped, _, _ := e.dev.Stats()
	return rx + rxDropped
}

// pollUntil polls cond every 20 ms until it holds or d passes; it returns how long it took
// and whether cond held.
func pollUntil(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// injectBatch is the number of packets one sendmmsg writes.
const injectBatch = 32

// mmsghdr is struct mmsghdr; Go's alignment pads it as C does on 32 and 64 bits.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// injector writes raw IP packets into the TUN from the kernel side: an AF_PACKET socket of
// the namespace, so the packets reach wisp exactly as built (no checksum or length fixed
// up, as IP_HDRINCL would) and never enter the kernel's own IP stack.
type injector struct {
	e        *attackEnv
	fd       int
	to4, to6 unix.RawSockaddrLinklayer
	hdrs     [injectBatch]mmsghdr
	iovs     [injectBatch]unix.Iovec
	// window bounds how far the injector runs ahead of wisp's reading (frames written but
	// not yet read from the TUN); 0: no pacing.
	window  int
	sent    uint64 // packets written
	base    uint64 // e.framesRead() when the injector opened
	backoff uint64 // writes refused by the qdisc and retried
}

func hton16(v uint16) uint16 { return v<<8 | v>>8 }

// newInjector opens the injector; it is closed when the test ends.
func newInjector(t *testing.T, e *attackEnv) *injector {
	t.Helper()
	j := &injector{e: e, window: 4096}
	var err error
	e.ns.do(t, func() { j.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0) })
	if err != nil {
		t.Fatalf("injector socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(j.fd) })
	unix.SetsockoptInt(j.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	j.to4 = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: hton16(unix.ETH_P_IP), Ifindex: int32(e.ifindex)}
	j.to6 = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: hton16(unix.ETH_P_IPV6), Ifindex: int32(e.ifindex)}
	j.base = e.framesRead()
	return j
}

var errInjectTimeout = errors.New("injector: deadline passed")

// send writes every packet (none may be empty or above the MTU), up to injectBatch per
// sendmmsg. It waits while more than j.window packets are unread by wisp, and retries
// briefly when the qdisc refuses; at deadline it stops and returns errInjectTimeout.
func (j *injector) send(pkts [][]byte, deadline time.Time) error {
	for done := 0; done < len(pkts); {
		for j.window > 0 && j.sent > j.e.framesRead()-j.base+uint64(j.window) {
			if time.Now().After(deadline) {
				return errInjectTimeout
			}
			time.Sleep(50 * time.Microsecond)
		}
		n := min(len(pkts)-done, injectBatch)
		for i := range n {
			p := pkts[done+i]
			j.iovs[i].Base = &p[0]
			j.iovs[i].SetLen(len(p))
			h := &j.hdrs[i].hdr
			to := &j.to4
			if p[0]>>4 == 6 {
				to = &j.to6
			}
			h.Name = (*byte)(unsafe.Pointer(to))
			h.Namelen = unix.SizeofSockaddrLinklayer
			h.Iov = &j.iovs[i]
			h.SetIovlen(1)
		}
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(j.fd), uintptr(unsafe.Pointer(&j.hdrs[0])), uintptr(n), 0, 0, 0)
		runtime.KeepAlive(pkts)
		if errno != 0 {
			if errno != unix.ENOBUFS && errno != unix.EAGAIN && errno != unix.EINTR {
				return fmt.Errorf("injector: sendmmsg: %w", errno)
			}
			j.backoff++
			if time.Now().After(deadline) {
				return errInjectTimeout
			}
			time.Sleep(200 * time.Microsecond)
			continue
		}
		done += int(r)
		j.sent += uint64(r)
	}
	return nil
}

// flood sends batches of 256 packets made by next until want were sent and enough reports
// true (nil: at once), or until limit were sent or stopAt passed; after each batch it calls
// each (nil: nothing). It returns how long it took and the error that stopped it (send's).
func (j *injector) flood(want, limit uint64, stopAt time.Time, next func() []byte, enough func() bool, each func()) (time.Duration, error) {
	start := time.Now()
	batch := make([][]byte, 0, 256)
	for j.sent < want || (enough != nil && !enough()) {
		if j.sent >= limit || time.Now().After(stopAt) {
			break
		}
		batch = batch[:0]
		for range cap(batch) {
			batch = append(batch, next())
		}
		if err := j.send(batch, stopAt); err != nil {
			return time.Since(start), err
		}
		if each != nil {
			each()
		}
	}
	return time.Since(start), nil
}

// checkFlood fails the test if the flood (what: "fragments", "SYNs") ended on an error or
// sent fewer than want packets in took.
func (j *injector) checkFlood(t *testing.T, err error, want uint64, took time.Duration, what string) {
	t.Helper()
	if err != nil {
		t.Errorf("flood: %v", err)
	}
	if j.sent < want {
		t.Errorf("the flood sent %d %s in %v, want %d", j.sent, what, took, want)
	}
}

// sniffer reads, from the kernel side of the TUN, the packets wisp sends (and, with both
// set, those the kernel sends to wisp), and hands each to fn on its own goroutine until the
// test ends.
type sniffer struct {
	fd   int
	stop atomic.Bool
	done chan struct{}
	seen atomic.Uint64
}

// filterFromWisp keeps only what wisp sends (PACKET_HOST on the kernel side of the TUN).
var filterFromWisp = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.PACKET_HOST, SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
}

// filterSynAckFromWisp keeps only the SYN-ACKs wisp sends (IPv4, and IPv6 without
// extension headers), so a flood of them costs the sniffer one wakeup per SYN-ACK and
// nothing for the rest.
var filterSynAckFromWisp = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.PACKET_HOST, SkipTrue: 12}, // → reject
	bpf.LoadAbsolute{Off: 0, Size: 1},
	bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 5}, // → v6
	bpf.LoadAbsolute{Off: 9, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: wire.ProtoTCP, SkipTrue: 8},
	bpf.LoadMemShift{Off: 0},
	bpf.LoadIndirect{Off: 13, Size: 1},
	bpf.Jump{Skip: 3}, // → flags
	// v6:
	bpf.LoadAbsolute{Off: 6, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: wire.ProtoTCP, SkipTrue: 4},
	bpf.LoadAbsolute{Off: 40 + 13, Size: 1},
	// flags:
	bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(wire.TCPFlagSYN | wire.TCPFlagACK | wire.TCPFlagRST | wire.TCPFlagFIN)},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(wire.TCPFlagSYN | wire.TCPFlagACK), SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff},
	// reject:
	bpf.RetConstant{Val: 0},
}

// newSniffer opens the sniffer with filter (nil: every packet, both ways); fn gets each
// packet (valid only during the call) and whether wisp sent it.
func newSniffer(t *testing.T, e *attackEnv, filter []bpf.Instruction, fn func(pkt []byte, fromWisp bool)) *sniffer {
	t.Helper()
	sn := &sniffer{done: make(chan struct{})}
	var err error
	e.ns.do(t, func() {
		if sn.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		if filter != nil {
			var raw []bpf.RawInstruction
			if raw, err = bpf.Assemble(filter); err != nil {
				return
			}
			prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
			if err = unix.SetsockoptSockFprog(sn.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
				return
			}
		}
		unix.SetsockoptInt(sn.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		if err = unix.SetsockoptTimeval(sn.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000}); err != nil {
			return
		}
		err = unix.Bind(sn.fd, &unix.SockaddrLinklayer{Protocol: hton16(unix.ETH_P_ALL), Ifindex: e.ifindex})
	})
	if err != nil {
		if sn.fd > 0 {
			unix.Close(sn.fd)
		}
		t.Fatalf("sniffer: %v", err)
	}
	go func() {
		defer close(sn.done)
		buf := make([]byte, 65536)
		for !sn.stop.Load() {
			n, from, err := unix.Recvfrom(sn.fd, buf, 0)
			if err != nil || n <= 0 {
				continue
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok {
				continue
			}
			sn.seen.Add(1)
			fn(buf[:n], ll.Pkttype == unix.PACKET_HOST)
		}
	}()
	t.Cleanup(sn.close)
	return sn
}

// close stops the sniffer's goroutine and closes its socket; idempotent.
func (sn *sniffer) close() {
	if sn.stop.Swap(true) {
		return
	}
	<-sn.done
	unix.Close(sn.fd)
}

// drops is what the kernel dropped for the sniffer (its receive buffer full).
func (sn *sniffer) drops() uint32 {
	st, err := unix.GetsockoptTpacketStats(sn.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0
	}
	return st.Drops
}

// injectTTL is the TTL / hop limit of the packets the tests build: the kernel uses 64 and
// wisp the options' value, so a sniffer can tell the injected packets apart.
const injectTTL = 123

// ipPacket puts an IPv4 (the given ID) or IPv6 header with injectTTL for proto in front of
// payload; the payload's checksum is the caller's business.
func ipPacket(src, dst netip.Addr, proto uint8, id uint16, payload []byte) []byte {
	if src.Is4() {
		r := wire.IPv4Repr{ID: id, TTL: injectTTL, Protocol: proto, Src: src, Dst: dst, PayloadLen: len(payload)}
		b := make([]byte, r.HeaderLen()+len(payload))
		if err := r.Emit(b); err != nil {
			panic(err)
		}
		copy(b[r.HeaderLen():], payload)
		return b
	}
	r := wire.IPv6Repr{NextHeader: proto, HopLimit: injectTTL, Src: src, Dst: dst, PayloadLen: len(payload)}
	b := make([]byte, wire.IPv6HeaderLen+len(payload))
	if err := r.Emit(b); err != nil {
		panic(err)
	}
	copy(b[wire.IPv6HeaderLen:], payload)
	return b
}

// tcpSeg is one TCP segment to build.
type tcpSeg struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    wire.TCPFlags
	wnd      uint16
	opts     wire.TCPOptions
	data     []byte
}

// tcpBytes is the segment's TCP header, options and data, checksummed.
func (s *tcpSeg) tcpBytes() []byte {
	r := wire.TCPRepr{SrcPort: s.src.Port(), DstPort: s.dst.Port(), SeqNum: s.seq, AckNum: s.ack,
		Flags: s.flags, Window: s.wnd, Options: s.opts, PayloadLen: len(s.data)}
	b := make([]byte, r.HeaderLen()+len(s.data))
	copy(b[r.HeaderLen():], s.data)
	if err := r.Emit(b, s.src.Addr(), s.dst.Addr()); err != nil {
		panic(err)
	}
	return b
}

// packet is the whole IP packet of the segment.
func (s *tcpSeg) packet() []byte {
	return ipPacket(s.src.Addr(), s.dst.Addr(), wire.ProtoTCP, uint16(s.seq), s.tcpBytes())
}

// linuxSYNOptions are the options a Linux SYN carries.
func linuxSYNOptions(tsval uint32) wire.TCPOptions {
	return wire.TCPOptions{HasMSS: true, MSS: 1460, SACKPermitted: true, HasWindowScale: true, WindowScale: 7,
		HasTimestamps: true, TSVal: tsval}
}

// sniffedTCP is a TCP segment the sniffer saw.
type sniffedTCP struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    wire.TCPFlags
	dataLen  int
	ttl      uint8
}

// parseSniffedTCP decodes an IPv4 or IPv6 (no extension headers) TCP packet; ok is false for
// anything else.
func parseSniffedTCP(p []byte) (s sniffedTCP, ok bool) {
	var src, dst netip.Addr
	var seg []byte
	var ttl uint8
	switch {
	case len(p) >= wire.IPv4MinHeaderLen && p[0]>>4 == 4:
		var r wire.IPv4Repr
		if r.Parse(p) != nil || r.Protocol != wire.ProtoTCP || r.MoreFragments || r.FragmentOffset != 0 {
			return s, false
		}
		src, dst, seg, ttl = r.Src, r.Dst, p[r.HeaderLen():r.HeaderLen()+r.PayloadLen], r.TTL
	case len(p) >= wire.IPv6HeaderLen && p[0]>>4 == 6:
		var r wire.IPv6Repr
		if r.Parse(p) != nil || r.NextHeader != wire.ProtoTCP {
			return s, false
		}
		src, dst, seg, ttl = r.Src, r.Dst, p[wire.IPv6HeaderLen:wire.IPv6HeaderLen+r.PayloadLen], r.HopLimit
	default:
		return s, false
	}
	if wire.CheckTCP(seg) != nil {
		return s, false
	}
	t := wire.TCP(seg)
	return sniffedTCP{src: netip.AddrPortFrom(src, t.SrcPort()), dst: netip.AddrPortFrom(dst, t.DstPort()),
		seq: t.SeqNum(), ack: t.AckNum(), flags: t.Flags(), dataLen: len(t.Payload()), ttl: ttl}, true
}

// echoStream is a kernel connection to a wisp echo server that keeps writing the pattern of
// seed (paced) and checks, byte for byte, that the echo returns it, until stopped.
type echoStream struct {
	conn       *net.TCPConn
	seed       uint64
	sent, recv atomic.Int64
	stopc      chan struct{}
	werr, rerr chan error
}

// startStream starts the writer and the reader; both give up at deadline.
func startStream(conn *net.TCPConn, seed uint64, deadline time.Time) *echoStream {
	st := &echoStream{conn: conn, seed: seed, stopc: make(chan struct{}), werr: make(chan error, 1), rerr: make(chan error, 1)}
	conn.SetDeadline(deadline)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			select {
			case <-st.stopc:
				st.werr <- conn.CloseWrite()
				return
			default:
			}
			off := st.sent.Load()
			tcpapp.FillPattern(buf, seed, off)
			n, err := conn.Write(buf)
			st.sent.Add(int64(n))
			if err != nil {
				st.werr <- fmt.Errorf("stream write after %d bytes: %w", st.sent.Load(), err)
				return
			}
			// At most ~16 MB/s: enough to see progress, and it leaves the two cores of a
			// CI runner to the flood and to wisp.
			time.Sleep(2 * time.Millisecond)
		}
	}()
	go func() {
		buf := make([]byte, 64<<10)
		want := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				off := st.recv.Load()
				tcpapp.FillPattern(want[:n], seed, off)
				if !bytes.Equal(buf[:n], want[:n]) {
					st.rerr <- fmt.Errorf("stream: echo differs from what was sent in bytes %d..%d", off, off+int64(n))
					return
				}
				st.recv.Add(int64(n))
			}
			if errors.Is(err, io.EOF) {
				st.rerr <- nil
				return
			}
			if err != nil {
				st.rerr <- fmt.Errorf("stream read after %d bytes: %w", st.recv.Load(), err)
				return
			}
		}
	}()
	return st
}

// finish half-closes, waits for the echo to end and checks it is the same length as what
// was sent (every byte was compared on the way).
func (st *echoStream) finish() error {
	close(st.stopc)
	err := errors.Join(<-st.werr, <-st.rerr)
	st.conn.Close()
	if err == nil && st.recv.Load() != st.sent.Load() {
		err = fmt.Errorf("stream: sent %d bytes, echo returned %d", st.sent.Load(), st.recv.Load())
	}
	return err
}

// dialFrom dials addr from a kernel socket of ns within d. Unlike ns.dial it returns the
// error instead of failing the test, so any goroutine may call it.
func dialFrom(ns *netns, network string, addr netip.AddrPort, d time.Duration) (*net.TCPConn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // the thread joins the namespace for good and exits with us
		fd, err := unix.Open("/var/run/netns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		var c net.Conn
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr.String())
			cancel()
		}
		ch <- res{c, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return r.c.(*net.TCPConn), nil
}

// echoOnce dials addr from the namespace, sends msg and reads its echo back; every step
// is bounded by d.
func echoOnce(ns *netns, network string, addr netip.AddrPort, msg []byte, d time.Duration) error {
	conn, err := dialFrom(ns, network, addr, d)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(d))
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	for n := 0; n < len(got); {
		k, err := conn.Read(got[n:])
		n += k
		if err != nil {
			return fmt.Errorf("read after %d of %d bytes: %w", n, len(msg), err)
		}
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// tally is a mutex-guarded map of counts, for the sniffer's tallies.
type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *tally) add(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
	c.mu.Unlock()
}

func (c *tally) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}
