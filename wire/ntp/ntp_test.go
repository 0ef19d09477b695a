package ntp

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/wispstack/wisp/wire"
)

// fixture: a chrony-style server reply (mode 4, stratum 8, LOCL reference is 127.127.1.1).
var fixture = []byte{
	0x24, 0x08, 0x06, 0xe9, // LI 0, VN 4, mode 4; stratum 8; poll 6; precision -23
	0x00, 0x00, 0x00, 0x10, // root delay 16/65536 s
	0x00, 0x00, 0x00, 0x20, // root dispersion
	0x7f, 0x7f, 0x01, 0x01, // reference ID
	0xe9, 0x3c, 0x8a, 0x00, 0x00, 0x00, 0x00, 0x00, // reference
	0xe9, 0x3c, 0x8a, 0x10, 0x80, 0x00, 0x00, 0x00, // origin
	0xe9, 0x3c, 0x8a, 0x10, 0x80, 0x10, 0x00, 0x00, // receive
	0xe9, 0x3c, 0x8a, 0x10, 0x80, 0x20, 0x00, 0x00, // transmit
}

func TestFixture(t *testing.T) {
	var r Repr
	if err := r.Parse(fixture); err != nil {
		t.Fatal(err)
	}
	want := Repr{Leap: LeapNone, Version: 4, Mode: ModeServer, Stratum: 8, Poll: 6, Precision: -23,
		RootDelay: 16, RootDispersion: 32, ReferenceID: [4]byte{127, 127, 1, 1},
		ReferenceTime: 0xe93c8a00_00000000, OriginTime: 0xe93c8a10_80000000,
		ReceiveTime: 0xe93c8a10_80100000, TransmitTime: 0xe93c8a10_80200000}
	if r != want {
		t.Fatalf("parsed %+v\nwant   %+v", r, want)
	}
	h := Header(fixture)
	if _, kiss := h.KissCode(); kiss {
		t.Error("stratum 8 read as a kiss")
	}
	out := make([]byte, HeaderLen)
	if err := r.Emit(out); err != nil || !bytes.Equal(out, fixture) {
		t.Fatalf("emit %x, %v\nwant %x", out, err, fixture)
	}
	if err := Check(fixture[:47]); !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("47 bytes: %v", err)
	}
	if err := r.Emit(out[:47]); !errors.Is(err, wire.ErrBufferTooSmall) {
		t.Errorf("emit into 47 bytes: %v", err)
	}
	bad := want
	bad.Leap = 4
	if err := bad.Emit(out); !errors.Is(err, wire.ErrRepr) {
		t.Errorf("leap 4: %v", err)
	}
	// Version 0 emits 4.
	r.Version = 0
	_ = r.Emit(out)
	if Header(out).Version() != 4 {
		t.Errorf("version 0 emitted as %d", Header(out).Version())
	}
}

func TestKissCodes(t *testing.T) {
	b := bytes.Clone(fixture)
	b[1] = 0
	for _, k := range []KissCode{KissRATE, KissDENY, KissRSTR} {
		copy(b[12:], k.String())
		got, ok := Header(b).KissCode()
		if !ok || got != k {
			t.Errorf("%v: got %v %v", k, got, ok)
		}
	}
	if KissCode(0x41ff4243).String() != "A?BC" {
		t.Error(KissCode(0x41ff4243).String())
	}
}

func TestTimestampConversions(t *testing.T) {
	rollover := time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC)
	cases := []time.Time{
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 2, 40, 0, 123456789, time.UTC),
		rollover.Add(-time.Nanosecond),
		rollover,
		rollover.Add(time.Second + 500*time.Millisecond),
		time.Date(2100, 6, 1, 0, 0, 0, 999999999, time.UTC),
	}
	for _, tm := range cases {
		ts := FromTime(tm)
		got := ts.Time(tm.Add(10 * 365 * 24 * time.Hour)) // a pivot ten years off still picks the era
		if d := got.Sub(tm); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("%v: via %#x back as %v", tm, uint64(ts), got)
		}
	}
	if ts := FromTime(rollover); ts != 0 {
		t.Errorf("rollover is %#x, want 0 (era 1 second 0)", uint64(ts))
	}
	if got := Timestamp(0).TimeRFC4330(); !got.Equal(rollover) {
		t.Errorf("RFC 4330 rule: 0 is %v", got)
	}
	if got := Timestamp(0x80000000_00000000).TimeRFC4330(); got.Year() != 1968 {
		t.Errorf("RFC 4330 rule: MSB set is %v", got)
	}
	// Across the rollover: a server just past it, a client just before.
	client := rollover.Add(-time.Second)
	server := FromTime(rollover.Add(time.Second))
	if got := server.Time(client); got.Sub(client) != 2*time.Second {
		t.Errorf("across the rollover: %v", got.Sub(client))
	}
	// The fraction: 0x80000000 is half a second.
	if got := Timestamp(0xe93c8a10_80000000).Time(cases[2]).Nanosecond(); got != 500_000_000 {
		t.Errorf("half: %d ns", got)
	}
	if ShortFrom(1500*time.Millisecond) != 0x00018000 || Short(0x00018000).Duration() != 1500*time.Millisecond {
		t.Error("short format")
	}
	if ShortFrom(-time.Second) != 0 || ShortFrom(100000*time.Second) != 0xffffffff {
		t.Error("short format clamps")
	}
}

func TestNoAllocs(t *testing.T) {
	var r Repr
	out := make([]byte, HeaderLen)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		_ = r.Parse(fixture)
		_ = r.Emit(out)
		_ = FromTime(now).Time(now)
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

func FuzzHeader(f *testing.F) {
	f.Add(fixture)
	f.Add(fixture[:47])
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Repr
		if r.Parse(b) != nil {
			return
		}
		h := Header(b)
		_, _ = h.KissCode()
		_ = h.TransmitTime().Time(time.Unix(0, 0))
		out := make([]byte, HeaderLen)
		if err := r.Emit(out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b[:HeaderLen]) && Header(b).Version() != 0 {
			t.Fatalf("round trip %x -> %x", b[:HeaderLen], out)
		}
	})
}
