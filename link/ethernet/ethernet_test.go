package ethernet

import (
	"bytes"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0xb}
	macC = [6]byte{0x02, 0, 0, 0, 0, 0xc}
	ipA  = netip.MustParseAddr("198.18.0.1")
	ipB  = netip.MustParseAddr("198.18.0.2")
	ipC  = netip.MustParseAddr("198.18.0.3")
)

// upper records IP packets and owns a list of addresses.
type upper struct {
	discard bool // count nothing, copy nothing (allocation tests)
	addrs   []netip.Addr
	got     [][]byte
	flags   []pbuf.Flags
}

func (u *upper) InputIP(p *pbuf.Pbuf) {
	if u.discard {
		p.Free()
		return
	}
	u.got = append(u.got, p.Bytes(nil))
	u.flags = append(u.flags, p.Flags())
	p.Free()
}

func (u *upper) HasIPv4(a netip.Addr) bool {
	for _, x := range u.addrs {
		if x == a {
			return true
		}
	}
	return false
}

// node is one Iface with its captured transmissions.
type node struct {
	e   *Iface
	up  *upper
	out []*pbuf.Pbuf
}

type env struct {
	t     *testing.T
	alloc *pbuf.Allocator
	clk   *clock.Fake
	core  sync.Mutex
	q     *clock.Timeouts
	pools memp.Table
}

func newEnv(t *testing.T) *env {
	v := &env{t: t, alloc: linktest.NewAllocator(), clk: clock.NewFake(time.Unix(1000, 0))}
	v.q = clock.NewTimeouts(v.clk, &v.core)
	return v
}

func (v *env) cfg() Config {
	return Config{Alloc: v.alloc, Timers: v.q, TableSize: 4, QueueLen: 4, MaxAge: 5 * time.Minute}
}

func (v *env) node(hw [6]byte, addr netip.Addr, c Config) *node {
	n := &node{up: &upper{addrs: []netip.Addr{addr}}}
	c.Transmit = func(p *pbuf.Pbuf) { n.out = append(n.out, p) }
	e, err := New(hw, n.up, c)
	if err != nil {
		v.t.Fatal(err)
	}
	n.e = e
	return n
}

// take returns the node's transmitted frames as bytes and frees them.
func (n *node) take() [][]byte {
	var r [][]byte
	for _, p := range n.out {
		r = append(r, p.Bytes(nil))
		p.Free()
	}
	n.out = n.out[:0]
	return r
}

// deliver moves every frame n transmitted into to, through a fresh POOL chain as a link would.
func (v *env) deliver(n, to *node) int {
	c := 0
	for _, b := range n.take() {
		to.e.Input(v.rx(b))
		c++
	}
	return c
}

func (v *env) rx(b []byte) *pbuf.Pbuf {
	p, err := v.alloc.Alloc(pbuf.LayerRaw, len(b), pbuf.POOL)
	if err != nil {
		v.t.Fatal(err)
	}
	p.CopyIn(b, 0)
	return p
}

func (v *env) ipPacket(payload string) *pbuf.Pbuf {
	p, err := v.alloc.Alloc(pbuf.LayerIP, len(payload), pbuf.RAM)
	if err != nil {
		v.t.Fatal(err)
	}
	p.CopyIn([]byte(payload), 0)
	return p
}

func (v *env) finish(ns ...*node) {
	v.t.Helper()
	for _, n := range ns {
		n.take()
		n.e.Close()
	}
	linktest.CheckZero(v.t, v.alloc)
	linktest.CheckTable(v.t, &v.pools)
	if v.q.Len() != 0 || v.clk.Pending() != 0 {
		v.t.Errorf("timers left: %d scheduled, %d clock timers", v.q.Len(), v.clk.Pending())
	}
}

func parseARP(t *testing.T, frame []byte) (wire.EthernetRepr, wire.ARPRepr) {
	t.Helper()
	var eth wire.EthernetRepr
	var arp wire.ARPRepr
	if err := eth.Parse(frame); err != nil || eth.EtherType != wire.EtherTypeARP {
		t.Fatalf("not an ARP frame: %x", frame)
	}
	if err := arp.Parse(frame[HeaderLen:]); err != nil {
		t.Fatal(err)
	}
	return eth, arp
}

