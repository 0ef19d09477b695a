package forwarder_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/wispstack/wisp/forwarder"
	"github.com/wispstack/wisp/ip/iptest"
	"github.com/wispstack/wisp/stack/stacktest"
	"github.com/wispstack/wisp/wire"
)

// FuzzIntercept feeds arbitrary TCP, UDP and ICMP packets (checksums fixed or not) to
// intercepted addresses of both families into a stack running a forwarder whose handlers
// reject or answer and close at once. Whatever comes in, every request ends, every
// session closes and every pbuf comes back.
func FuzzIntercept(f *testing.F) {
	tcpSyn := make([]byte, 20)
	binary.BigEndian.PutUint16(tcpSyn[0:], 1234)
	binary.BigEndian.PutUint16(tcpSyn[2:], 80)
	tcpSyn[12], tcpSyn[13] = 5<<4, byte(wire.TCPFlagSYN)
	binary.BigEndian.PutUint16(tcpSyn[14:], 65535)
	f.Add(uint8(0), tcpSyn, false, true)
	f.Add(uint8(0), tcpSyn, true, true)
	f.Add(uint8(1), []byte{0x04, 0xd2, 0, 53, 0, 12, 0, 0, 'q', 'u', 'r', 'y'}, false, true)
	f.Add(uint8(1), []byte{0x04, 0xd2, 0, 53, 0, 12, 0, 0, 'q', 'u', 'r', 'y'}, true, true)
	f.Add(uint8(2), []byte{8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}, false, true)
	f.Add(uint8(2), []byte{128, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}, true, true)
	f.Add(uint8(1), []byte{0, 1}, false, false)
	tcp := func(r *forwarder.TCPRequest) { r.Reject(r.ID().Src.Port()%2 == 0) }
	udp := func(s *forwarder.UDPSession) {
		buf := make([]byte, 2000)
		if n, dst, err := s.ReadFromUDPAddrPort(buf); err == nil && n > 0 {
			_, _ = s.WriteToUDPAddrPort(buf[:n], dst)
		}
		if s.ID().Src.Port()%3 == 0 {
			s.Reject()
		}
		s.Close()
	}
	r := newRig(f, forwarder.Config{
		TCP:  forwarder.TCPConfig{Handler: tcp, Deferred: true},
		UDP:  forwarder.UDPConfig{Handler: udp},
		ICMP: forwarder.ICMPConfig{Mode: forwarder.EchoLocal},
	}, rigConfig{fake: true})
	f.Fuzz(func(t *testing.T, kind uint8, b []byte, v6, fix bool) {
		if len(b) > 9000 {
			return
		}
		fam := 0
		if v6 {
			fam = 1
		}
		src, dst := stacktest.AddrA[fam], fars[fam]
		b = append([]byte(nil), b...)
		proto := []uint8{wire.ProtoTCP, wire.ProtoUDP, wire.ProtoICMP}[kind%3]
		switch {
		case proto == wire.ProtoICMP && v6:
			proto = wire.ProtoICMPv6
			if fix && len(b) >= 4 {
				wire.ICMPv6(b).SetChecksum(src, dst)
			}
		case proto == wire.ProtoICMP:
			if fix && len(b) >= 4 {
				wire.ICMPv4(b).SetChecksum()
			}
		case proto == wire.ProtoTCP:
			if fix && len(b) >= 20 {
				wire.TCP(b).SetChecksum(src, dst)
			}
		case proto == wire.ProtoUDP:
			if fix && len(b) >= 8 {
				binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
				wire.UDP(b).SetChecksum(src, dst)
			}
		}
		stacktest.Inject(t, r.NetifB, iptest.Packet(proto, src, dst, b))
		deadline := time.Now().Add(5 * time.Second)
		for {
			r.flush()
			st := r.f.Stats()
			if st.UDPActive == 0 && st.TCPRequests == st.TCPRejected+st.TCPRefusedFull+st.TCPDeferTimeouts {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("requests or sessions left:\n%v", st)
			}
			time.Sleep(100 * time.Microsecond)
		}
		r.flush()
		stacktest.BuffersZero(t, r.B)
		stacktest.BuffersZero(t, r.A)
	})
}
