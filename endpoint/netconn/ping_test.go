package netconn_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
)

// echoRequest builds an ICMP (v6: ICMPv6) echo request with seq and data; the stack fills
// in the identifier and the checksum.
func echoRequest(v6 bool, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	b[0] = 8
	if v6 {
		b[0] = 128
	}
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	return b
}

// Ping the other stack in both families: the reply carries our identifier, seq and data.
func TestPing(t *testing.T) {
	inBothFamilies(t, func(t *testing.T, fam int, a, _ *stack.Stack) {
		v6 := fam == 1
		c, err := netconn.DialPing(a, netip.Addr{}, addrB[fam])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		data := []byte("wisp ping payload")
		if _, err := c.Write(echoRequest(v6, 7, data)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		want := byte(0)
		if v6 {
			want = 129
		}
		if from != addrB[fam] || n != 8+len(data) || buf[0] != want ||
			binary.BigEndian.Uint16(buf[4:]) != c.Ident() || binary.BigEndian.Uint16(buf[6:]) != 7 ||
			!bytes.Equal(buf[8:n], data) {
			t.Fatalf("reply from %v: % x (ident %d)", from, buf[:n], c.Ident())
		}
		// Unconnected socket: WriteTo.
		l, err := netconn.ListenPing(a, addrA[fam])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.WriteTo(echoRequest(v6, 8, nil), addrB[fam]); err != nil {
			t.Fatal(err)
		}
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, from, err = l.ReadFrom(buf); err != nil || from != addrB[fam] || n != 8 {
			t.Fatalf("ReadFrom: %d %v %v", n, from, err)
		}
		if _, err := l.WriteTo([]byte{1, 2, 3, 4, 5, 6, 7, 8}, addrB[fam]); !errors.Is(err, errs.Val) {
			t.Errorf("not an echo request: %v", err)
		}
		closeReleasesRead(t, l, func() error { _, _, err := l.ReadFrom(buf); return err })
	})
}