func TestResolveQueueAndDeliver(t *testing.T) {
	v := newEnv(t)
	c := v.cfg()
	c.Pools = &v.pools
	a := v.node(macA, ipA, c)
	b := v.node(macB, ipB, c) // shares the ARP_QUEUE pool through the table
	if v.q.Len() != 0 || v.clk.Pending() != 0 {
		t.Fatal("an empty ARP table armed a timer")
	}
	if err := a.e.OutputIPv4(v.ipPacket("first"), ipB, ipA); err != nil {
		t.Fatal(err)
	}
	a.e.OutputIPv4(v.ipPacket("second"), ipB, ipA)
	if _, ok := a.e.Lookup(ipB); ok {
		t.Fatal("pending entry resolved")
	}
	if v.q.Len() != 1 {
		t.Fatal("pending entry armed no timer")
	}
	if len(a.out) != 1 {
		t.Fatalf("%d frames; want one request", len(a.out))
	}
	eth, arp := parseARP(t, a.out[0].Bytes(nil))
	if eth.Dst != wire.BroadcastMAC || eth.Src != macA || arp.Operation != wire.ARPRequest ||
		arp.SHA != macA || arp.SPA != ipA || arp.TPA != ipB || arp.THA != (wire.MAC{}) {
		t.Fatalf("request %+v %+v", eth, arp)
	}
	v.deliver(a, b) // B learns A from a request aimed at it and answers
	if mac, ok := b.e.Lookup(ipA); !ok || mac != macA {
		t.Fatal("B did not learn A")
	}
	if len(b.out) != 1 {
		t.Fatal("no reply")
	}
	eth, arp = parseARP(t, b.out[0].Bytes(nil))
	if eth.Dst != macA || arp.Operation != wire.ARPReply || arp.SHA != macB || arp.SPA != ipB ||
		arp.THA != macA || arp.TPA != ipA {
		t.Fatalf("reply %+v %+v", eth, arp)
	}
	v.deliver(b, a) // A resolves B and sends the queue
	if mac, ok := a.e.Lookup(ipB); !ok || mac != macB {
		t.Fatal("A did not resolve B")
	}
	if n := v.deliver(a, b); n != 2 {
		t.Fatalf("%d queued packets sent", n)
	}
	if len(b.up.got) != 2 || string(b.up.got[0]) != "first" || string(b.up.got[1]) != "second" || b.up.flags[0] != 0 {
		t.Fatalf("B got %q", b.up.got)
	}
	// A cache hit now goes straight out.
	a.e.OutputIPv4(v.ipPacket("third"), ipB, ipA)
	v.deliver(a, b)
	if len(b.up.got) != 3 || a.e.Stats().Cachehit != 1 {
		t.Fatal("cache hit path")
	}
	if a.e.Stats().Xmit != 1 || a.e.Stats().Recv != 1 || b.e.Stats().Xmit != 1 {
		t.Fatalf("stats A %+v B %+v", *a.e.Stats(), *b.e.Stats())
	}
	// Entries expire after MaxAge; then no timer is left.
	v.clk.Advance(5*time.Minute + time.Second)
	if _, ok := a.e.Lookup(ipB); ok {
		t.Fatal("entry outlived MaxAge")
	}
	if v.q.Len() != 0 || v.clk.Pending() != 0 {
		t.Fatal("timer armed after the table emptied")
	}
	v.finish(a, b)
}

func TestRetriesThenGiveUp(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	a.e.OutputIPv4(v.ipPacket("lost"), ipB, ipA)
	requests := len(a.take())
	for range 20 {
		v.clk.Advance(500 * time.Millisecond)
		requests += len(a.take())
	}
	if requests != 1+maxRetries {
		t.Fatalf("%d requests", requests)
	}
	if st := a.e.Stats(); st.Drop != 1 {
		t.Fatalf("queued packet not counted: %+v", *st)
	}
	if v.q.Len() != 0 {
		t.Fatal("timer left after giving up")
	}
	v.finish(a)
}

