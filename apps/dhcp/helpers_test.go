package dhcp_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/apps/dhcp"
	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/transport/udp"
	"github.com/wispstack/wisp/wire"
	"github.com/wispstack/wisp/wire/dhcpv4"
)

var (
	serverAddr = netip.MustParseAddr("198.18.0.1")
	addr100    = netip.MustParseAddr("198.18.0.100")
	addr77     = netip.MustParseAddr("198.18.0.77")
	dnsAddr    = netip.MustParseAddr("198.18.0.53")
	bcast      = netip.MustParseAddr("255.255.255.255")
)

// seen is one message the test server received.
type seen struct {
	At                  time.Time
	Type                dhcpv4.MessageType
	CIAddr, Requested   netip.Addr
	ServerID            netip.Addr
	Broadcast           bool // the BROADCAST flag
	Src                 netip.AddrPort
	Dst                 netip.Addr
	XID                 uint32
	Hostname            string
	HasParams, HasMaxSz bool
}

func (s seen) String() string {
	return fmt.Sprintf("%s %v ci=%v req=%v sid=%v bflag=%v %v->%v", s.At.Format("05.000"), s.Type, s.CIAddr,
		s.Requested, s.ServerID, s.Broadcast, s.Src, s.Dst)
}

// server is a small DHCP server on stack B, written for these tests: it offers its pool's
// addresses in order (a DECLINE moves to the next), ACKs every REQUEST unless told to NAK
// or to be silent, and records what it hears.
type server struct {
	t      *testing.T
	s      *stack.Stack
	nif    *stack.Netif
	pcb    *udp.PCB
	clk    *clock.Fake
	pool   []netip.Addr
	next   int
	lease  uint32 // seconds
	router netip.Addr

	mu      sync.Mutex
	silent  bool
	naks    int  // NAK this many REQUESTs
	inject  bool // reply by injecting unicast frames into the client's netif (no BROADCAST)
	client  *stack.Netif
	rig     *rig
	clientH [6]byte
	log     []seen
}

func (sv *server) recv(_ *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
	b := make([]byte, p.TotLen())
	p.CopyOut(b, 0)
	p.Free()
	var r dhcpv4.Repr
	if err := r.Parse(b); err != nil {
		sv.t.Errorf("server: bad message: %v", err)
		return
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.log = append(sv.log, seen{At: sv.clk.Now(), Type: r.Type, CIAddr: r.CIAddr, Requested: r.RequestedIP,
		ServerID: r.ServerID, Broadcast: r.Broadcast, Src: info.Src, Dst: info.Dst, XID: r.XID,
		Hostname: string(r.Hostname), HasParams: len(r.ParamRequest) > 0, HasMaxSz: r.MaxSize != 0})
	if sv.silent {
		return
	}
	reply := dhcpv4.Repr{Op: dhcpv4.OpReply, XID: r.XID, Broadcast: r.Broadcast, CHAddr: r.CHAddr,
		ServerID: serverAddr, SubnetMask: netip.MustParseAddr("255.255.255.0"),
		Routers: []netip.Addr{sv.router}, DNS: []netip.Addr{dnsAddr, serverAddr}, LeaseTime: sv.lease}
	switch r.Type {
	case dhcpv4.Discover:
		reply.Type, reply.YIAddr = dhcpv4.Offer, sv.pool[sv.next%len(sv.pool)]
	case dhcpv4.Request:
		a := r.RequestedIP
		if !a.IsValid() {
			a = r.CIAddr
		}
		reply.Type, reply.YIAddr, reply.CIAddr = dhcpv4.Ack, a, r.CIAddr
		if sv.naks > 0 {
			sv.naks--
			reply = dhcpv4.Repr{Op: dhcpv4.OpReply, XID: r.XID, Broadcast: r.Broadcast, CHAddr: r.CHAddr,
				ServerID: serverAddr, Type: dhcpv4.Nak, Message: []byte("wrong network")}
		}
	case dhcpv4.Decline:
		sv.next++
		return
	default:
		return
	}
	out := make([]byte, reply.Len())
	if _, err := reply.Emit(out); err != nil {
		sv.t.Errorf("server: emit: %v", err)
		return
	}
	if sv.inject && reply.YIAddr.IsValid() {
		reply.Broadcast = false
		sv.injectTo(reply.YIAddr, out)
		return
	}
	q, err := sv.s.Allocator().Alloc(pbuf.LayerTransport, len(out), pbuf.RAM)
	if err != nil {
		sv.t.Errorf("server: %v", err)
		return
	}
	_ = q.CopyIn(out, 0)
	to := netip.AddrPortFrom(bcast, dhcpv4.ClientPort)
	if r.CIAddr.IsValid() && !r.Broadcast && info.Dst != bcast {
		to = netip.AddrPortFrom(r.CIAddr, dhcpv4.ClientPort) // RENEWING: unicast back (RFC 2131 §4.1)
	}
	if err := sv.pcb.SendToFrom(q, to, serverAddr, sv.nif.Index()); err != nil {
		sv.t.Errorf("server: send: %v", err)
	}
}

// injectTo delivers the reply to the client's netif as a server that does not honour the
// BROADCAST flag sends it: unicast to the client's MAC and the offered address.
func (sv *server) injectTo(dst netip.Addr, payload []byte) {
	stacktest.Inject(sv.t, sv.client, frameTo(sv.t, sv.rig, sv.clientH, dst, dhcpv4.ClientPort, payload))
}

// types returns the message types the server heard, in order.
func (sv *server) types() []dhcpv4.MessageType {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	var out []dhcpv4.MessageType
	for _, s := range sv.log {
		out = append(out, s.Type)
	}
	return out
}

func (sv *server) last() seen {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if len(sv.log) == 0 {
		return seen{}
	}
	return sv.log[len(sv.log)-1]
}

func (sv *server) set(fn func(sv *server)) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	fn(sv)
}

