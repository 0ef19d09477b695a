package dhcpv4

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// offerFixture is a DHCPOFFER as a server writes it (RFC 2131 Figure 1, fields in order),
// written out by hand: xid 0x3903f326, broadcast flag, yiaddr 198.18.0.100, siaddr
// 198.18.0.1, chaddr 02:00:00:00:00:0a, then options 53=2, 54, 51=3600, 1=/24, 3, 6 (two
// servers), end.
func offerFixture() []byte {
	h := "" +
		"02010600" + // op BOOTREPLY, htype 1, hlen 6, hops 0
		"3903f326" + // xid
		"0000" + "8000" + // secs, flags BROADCAST
		"00000000" + // ciaddr
		"c6120064" + // yiaddr 198.18.0.100
		"c6120001" + // siaddr 198.18.0.1
		"00000000" + // giaddr
		"02000000000a" + strings.Repeat("00", 10) + // chaddr
		strings.Repeat("00", 64+128) + // sname, file
		"63825363" + // magic cookie
		"350102" + // 53: OFFER
		"3604c6120001" + // 54: server 198.18.0.1
		"330400000e10" + // 51: 3600 s
		"0104ffffff00" + // 1: 255.255.255.0
		"0304c6120001" + // 3: router
		"0608c6120001c6120002" + // 6: two DNS servers
		"ff"
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseOfferFixture(t *testing.T) {
	b := offerFixture()
	if err := Check(b); err != nil {
		t.Fatal(err)
	}
	m := Message(b)
	if m.Op() != OpReply || m.XID() != 0x3903f326 || m.Flags() != FlagBroadcast || m.Type() != Offer {
		t.Fatalf("view: op %d xid %#x flags %#x type %v", m.Op(), m.XID(), m.Flags(), m.Type())
	}
	var r Repr
	if err := r.Parse(b); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	want := Repr{Op: OpReply, XID: 0x3903f326, Broadcast: true, YIAddr: a("198.18.0.100"), SIAddr: a("198.18.0.1"),
		CHAddr: [6]byte{2, 0, 0, 0, 0, 10}, Type: Offer, ServerID: a("198.18.0.1"), LeaseTime: 3600,
		SubnetMask: a("255.255.255.0"), Routers: []netip.Addr{a("198.18.0.1")}, DNS: []netip.Addr{a("198.18.0.1"), a("198.18.0.2")}}
	if !equal(&r, &want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", r, want)
	}
	// Emit writes the same bytes, padded to MinEmitLen.
	out := make([]byte, 600)
	n, err := want.Emit(out)
	if err != nil {
		t.Fatal(err)
	}
	if n != MinEmitLen || !bytes.Equal(out[:len(b)], b) || !bytes.Equal(out[len(b):n], make([]byte, n-len(b))) {
		t.Fatalf("emit %d bytes:\n%x\nwant\n%x", n, out[:n], b)
	}
	if MaskBits(r.SubnetMask) != 24 || MaskBits(a("255.0.255.0")) != -1 {
		t.Fatal("MaskBits")
	}
}

func equal(a, b *Repr) bool {
	return reflect.DeepEqual(norm(*a), norm(*b))
}

// norm makes empty slices nil, so that DeepEqual compares contents.
func norm(r Repr) Repr {
	for _, p := range []*[]netip.Addr{&r.Routers, &r.DNS} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	for _, p := range []*[]byte{&r.Hostname, &r.ClientID, &r.ParamRequest, &r.Message} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return r
}

func TestRoundTripRequest(t *testing.T) {
	a := netip.MustParseAddr
	r := Repr{Op: OpRequest, XID: 7, Secs: 3, Broadcast: true, CHAddr: [6]byte{2, 1, 2, 3, 4, 5}, Type: Request,
		RequestedIP: a("198.18.0.100"), ServerID: a("198.18.0.1"), MaxSize: 1500,
		Hostname: []byte("wisp"), ClientID: []byte{1, 2, 1, 2, 3, 4, 5}, ParamRequest: []byte{1, 3, 6, 51, 58, 59}}
	b := make([]byte, r.Len())
	if _, err := r.Emit(b); err != nil {
		t.Fatal(err)
	}
	var got Repr
	if err := got.Parse(b); err != nil {
		t.Fatal(err)
	}
	if !equal(&got, &r) {
		t.Fatalf("round trip\n%+v\nwant\n%+v", got, r)
	}
	// Every message type and field survives.
	for typ := Discover; typ <= Inform; typ++ {
		r := Repr{Op: OpRequest, XID: uint32(typ), Type: typ, CIAddr: a("198.18.0.9"), GIAddr: a("198.18.1.1"),
			LeaseTime: 0xffffffff, T1: 1, T2: 2, Message: []byte("no")}
		b := make([]byte, r.Len())
		if _, err := r.Emit(b); err != nil {
			t.Fatal(err)
		}
		var got Repr
		if err := got.Parse(b); err != nil || !equal(&got, &r) || got.Type.String() == "" {
			t.Fatalf("%v: %v %+v", typ, err, got)
		}
	}
}

func TestOverload(t *testing.T) {
	// Option 52 = 3: the file and sname fields carry options too (RFC 2131 §4.1 order:
	// options, file, sname).
	r := Repr{Op: OpReply, Type: Ack}
	b := make([]byte, r.Len())
	if _, err := r.Emit(b); err != nil {
		t.Fatal(err)
	}
	opts := b[MinLen:]
	copy(opts[3:], []byte{OptOverload, 1, 3, OptEnd})
	copy(Message(b).File(), []byte{OptLeaseTime, 4, 0, 0, 0, 60, OptEnd})
	copy(Message(b).SName(), []byte{OptPad, OptServerID, 4, 198, 18, 0, 1, OptEnd})
	var got Repr
	if err := got.Parse(b); err != nil {
		t.Fatal(err)
	}
	if got.LeaseTime != 60 || got.ServerID != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("overloaded options not read: %+v", got)
	}
	// Without option 52 the fields are not options.
	copy(opts[3:], []byte{OptEnd, 0, 0})
	if err := got.Parse(b); err != nil || got.LeaseTime != 0 {
		t.Fatalf("file read as options: %v %+v", err, got)
	}
	// A bad overload value is refused.
	copy(opts[3:], []byte{OptOverload, 1, 4, OptEnd})
	if err := Check(b); !errors.Is(err, ErrOption) {
		t.Fatalf("overload 4: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	good := offerFixture()
	cases := map[string]struct {
		b   []byte
		err error
	}{
		"short":     {good[:MinLen-1], ErrTruncated},
		"cookie":    {func() []byte { b := bytes.Clone(good); b[HeaderLen] = 0; return b }(), ErrCookie},
		"opt len":   {good[:len(good)-3], ErrOption},
		"no length": {append(bytes.Clone(good[:MinLen]), OptRouter), ErrOption},
	}
	for name, c := range cases {
		if err := Check(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: Check = %v, want %v", name, err, c.err)
		}
	}
	bad := func(opt ...byte) []byte {
		return append(append(bytes.Clone(good[:MinLen]), 53, 1, 5), append(opt, OptEnd)...)
	}
	var r Repr
	for _, b := range [][]byte{bad(OptRouter, 3, 1, 2, 3), bad(OptLeaseTime, 2, 0, 0), bad(OptServerID, 0),
		bad(OptMessageType, 1, 5), bad(OptMaxMessageSize, 1, 0)} {
		if err := r.Parse(b); err == nil {
			t.Errorf("%x parsed", b[MinLen:])
		}
	}
	noType := append(bytes.Clone(good[:MinLen]), OptEnd)
	if err := r.Parse(noType); !errors.Is(err, ErrRepr) {
		t.Errorf("no type: %v", err)
	}
	if _, err := (&Repr{Type: Ack}).Emit(make([]byte, 10)); !errors.Is(err, ErrShort) {
		t.Errorf("short emit: %v", err)
	}
	if _, err := (&Repr{Type: Ack, CIAddr: netip.MustParseAddr("fd42:5eed::1")}).Emit(make([]byte, 600)); !errors.Is(err, ErrRepr) {
		t.Errorf("IPv6 emit: %v", err)
	}
}

func TestParseAllocs(t *testing.T) {
	b := offerFixture()
	r := Repr{Routers: make([]netip.Addr, 0, 4), DNS: make([]netip.Addr, 0, 4)}
	out := make([]byte, 600)
	if n := testing.AllocsPerRun(100, func() {
		if r.Parse(b) != nil {
			t.Fatal("parse")
		}
		if _, err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		_, _ = Message(b).Option(OptDNS)
	}); n != 0 {
		t.Fatalf("%v allocations per Parse+Emit", n)
	}
}

func FuzzParseDHCPv4(f *testing.F) {
	f.Add(offerFixture())
	r := Repr{Type: Discover, Hostname: []byte("h"), ParamRequest: []byte{1, 3}}
	b := make([]byte, r.Len())
	_, _ = r.Emit(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b) != nil {
			return
		}
		m := Message(b)
		_, _ = m.Option(OptDNS)
		_ = m.Type().String()
		var r Repr
		if r.Parse(b) != nil {
			return
		}
		// What parses emits, and the emitted form parses to the same.
		out := make([]byte, r.Len())
		if _, err := r.Emit(out); err != nil {
			if len(r.Routers) > 63 || len(r.DNS) > 63 {
				return
			}
			t.Fatalf("emit of a parsed message: %v %+v", err, r)
		}
		var again Repr
		if err := again.Parse(out); err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !equal(&again, &r) {
			t.Fatalf("round trip\n%+v\n%+v", again, r)
		}
	})
}