func TestQueueBound(t *testing.T) {
	v := newEnv(t)
	c := v.cfg()
	c.QueueLen = 2
	a := v.node(macA, ipA, c)
	for i := range 3 {
		if err := a.e.OutputIPv4(v.ipPacket(string(rune('a'+i))), ipB, ipA); err != nil {
			t.Fatal(err)
		}
	}
	// The pool is full: B's own oldest packet made room.
	if st := a.e.Stats(); st.Drop != 1 || st.Memerr != 1 {
		t.Fatalf("%+v", *st)
	}
	// Another next hop with nothing queued cannot get a slot.
	if err := a.e.OutputIPv4(v.ipPacket("x"), ipC, ipA); !errors.Is(err, errs.Mem) {
		t.Fatal(err)
	}
	a.take()
	// Resolve B by hand: the survivors are "b" and "c".
	a.e.AddStatic(ipB, macB)
	var got []string
	for _, f := range a.take() {
		got = append(got, string(f[HeaderLen:]))
	}
	if len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Fatalf("sent %q", got)
	}
	v.finish(a)
}

func TestBroadcastMulticastAndHeaderless(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	a.e.OutputIPv4(v.ipPacket("bc"), netip.MustParseAddr("255.255.255.255"), ipA)
	a.e.OutputIPv4(v.ipPacket("mc"), netip.MustParseAddr("239.129.2.3"), ipA)
	// A ROM pbuf has no header room: a header pbuf is chained in front.
	rom, _ := v.alloc.AllocRef([]byte("rom"), pbuf.ROM, nil)
	a.e.Output(rom, macB, 0x0800)
	f := a.take()
	if !bytes.Equal(f[0][:6], wire.BroadcastMAC[:]) || !bytes.Equal(f[1][:6], []byte{1, 0, 0x5e, 1, 2, 3}) ||
		!bytes.Equal(f[2][:6], macB[:]) || string(f[2][HeaderLen:]) != "rom" {
		t.Fatalf("%x", f)
	}
	if v.q.Len() != 0 {
		t.Fatal("broadcast armed a timer")
	}
	if err := a.e.OutputIPv4(v.ipPacket("x"), netip.MustParseAddr("::1"), ipA); !errors.Is(err, errs.Rte) {
		t.Fatal(err)
	}
	v.finish(a)
}

func frame(dst, src [6]byte, typ wire.EtherType, payload []byte) []byte {
	b := make([]byte, HeaderLen+len(payload))
	(&wire.EthernetRepr{Dst: dst, Src: src, EtherType: typ}).Emit(b)
	copy(b[HeaderLen:], payload)
	return b
}

func TestInputFiltering(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	a.e.Input(v.rx(frame(macA, macB, wire.EtherTypeIPv4, []byte("uni"))))
	a.e.Input(v.rx(frame(wire.BroadcastMAC, macB, wire.EtherTypeIPv4, []byte("bc"))))
	a.e.Input(v.rx(frame([6]byte{0x33, 0x33, 0, 0, 0, 1}, macB, wire.EtherTypeIPv6, []byte("mc6"))))
	a.e.Input(v.rx(frame(macC, macB, wire.EtherTypeIPv4, []byte("other"))))
	a.e.Input(v.rx(frame(macA, macB, 0x88cc, []byte("lldp"))))
	a.e.Input(v.rx([]byte{1, 2, 3}))
	a.e.Input(v.rx(frame(macA, macA, wire.EtherTypeIPv4, []byte("loop"))))
	u := a.up
	if len(u.got) != 3 || string(u.got[2]) != "mc6" || u.flags[0] != 0 ||
		u.flags[1] != pbuf.FlagLinkBroadcast || u.flags[2] != pbuf.FlagLinkMulticast {
		t.Fatalf("%q %v", u.got, u.flags)
	}
	if st := a.e.Stats(); st.Drop != 4 || st.Proterr != 2 || st.Lenerr != 1 {
		t.Fatalf("%+v", *st)
	}
	v.finish(a)
}

func arpFrame(op uint16, ethDst, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) []byte {
	b := make([]byte, wire.ARPLen)
	wire.EmitARP(b, op, sha, spa, tha, tpa)
	return frame(ethDst, sha, wire.EtherTypeARP, b)
}