func (sv *server) dump() string {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	var b strings.Builder
	for _, s := range sv.log {
		fmt.Fprintf(&b, "  %v\n", s)
	}
	return b.String()
}

// keepOpen is a link that the stack may close without closing the pipe (so that a frame
// written as the netif goes — a RELEASE — still crosses).
type keepOpen struct{ *pipe.End }

func (keepOpen) Close() error { return nil }

// rig is a client stack A (no address) and a server stack B (198.18.0.1/24) on an Ethernet
// pipe driven by a fake clock.
type rig struct {
	t      *testing.T
	clk    *clock.Fake
	a, b   *stack.Stack
	pa, pb *pipe.End
	nifA   *stack.Netif
	nifB   *stack.Netif
	sv     *server
}

type rigConfig struct {
	noACD     bool
	extraB    []netip.Prefix // more addresses of B
	lease     uint32
	pool      []netip.Addr
	dhcpOnA   bool // NetifConfig.DHCP on A's netif
	keepConns bool
	cores     int // of stack A
}

func newRig(t *testing.T, c rigConfig) *rig {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	if c.lease == 0 {
		c.lease = 3600
	}
	if c.pool == nil {
		c.pool = []netip.Addr{addr100}
	}
	r := &rig{t: t, clk: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	o := opt.Tunnel()
	o.DHCPDoesACDCheck = !c.noACD
	o.TCPKeepConnWhenIPChanges = c.keepConns
	r.pa, r.pb = pipe.New(pipe.Config{MTU: 1500, Medium: link.MediumEthernet, Sync: true})
	var err error
	if r.a, err = stack.New(stack.Config{Options: o, Clock: r.clk, Seed: 1, Cores: c.cores}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, r.a)
	if r.b, err = stack.New(stack.Config{Options: o, Clock: r.clk, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	stacktest.Closed(t, r.b)
	t.Cleanup(func() {
		r.pa.Flush()
		_ = r.pa.Close()
	})
	r.sv = &server{t: t, rig: r, router: serverAddr, s: r.b, clk: r.clk, pool: c.pool, lease: c.lease, clientH: r.pa.HardwareAddr()}
	stacktest.OnFail(t, stacktest.Side{Name: "A (client)", Stack: r.a, Links: []any{r.pa}},
		stacktest.Side{Name: "B (server)", Stack: r.b, Links: []any{r.pb}}).Later(func() {
		if t.Failed() {
			t.Logf("server heard:\n%s", r.sv.dump())
			if c := r.client(); c != nil {
				l, _ := c.Lease()
				t.Logf("client: %v %+v %+v", c.State(), l, c.Stats())
			}
		}
	})
	if r.nifB, err = r.b.AddNetif(keepOpen{r.pb}, stack.NetifConfig{Name: "b0",
		Addrs: append([]netip.Prefix{netip.PrefixFrom(serverAddr, 24)}, c.extraB...)}); err != nil {
		t.Fatal(err)
	}
	r.sv.nif = r.nifB
	r.b.Lock()
	pcb, err := r.b.UDP().NewPCB()
	if err == nil {
		pcb.SetBroadcast(true)
		err = pcb.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), dhcpv4.ServerPort))
		pcb.OnRecv(r.sv.recv)
	}
	r.b.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	r.sv.pcb = pcb
	if r.nifA, err = r.a.AddNetif(keepOpen{r.pa}, stack.NetifConfig{Name: "a0", DHCP: c.dhcpOnA}); err != nil {
		t.Fatal(err)
	}
	r.sv.client = r.nifA
	return r
}

