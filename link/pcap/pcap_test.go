package pcap

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/link/linktest"
	"github.com/wispstack/wisp/link/pipe"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/wire"
)

func ethFrame(dst, src wire.MAC, typ wire.EtherType, payload []byte) []byte {
	b := make([]byte, wire.EthernetHeaderLen+len(payload))
	(&wire.EthernetRepr{Dst: dst, Src: src, EtherType: typ}).Emit(b)
	copy(b[wire.EthernetHeaderLen:], payload)
	return b
}

// ipv4 returns a minimal valid IPv4 header with payload.
func ipv4(payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	b[2], b[3] = byte(len(b)>>8), byte(len(b))
	b[8], b[9] = 64, 17
	copy(b[12:], []byte{198, 18, 0, 1, 198, 18, 0, 2})
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	c := ^uint16(s)
	b[10], b[11] = byte(c>>8), byte(c)
	copy(b[20:], payload)
	return b
}

func TestEthernetCaptureReadBack(t *testing.T) {
	base := linktest.Goroutines()
	alloc := linktest.NewAllocator()
	clk := clock.NewFake(time.Unix(1700000000, 123456789))
	a, b := pipe.New(pipe.Config{Sync: true})
	var file bytes.Buffer
	l, err := Wrap(a, &file, 0, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	atA, atB := linktest.NewDispatcher(alloc), linktest.NewDispatcher(alloc)
	l.Attach(atA)
	b.Attach(atB)

	arp := make([]byte, wire.ARPLen)
	wire.EmitARP(arp, wire.ARPRequest, a.HardwareAddr(), netip.MustParseAddr("198.18.0.1"), wire.MAC{}, netip.MustParseAddr("198.18.0.2"))
	frames := [][]byte{
		ethFrame(wire.BroadcastMAC, a.HardwareAddr(), wire.EtherTypeARP, arp),
		ethFrame(b.HardwareAddr(), a.HardwareAddr(), wire.EtherTypeIPv4, ipv4([]byte("hello, udp-ish"))),
	}
	for _, f := range frames {
		l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, f)})
		clk.Advance(time.Millisecond)
	}
	reply := ethFrame(a.HardwareAddr(), b.HardwareAddr(), wire.EtherTypeIPv4, ipv4([]byte("back")))
	b.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, reply)})
	b.Flush()
	frames = append(frames, reply)
	if atA.Count() != 1 || atB.Count() != 2 || l.Records() != 3 || l.Err() != nil {
		t.Fatal(atA.Count(), atB.Count(), l.Records(), l.Err())
	}
	l.Close()
	l.Close()

	r, err := pcapgo.NewReader(bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatal(r.LinkType())
	}
	for i, want := range frames {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, want) || ci.Length != len(want) {
			t.Fatalf("record %d differs", i)
		}
		if wantT := time.Unix(1700000000, 123456000).Add(time.Duration(i) * time.Millisecond); !ci.Timestamp.Equal(wantT) {
			t.Fatalf("record %d at %v, want %v", i, ci.Timestamp, wantT)
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Fatal("extra records", err)
	}
	tshark(t, file.Bytes())
	linktest.CheckZero(t, alloc)
	linktest.CheckGoroutines(t, base)
}

// tshark checks the file with tshark when it is installed.
func tshark(t *testing.T, file []byte) {
	path, err := exec.LookPath("tshark")
	if err != nil {
		t.Log("tshark not installed; skipping its check")
		return
	}
	name := filepath.Join(t.TempDir(), "capture.pcap")
	if err := os.WriteFile(name, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "-r", name).CombinedOutput(); err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
}

func TestRawNanoSnaplen(t *testing.T) {
	alloc := linktest.NewAllocator()
	clk := clock.NewFake(time.Unix(5, 999))
	a, b := pipe.New(pipe.Config{Sync: true, Medium: link.MediumIP})
	var file bytes.Buffer
	l, err := Wrap(a, &file, 30, WithClock(clk), WithNanoseconds())
	if err != nil {
		t.Fatal(err)
	}
	d := linktest.NewDispatcher(alloc)
	b.Attach(d)
	pkt := ipv4(make([]byte, 100))
	l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, pkt)})
	b.Flush()
	r, err := pcapgo.NewReader(bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw && r.LinkType() != 101 {
		t.Fatal(r.LinkType())
	}
	data, ci, err := r.ReadPacketData()
	if err != nil || !bytes.Equal(data, pkt[:30]) || ci.Length != 120 || ci.CaptureLength != 30 ||
		!ci.Timestamp.Equal(time.Unix(5, 999)) {
		t.Fatal(err, len(data), ci)
	}
	l.Close()
	linktest.CheckZero(t, alloc)
}

type failWriter struct{ n int }

func (w *failWriter) Write(b []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(b), nil
}

func TestWriteErrorAndAllocs(t *testing.T) {
	alloc := linktest.NewAllocator()
	if _, err := Wrap(mustPipe(), &failWriter{}, 0); err == nil {
		t.Fatal("header write error not reported")
	}
	a, b := pipe.New(pipe.Config{Sync: true})
	l, err := Wrap(a, io.Discard, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := linktest.NewDispatcher(alloc)
	d.Discard = true
	b.Attach(d)
	ps := make([]*pbuf.Pbuf, 4)
	n := testing.AllocsPerRun(100, func() {
		for i := range ps {
			ps[i], _ = alloc.Alloc(pbuf.LayerLink, 600, pbuf.RAM)
		}
		l.WritePackets(ps)
		b.Flush()
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
	l.Close()

	a, _ = pipe.New(pipe.Config{Sync: true})
	l, _ = Wrap(a, &failWriter{n: 2}, 0)
	for range 3 {
		l.WritePackets([]*pbuf.Pbuf{linktest.Frame(t, alloc, make([]byte, 60))})
	}
	if l.Err() == nil || l.Records() != 1 {
		t.Fatal(l.Err(), l.Records())
	}
	l.Close()
	linktest.CheckZero(t, alloc)
}

func mustPipe() link.Endpoint {
	a, b := pipe.New(pipe.Config{Sync: true})
	b.Close()
	return a
}
