package dnstest_test

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/dns/dnstest"
	"github.com/wispstack/wisp/wire/dns"
)

// TestServer asks a Server on the loopback over UDP and TCP: both families of a name, a
// name answered only over TCP (truncated over UDP), and an unknown name.
func TestServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		t.Skipf("TCP on the UDP server's port: %v", err)
	}
	s := &dnstest.Server{
		Zone: map[string][]netip.Addr{
			"both.wisp.test.": {netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd42:5eed::1")},
			"big.wisp.test.":  {netip.MustParseAddr("198.18.0.2")},
		},
		TCPOnly: map[string]bool{"big.wisp.test.": true},
		TTL:     7,
	}
	s.ServeUDP(t, pc)
	s.ServeTCP(t, l)

	ask := func(network, name string, typ dns.Type) *dns.Message {
		t.Helper()
		q := dns.Message{Header: dns.Header{ID: 42, RecursionDesired: true},
			Questions: []dns.Question{{Name: name, Type: typ, Class: dns.ClassINET}}}
		req, err := q.Pack(nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial(network, addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var b []byte
		if network == "udp" {
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			b = make([]byte, 1500)
			n, err := c.Read(b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[:n]
		} else {
			if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(req))), req...)); err != nil {
				t.Fatal(err)
			}
			var hdr [2]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				t.Fatal(err)
			}
			b = make([]byte, binary.BigEndian.Uint16(hdr[:]))
			if _, err := io.ReadFull(c, b); err != nil {
				t.Fatal(err)
			}
		}
		var m dns.Message
		if err := m.Unpack(b); err != nil || m.ID != 42 || !m.Response {
			t.Fatalf("%s answer %+v: %v", network, m, err)
		}
		return &m
	}
	if m := ask("udp", "both.wisp.test.", dns.TypeA); len(m.Answers) != 1 || m.Answers[0].Addr != netip.MustParseAddr("198.18.0.1") || m.Answers[0].TTL != 7 {
		t.Errorf("A: %+v", m.Answers)
	}
	if m := ask("udp", "both.wisp.test.", dns.TypeAAAA); len(m.Answers) != 1 || !m.Answers[0].Addr.Is6() {
		t.Errorf("AAAA: %+v", m.Answers)
	}
	if m := ask("udp", "big.wisp.test.", dns.TypeA); !m.Truncated || len(m.Answers) != 0 {
		t.Errorf("over UDP, a TCP-only name: %+v", m)
	}
	if m := ask("tcp", "big.wisp.test.", dns.TypeA); m.Truncated || len(m.Answers) != 1 {
		t.Errorf("over TCP: %+v", m)
	}
	if m := ask("udp", "none.wisp.test.", dns.TypeA); m.RCode != dns.RCodeNameError {
		t.Errorf("unknown name: rcode %d", m.RCode)
	}
	if got := s.Queries(); got != 5 {
		t.Errorf("Queries() = %d, want 5", got)
	}
}