func (r *rig) client() *dhcp.Client { return r.nifA.DHCP() }

// run moves the fake clock d forward, timer by timer, carrying the frames each sends.
func (r *rig) run(d time.Duration) {
	end := r.clk.Now().Add(d)
	for i := 0; ; i++ {
		r.pa.Flush()
		next, ok := r.clk.Next()
		if !ok || r.clk.Now().Add(next).After(end) {
			break
		}
		if i > 100000 {
			r.t.Fatal("run: timers keep firing")
		}
		r.clk.Advance(next)
	}
	r.clk.Advance(end.Sub(r.clk.Now()))
	r.pa.Flush()
}

// runUntil runs, a second at a time, until cond holds or limit passes.
func (r *rig) runUntil(limit time.Duration, what string, cond func() bool) {
	r.t.Helper()
	end := r.clk.Now().Add(limit)
	for !cond() {
		if r.clk.Now().After(end) {
			r.t.Fatalf("%s: not within %v", what, limit)
		}
		r.run(time.Second)
	}
}

func (r *rig) state() dhcp.State { return r.client().State() }

// addrsA lists A's IPv4 addresses.
func (r *rig) addrsA() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range r.nifA.Addrs() {
		if a.Prefix.Addr().Is4() {
			out = append(out, a.Prefix)
		}
	}
	return out
}

// defaultRouteA reports A's IPv4 default route's gateway.
func (r *rig) defaultRouteA() (netip.Addr, bool) {
	for _, rt := range r.a.Routes() {
		if rt.Dst.Bits() == 0 && rt.Dst.Addr().Is4() {
			return rt.Gateway, true
		}
	}
	return netip.Addr{}, false
}

func typesEqual(got []dhcpv4.MessageType, want ...dhcpv4.MessageType) bool {
	return slices.Equal(got, want)
}

// broadcastFrame is a DHCP reply from the server to 255.255.255.255:68 as an Ethernet
// broadcast frame.
func broadcastFrame(t *testing.T, r *rig, payload []byte) []byte {
	return frameTo(t, r, wire.BroadcastMAC, bcast, dhcpv4.ClientPort, payload)
}

// frameTo is a UDP datagram from the server's port 67 to dst:dport in an Ethernet frame to
// mac.
func frameTo(t *testing.T, r *rig, mac [6]byte, dst netip.Addr, dport uint16, payload []byte) []byte {
	f := make([]byte, wire.EthernetHeaderLen+wire.IPv4MinHeaderLen+wire.UDPHeaderLen+len(payload))
	eth := wire.Ethernet(f)
	eth.SetDst(mac)
	eth.SetSrc(r.pb.HardwareAddr())
	eth.SetEtherType(wire.EtherTypeIPv4)
	ipb := f[wire.EthernetHeaderLen:]
	ir := wire.IPv4Repr{TTL: 64, Protocol: wire.ProtoUDP, Src: serverAddr, Dst: dst, PayloadLen: wire.UDPHeaderLen + len(payload)}
	if err := ir.Emit(ipb); err != nil {
		t.Fatal(err)
	}
	u := ipb[wire.IPv4MinHeaderLen:]
	binary.BigEndian.PutUint16(u[0:], dhcpv4.ServerPort)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(wire.UDPHeaderLen+len(payload)))
	copy(u[8:], payload)
	wire.UDP(u).SetChecksum(serverAddr, dst)
	return f
}
