package wireguard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

var (
	tunAddr  = netip.MustParseAddr("198.18.77.1")
	peerAddr = netip.MustParseAddr("198.18.77.2")
)

// echoRequest builds an IPv4 ICMP echo request from src to dst at offset off of a buffer.
func echoRequest(off int, src, dst netip.Addr, id, seq uint16, data []byte) []byte {
	b := make([]byte, off+20+8+len(data))
	ip := b[off:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8] = 64
	ip[9] = 1
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], wire.Finish(wire.Checksum(ip[:20], 0)))
	icmp := ip[20:]
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], data)
	binary.BigEndian.PutUint16(icmp[2:], wire.Finish(wire.Checksum(icmp, 0)))
	return b
}

func newTestTUN(t *testing.T, o Options) (*Device, *Net) {
	t.Helper()
	stacktest.NoGoroutineLeak(t)
	if o.Seed == 0 {
		o.Seed = 1
	}
	td, n, err := CreateNetTUNWithOptions([]netip.Addr{tunAddr}, nil, 1420, o)
	if err != nil {
		t.Fatal(err)
	}
	d := td.(*Device)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		stacktest.PoolsZero(t, n.Stack())
	})
	return d, n
}

func TestDeviceBasics(t *testing.T) {
	d, _ := newTestTUN(t, Options{})
	if ev := <-d.Events(); ev != tun.EventUp {
		t.Errorf("first event %v, want EventUp", ev)
	}
	if name, _ := d.Name(); name != "wisp" {
		t.Errorf("Name %q", name)
	}
	if mtu, _ := d.MTU(); mtu != 1420 {
		t.Errorf("MTU %d", mtu)
	}
	if d.BatchSize() <= 1 {
		t.Errorf("BatchSize %d, want > 1", d.BatchSize())
	}
	if d.File() != nil {
		t.Error("File not nil")
	}
}

// TestDeviceEcho writes echo requests in one batch and reads the replies in one Read.
func TestDeviceEcho(t *testing.T) {
	d, _ := newTestTUN(t, Options{BatchSize: 8}) // the default batch is smaller
	const off, n = 16, 8
	var in [][]byte
	for i := range n {
		in = append(in, echoRequest(off, peerAddr, tunAddr, 7, uint16(i), []byte("wisp under wireguard")))
	}
	if w, err := d.Write(in, off); err != nil || w != n {
		t.Fatalf("Write = %d, %v", w, err)
	}
	bufs := make([][]byte, d.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, off+1500)
	}
	sizes := make([]int, len(bufs))
	got := 0
	for got < n {
		r, err := d.Read(bufs, sizes, off)
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 && r != n {
			t.Errorf("first Read returned %d packets, want the whole batch of %d", r, n)
		}
		for i := range r {
			p := bufs[i][off : off+sizes[i]]
			if p[9] != 1 || p[20] != 0 || !bytes.Equal(p[16:20], peerAddr.AsSlice()) {
				t.Fatalf("packet %d is not an echo reply to the peer: % x", i, p[:28])
			}
			if seq := binary.BigEndian.Uint16(p[26:]); int(seq) != got+i {
				t.Errorf("reply %d has seq %d", got+i, seq)
			}
		}
		got += r
	}
	if tx, txd, rx, rxd := d.Stats(); tx != n || rx != n || txd != 0 || rxd != 0 {
		t.Errorf("Stats = tx %d (%d dropped), rx %d (%d dropped)", tx, txd, rx, rxd)
	}
}

// TestDeviceAllocs pins both directions at zero allocations per packet: Write (into the
// stack, which answers) and Read (out of the ring).
func TestDeviceAllocs(t *testing.T) {
	d, _ := newTestTUN(t, Options{})
	const off = 16
	in := [][]byte{echoRequest(off, peerAddr, tunAddr, 9, 1, make([]byte, 1000))}
	bufs := [][]byte{make([]byte, off+1500), make([]byte, off+1500)}
	sizes := make([]int, 2)
	round := func() {
		if _, err := d.Write(in, off); err != nil {
			t.Fatal(err)
		}
		if r, err := d.Read(bufs, sizes, off); err != nil || r != 1 {
			t.Fatalf("Read = %d, %v", r, err)
		}
	}
	round() // warm up
	if a := testing.AllocsPerRun(200, round); a != 0 {
		t.Errorf("%v allocations per echo round trip, want 0", a)
	}
}