func TestARPMergeRules(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	// A request between two other hosts teaches nothing new (RFC 826: only merge).
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macB, ipB, [6]byte{}, ipC)))
	if _, ok := a.e.Lookup(ipB); ok || len(a.out) != 0 || v.q.Len() != 0 {
		t.Fatal("learned from a request not for us")
	}
	// A probe (sender 0.0.0.0) for our address gets an answer but teaches nothing.
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macB, netip.IPv4Unspecified(), [6]byte{}, ipA)))
	f := a.take()
	if len(f) != 1 {
		t.Fatal("probe not answered")
	}
	if _, arp := parseARP(t, f[0]); arp.Operation != wire.ARPReply || arp.SPA != ipA || arp.TPA != netip.IPv4Unspecified() {
		t.Fatalf("%+v", arp)
	}
	if _, ok := a.e.Lookup(netip.IPv4Unspecified()); ok {
		t.Fatal("learned 0.0.0.0")
	}
	// A request for us is learned; a gratuitous ARP from B with a new MAC then updates it.
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macB, ipB, [6]byte{}, ipA)))
	a.take()
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macC, ipB, [6]byte{}, ipB)))
	if mac, _ := a.e.Lookup(ipB); mac != macC {
		t.Fatal("gratuitous ARP not merged")
	}
	if len(a.out) != 0 {
		t.Fatal("answered a gratuitous ARP")
	}
	// Someone claiming our address is never learned.
	a.e.Input(v.rx(arpFrame(wire.ARPReply, macA, macC, ipA, macA, ipA)))
	if _, ok := a.e.Lookup(ipA); ok || a.e.Stats().Err != 1 {
		t.Fatal("conflict learned")
	}
	// Static entries are not changed by ARP traffic and arm no timer.
	a.e.Flush()
	if v.q.Len() != 0 {
		t.Fatal("Flush left the timer")
	}
	a.e.AddStatic(ipC, macC)
	a.e.Input(v.rx(arpFrame(wire.ARPReply, macA, macB, ipC, macA, ipA)))
	if mac, _ := a.e.Lookup(ipC); mac != macC || v.q.Len() != 0 {
		t.Fatal("static entry changed or timed")
	}
	if a.e.AddStatic(ipC, [6]byte{1, 0, 0, 0, 0, 0}) == nil {
		t.Fatal("multicast MAC accepted")
	}
	v.finish(a)
}

func TestAnnounce(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	a.e.Announce(ipA)
	f := a.take()
	eth, arp := parseARP(t, f[0])
	if eth.Dst != wire.BroadcastMAC || arp.Operation != wire.ARPRequest || arp.SPA != ipA ||
		arp.TPA != ipA || arp.THA != (wire.MAC{}) || arp.SHA != macA {
		t.Fatalf("%+v %+v", eth, arp)
	}
	v.finish(a)
}

func TestRefreshBeforeExpiry(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macB, ipB, [6]byte{}, ipA)))
	a.take()
	a.e.OutputIPv4(v.ipPacket("use"), ipB, ipA)
	a.take()
	v.clk.Advance(5*time.Minute - refreshLead)
	f := a.take()
	if len(f) != 1 {
		t.Fatalf("%d frames at refresh time", len(f))
	}
	eth, arp := parseARP(t, f[0])
	if eth.Dst != macB || arp.Operation != wire.ARPRequest || arp.TPA != ipB {
		t.Fatalf("refresh %+v %+v", eth, arp)
	}
	// Unanswered: a broadcast follows a second later; the entry is still used meanwhile.
	v.clk.Advance(time.Second)
	if f := a.take(); len(f) != 1 || !bytes.Equal(f[0][:6], wire.BroadcastMAC[:]) {
		t.Fatal("no broadcast retry")
	}
	if _, ok := a.e.Lookup(ipB); !ok {
		t.Fatal("refreshing entry unusable")
	}
	// B answers: the entry is fresh for another MaxAge.
	a.e.Input(v.rx(arpFrame(wire.ARPReply, macA, macB, ipB, macA, ipA)))
	v.clk.Advance(time.Minute)
	if _, ok := a.e.Lookup(ipB); !ok {
		t.Fatal("refreshed entry expired")
	}
	// An unused entry is not refreshed: it just expires.
	v.clk.Advance(5 * time.Minute)
	if f := a.take(); len(f) != 0 {
		t.Fatalf("refreshed an unused entry: %d frames", len(f))
	}
	if _, ok := a.e.Lookup(ipB); ok {
		t.Fatal("unused entry did not expire")
	}
	v.finish(a)
}

