package wireguard

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/stack/stacktest"
)

// The device's packet mechanics are link/packet's, tested there; these tests check what
// Device adds (tun.Device's other methods, closing the stack) and that Options reach the
// packet link.

var tunAddr = netip.MustParseAddr("198.18.77.1")

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
	if d.Link() != d.Packet().Endpoint() {
		t.Error("Link is not the packet link's Endpoint")
	}
	want := link.Offloads{TxChecksum: true, TSO4: true, TSO6: true, GSOMax: 65535}
	if got := d.Link().(link.Offloader).Offloads(); got != want {
		t.Errorf("Offloads() = %+v, want %+v", got, want)
	}
}

// TestDeviceOptions: BatchSize, QueueLen and NoOffload size the packet link.
func TestDeviceOptions(t *testing.T) {
	d, _ := newTestTUN(t, Options{BatchSize: 8, QueueLen: 16, NoOffload: true})
	if d.BatchSize() != 8 || d.Packet().BatchSize() != 8 {
		t.Errorf("BatchSize %d, want 8", d.BatchSize())
	}
	if room := d.Link().(link.TxRoomer).TxRoom(); room != 16 {
		t.Errorf("TxRoom %d, want QueueLen 16", room)
	}
	if got := d.Link().(link.Offloader).Offloads(); got != (link.Offloads{}) {
		t.Errorf("NoOffload: Offloads() = %+v", got)
	}
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
	if _, err := d.Write([][]byte{{0x45}}, 0); !errors.Is(err, os.ErrClosed) {
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
