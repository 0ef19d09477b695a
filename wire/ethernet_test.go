package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

var ethFixture = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst: broadcast
	0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // src
	0x08, 0x06, // ARP
	0xde, 0xad, // payload
}

func TestEthernetFixture(t *testing.T) {
	if err := CheckEthernet(ethFixture); err != nil {
		t.Fatal(err)
	}
	e := Ethernet(ethFixture)
	if !e.Dst().IsBroadcast() || !e.Dst().IsMulticast() {
		t.Errorf("dst %v not broadcast", e.Dst())
	}
	if got := e.Src().String(); got != "02:00:5e:10:20:30" {
		t.Errorf("src %q", got)
	}
	if !e.Src().IsUnicast() || e.Src().IsMulticast() {
		t.Errorf("src should be unicast")
	}
	if e.EtherType() != EtherTypeARP || e.EtherType().String() != "ARP" {
		t.Errorf("ethertype %v", e.EtherType())
	}
	if EtherType(0x88cc).String() != "0x88cc" {
		t.Errorf("unknown ethertype prints %q", EtherType(0x88cc).String())
	}
	if !bytes.Equal(e.Payload(), []byte{0xde, 0xad}) {
		t.Errorf("payload % x", e.Payload())
	}
	var r EthernetRepr
	if err := r.Parse(ethFixture); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 14)
	if err := r.Emit(out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, ethFixture[:14]) {
		t.Errorf("emit % x", out)
	}
	if err := CheckEthernet(ethFixture[:13]); !errors.Is(err, ErrTruncated) {
		t.Errorf("short frame: %v", err)
	}
	if err := r.Emit(out[:13]); !errors.Is(err, ErrBufferTooSmall) {
		t.Errorf("short emit: %v", err)
	}
}

func TestMulticastMAC(t *testing.T) {
	// RFC 1112 §6.4: 224.0.0.1 -> 01:00:5e:00:00:01; the 24th bit is dropped.
	if got := IPv4MulticastMAC(netip.MustParseAddr("239.255.0.1")); got != (MAC{0x01, 0x00, 0x5e, 0x7f, 0x00, 0x01}) {
		t.Errorf("239.255.0.1 -> %v", got)
	}
	if got := IPv4MulticastMAC(netip.MustParseAddr("224.128.0.1")); got != (MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}) {
		t.Errorf("224.128.0.1 -> %v", got)
	}
	// RFC 2464 §7: ff02::1:ff00:2 -> 33:33:ff:00:00:02.
	if got := IPv6MulticastMAC(netip.MustParseAddr("ff02::1:ff00:2")); got != (MAC{0x33, 0x33, 0xff, 0x00, 0x00, 0x02}) {
		t.Errorf("ff02::1:ff00:2 -> %v", got)
	}
	if IPv6MulticastMAC(netip.MustParseAddr("10.0.0.1")) != (MAC{}) || IPv4MulticastMAC(netip.MustParseAddr("ff02::1")) != (MAC{}) {
		t.Errorf("wrong family should map to zero MAC")
	}
}

func FuzzEthernet(f *testing.F) {
	f.Add(ethFixture)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r EthernetRepr
		if err := r.Parse(b); err != nil {
			return
		}
		e := Ethernet(b)
		_, _, _ = e.Dst().String(), e.Payload(), e.EtherType().String()
		out := make([]byte, r.HeaderLen())
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		var r2 EthernetRepr
		if err := r2.Parse(out); err != nil || r2 != r {
			t.Fatalf("round trip: %+v %v != %+v", r2, err, r)
		}
	})
}