func TestRecycleOldest(t *testing.T) {
	v := newEnv(t)
	c := v.cfg()
	c.TableSize = 2
	a := v.node(macA, ipA, c)
	a.e.AddStatic(ipB, macB)
	a.e.OutputIPv4(v.ipPacket("1"), netip.MustParseAddr("198.18.1.1"), ipA)
	v.clk.Advance(100 * time.Millisecond)
	// Table full (one static, one pending with a queue): the pending one is recycled.
	a.e.OutputIPv4(v.ipPacket("2"), netip.MustParseAddr("198.18.1.2"), ipA)
	if _, ok := a.e.Lookup(ipB); !ok {
		t.Fatal("static entry recycled")
	}
	if st := a.e.Stats(); st.Drop != 1 {
		t.Fatalf("recycled queue not counted: %+v", *st)
	}
	// All static: nothing to recycle.
	a.e.Flush()
	a.e.AddStatic(ipB, macB)
	a.e.AddStatic(ipC, macC)
	if err := a.e.OutputIPv4(v.ipPacket("3"), netip.MustParseAddr("198.18.1.3"), ipA); !errors.Is(err, errs.Mem) {
		t.Fatal(err)
	}
	v.finish(a)
}

func TestCloseFreesQueue(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	a.e.OutputIPv4(v.ipPacket("q"), ipB, ipA)
	a.e.Close()
	a.e.Close()
	if err := a.e.OutputIPv4(v.ipPacket("late"), ipB, ipA); !errors.Is(err, errs.Clsd) {
		t.Fatal(err)
	}
	a.e.Input(v.rx(frame(macA, macB, wire.EtherTypeIPv4, []byte("late"))))
	v.finish(a)
}

func TestAllocsHotPath(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	a.e.AddStatic(ipB, macB)
	a.e.Input(v.rx(arpFrame(wire.ARPRequest, wire.BroadcastMAC, macC, ipC, [6]byte{}, ipA)))
	a.take()
	a.out = make([]*pbuf.Pbuf, 0, 16)
	a.up.discard = true
	in := frame(macA, macB, wire.EtherTypeIPv4, make([]byte, 100))
	n := testing.AllocsPerRun(100, func() {
		p, _ := v.alloc.Alloc(pbuf.LayerIP, 100, pbuf.RAM)
		a.e.OutputIPv4(p, ipC, ipA)
		a.out[0].Free()
		a.out = a.out[:0]
		q, _ := v.alloc.Alloc(pbuf.LayerRaw, len(in), pbuf.POOL)
		q.CopyIn(in, 0)
		a.e.Input(q)
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
	v.finish(a)
}

// TestQuiet: a quiet Iface (a following core's view of the link) learns the sender of a
// request for its address but neither answers it nor announces; it still asks for the
// next hops it must resolve itself.
func TestQuiet(t *testing.T) {
	v := newEnv(t)
	a := v.node(macA, ipA, v.cfg())
	qc := v.cfg()
	qc.Quiet = true
	b := v.node(macB, ipB, qc)
	b.e.Announce(ipB)
	if f := b.take(); len(f) != 0 {
		t.Fatalf("a quiet Iface announced: %d frames", len(f))
	}
	if err := a.e.OutputIPv4(v.ipPacket("x"), ipB, ipA); err != nil { // a asks for b's address
		t.Fatal(err)
	}
	if n := v.deliver(a, b); n != 1 {
		t.Fatalf("%d frames from a, want its request", n)
	}
	if f := b.take(); len(f) != 0 {
		t.Fatalf("a quiet Iface answered a request: %d frames", len(f))
	}
	if mac, ok := b.e.Lookup(ipA); !ok || mac != macA {
		t.Fatalf("quiet Iface did not learn the requester: %v %v", mac, ok)
	}
	if err := b.e.OutputIPv4(v.ipPacket("x"), ipC, ipB); err != nil {
		t.Fatal(err)
	}
	f := b.take()
	if len(f) != 1 {
		t.Fatalf("%d frames, want a request for %v", len(f), ipC)
	}
	if _, arp := parseARP(t, f[0]); arp.Operation != wire.ARPRequest || arp.TPA != ipC {
		t.Fatalf("quiet Iface sent %+v, want a request for %v", arp, ipC)
	}
	v.finish(a, b)
}
