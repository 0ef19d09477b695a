// Package dnstest serves DNS to tests: a Server answers A and AAAA queries from a fixed zone,
// over UDP and over TCP, with the wire/dns codec, until the test ends.
//
// Layer: endpoint (imports wire/dns, the standard library and testing). For tests only.
// Safe for concurrent use once its fields are set.
package dnstest

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wispstack/wisp/wire/dns"
)

// Server answers A and AAAA queries (RFC 1035 §4.1) for the names in Zone from its
// addresses of the query's family; other names get NXDOMAIN.
type Server struct {
	// Zone maps absolute names ("host.example.") to their addresses.
	Zone map[string][]netip.Addr
	// TCPOnly names get a truncated answer over UDP, so that a client asks again over TCP.
	TCPOnly map[string]bool
	// TTL of the answers' records (0: 60 s).
	TTL uint32

	queries atomic.Int64
}

// Queries returns the number of queries the server has read, over UDP and TCP.
func (s *Server) Queries() int { return int(s.queries.Load()) }

// answer returns the response to the query req, or nil when req is not a query of one
// question.
func (s *Server) answer(req []byte, udp bool) []byte {
	var q dns.Message
	if q.Unpack(req) != nil || len(q.Questions) != 1 {
		return nil
	}
	s.queries.Add(1)
	ttl := s.TTL
	if ttl == 0 {
		ttl = 60
	}
	m := dns.Message{Header: dns.Header{ID: q.ID, Response: true, RecursionDesired: q.RecursionDesired,
		RecursionAvailable: true, Authoritative: true}, Questions: q.Questions}
	qq := q.Questions[0]
	addrs, ok := s.Zone[qq.Name]
	switch {
	case !ok:
		m.RCode = dns.RCodeNameError
	case udp && s.TCPOnly[qq.Name]:
		m.Truncated = true
	default:
		for _, a := range addrs {
			if qq.Type == dns.TypeA && a.Is4() || qq.Type == dns.TypeAAAA && a.Is6() {
				m.Answers = append(m.Answers, dns.Resource{Name: qq.Name, Type: qq.Type, Class: dns.ClassINET, TTL: ttl, Addr: a})
			}
		}
	}
	b, err := m.Pack(nil)
	if err != nil {
		return nil
	}
	return b
}

// ServeUDP answers the queries that come to pc until the test ends, then closes pc.
func (s *Server) ServeUDP(t testing.TB, pc net.PacketConn) {
	serve(t, pc, func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if b := s.answer(buf[:n], true); b != nil {
				_, _ = pc.WriteTo(b, from)
			}
		}
	})
}

// ServeTCP answers one query on each connection l accepts (a message after its two-byte
// length, RFC 1035 §4.2.2) until the test ends, then closes l.
func (s *Server) ServeTCP(t testing.TB, l net.Listener) {
	serve(t, l, func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			var hdr [2]byte
			if _, err := io.ReadFull(c, hdr[:]); err == nil {
				req := make([]byte, binary.BigEndian.Uint16(hdr[:]))
				if _, err := io.ReadFull(c, req); err == nil {
					if b := s.answer(req, false); b != nil {
						_, _ = c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
					}
				}
			}
			c.Close()
		}
	})
}

// serve runs loop on a goroutine until the test ends; then it closes c, which ends loop, and
// waits for it.
func serve(t testing.TB, c io.Closer, loop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop()
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
}