// TestDeviceRingFull: the stack never blocks on a full ring; frames past it are dropped
// and reported, and the ring's room is visible to the stack.
func TestDeviceRingFull(t *testing.T) {
	d, n := newTestTUN(t, Options{QueueLen: 4})
	l := d.Link().(*linkEP)
	alloc := n.Stack().Allocator()
	var pkts []*pbuf.Pbuf
	for range 6 {
		p, err := alloc.Alloc(pbuf.LayerRaw, 100, pbuf.POOL)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	if room := l.TxRoom(); room != 4 {
		t.Errorf("TxRoom = %d, want 4", room)
	}
	w, err := l.WritePackets(pkts)
	if w != 4 || !errors.Is(err, errs.WouldBlock) {
		t.Errorf("WritePackets = %d, %v; want 4, WouldBlock", w, err)
	}
	if room := l.TxRoom(); room != 0 {
		t.Errorf("TxRoom = %d, want 0", room)
	}
	big, _ := alloc.Alloc(pbuf.LayerRaw, 1421, pbuf.POOL)
	bufs := [][]byte{make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)}
	sizes := make([]int, 3)
	if r, err := d.Read(bufs, sizes, 0); r != 3 || err != nil || sizes[0] != 100 {
		t.Errorf("Read = %d, %v (size %d)", r, err, sizes[0])
	}
	if w, err := l.WritePackets([]*pbuf.Pbuf{big}); w != 0 || !errors.Is(err, errs.Val) {
		t.Errorf("WritePackets(too long) = %d, %v", w, err)
	}
	// One frame is left in the ring; Close frees it.
}

// TestDeviceCloseUnblocksRead: Close ends a blocked Read with os.ErrClosed, makes Write
// fail, closes Events and leaves nothing behind (checked by newTestTUN's cleanup).
func TestDeviceCloseUnblocksRead(t *testing.T) {
	d, n := newTestTUN(t, Options{})
	done := make(chan error, 1)
	go func() {
		bufs := [][]byte{make([]byte, 1500)}
		_, err := d.Read(bufs, make([]int, 1), 0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	l, err := n.ListenTCPAddrPort(netip.AddrPortFrom(tunAddr, 80))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stacktest.WaitErr(t, done, 5*time.Second, "Read after Close"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
	if _, err := d.Write([][]byte{echoRequest(0, peerAddr, tunAddr, 1, 1, nil)}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := l.Accept(); err == nil {
		t.Error("Accept on a closed stack succeeded")
	}
	for range d.Events() {
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// countingDispatcher passes frames on to the stack and records the size of each batch.
type countingDispatcher struct {
	link.Dispatcher
	batches []int
}

func (c *countingDispatcher) DeliverPackets(pkts []*pbuf.Pbuf) {
	c.batches = append(c.batches, len(pkts))
	c.Dispatcher.DeliverPackets(pkts)
}

// TestWriteDeliversOnce: the batch of one Write reaches the stack in one DeliverPackets
// call, larger than BatchSize too (wireguard-go's batch is the larger of its bind's and
// the device's), so that the stack's GRO sees all of it.
func TestWriteDeliversOnce(t *testing.T) {
	d, _ := newTestTUN(t, Options{BatchSize: 8, QueueLen: 512})
	cd := &countingDispatcher{Dispatcher: d.disp.Load().d}
	d.Link().Attach(cd)
	const off = 16
	for _, n := range []int{1, 8, 100} {
		cd.batches = cd.batches[:0]
		var in [][]byte
		for i := range n {
			in = append(in, echoRequest(off, peerAddr, tunAddr, 3, uint16(i), []byte("one batch")))
		}
		in = append(in, make([]byte, off)) // an empty packet is skipped
		if w, err := d.Write(in, off); err != nil || w != len(in) {
			t.Fatalf("Write = %d, %v", w, err)
		}
		if fmt.Sprint(cd.batches) != fmt.Sprint([]int{n}) {
			t.Errorf("Write of %d packets: DeliverPackets batches %v, want one of %d", n, cd.batches, n)
		}
		readAll(t, d, n, 64, 1500, 0) // the replies
	}
}
