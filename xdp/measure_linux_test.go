//go:build linux

package xdp

import (
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/pbuf"
)

// TestMeasureRx measures the receive rate into a dispatcher that frees every frame at
// once, copy mode against RxZeroCopy, with an AF_XDP sender (this package's Link, copy-mode
// TX) on the kernel's end of the veth. Only with WISP_XDP_MEASURE=1 (2 s per case).
func TestMeasureRx(t *testing.T) {
	if os.Getenv("WISP_XDP_MEASURE") != "1" {
		t.Skip("set WISP_XDP_MEASURE=1 to measure")
	}
	needKernel(t)
	for _, size := range []int{60, 1514} {
		for _, zc := range []bool{false, true} {
			r := measureRx(t, size, zc, 2*time.Second)
			t.Logf("%4d-byte frames, rxzc=%-5v: sent %.0f/s, received %.0f/s (%.2f Gbit/s)", size, zc, r.sent, r.rcvd, r.rcvd*float64(size)*8/1e9)
		}
	}
}

type rates struct{ sent, rcvd float64 }

func measureRx(t *testing.T, size int, zc bool, dur time.Duration) rates {
	p := newPair(t, 1)
	a := newAlloc()
	c := Config{}
	if zc {
		c.RxZeroCopy, c.Alloc = true, a
	}
	rx := openIn(t, p, c)
	defer rx.Close()
	d := linktest.NewDispatcher(a)
	d.Discard = true
	rx.Attach(d)
	var tx *Link
	if err := inNetns(p.nsK, func() error {
		var err error
		tx, err = Open(Config{Interface: ifK, Addrs: []netip.Addr{}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	frame := udpFrame(p, 9, make([]byte, size-42))
	copy(frame[0:6], p.macX)
	copy(frame[6:12], p.macK)
	copy(frame[26:30], []byte{198, 18, 0, 1})
	copy(frame[30:34], []byte{198, 18, 0, 2})
	ta := newAlloc()
	ps := make([]*pbuf.Pbuf, 64)
	sent := 0
	start := time.Now()
	for time.Since(start) < dur {
		for i := range ps {
			ps[i], _ = ta.Alloc(pbuf.LayerRaw, len(frame), pbuf.RAM)
			ps[i].CopyIn(frame, 0)
		}
		n, err := tx.WritePackets(ps)
		sent += n
		if err == errs.WouldBlock {
			runtime.Gosched()
		}
	}
	el := time.Since(start)
	time.Sleep(50 * time.Millisecond)
	got := d.Count()
	t.Logf("rx %+v", rx.DeviceStats(nil)[0])
	return rates{float64(sent) / el.Seconds(), float64(got) / el.Seconds()}
}
