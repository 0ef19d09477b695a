package conformance

// Rules every segment the stack sends must follow, checked as each is parsed.

import (
	"fmt"

	"github.com/wispstack/wisp/wire"
)

// checkInvariants checks rules that hold for every segment the stack sends.
func (e *env) checkInvariants(s *rxSeg) {
	e.t.Helper()
	for _, v := range e.violations(s) {
		e.t.Error(v)
	}
}

// violations lists the rules s breaks; it updates the per-connection tracking.
func (e *env) violations(s *rxSeg) (vs []string) {
	o := &s.Options
	syn := s.Flags.Has(wire.TCPFlagSYN)
	// RFC 9293 §3.7.1, RFC 7323 §2.2, RFC 2018 §2: MSS, window scale and SACK-permitted
	// appear only on SYNs.
	if !syn && (o.HasMSS || o.HasWindowScale || o.SACKPermitted) {
		vs = append(vs, fmt.Sprintf("SYN-only option on a non-SYN segment: %v", s))
	}
	if s.Flags.Has(wire.TCPFlagRST) && len(s.data) != 0 {
		vs = append(vs, fmt.Sprintf("RST with data: %v", s))
	}
	if s.Flags.Has(wire.TCPFlagSYN) && s.Flags.Has(wire.TCPFlagFIN|wire.TCPFlagRST) {
		vs = append(vs, fmt.Sprintf("SYN with FIN or RST: %v", s))
	}
	if !s.Flags.Has(wire.TCPFlagRST) && !syn && !s.Flags.Has(wire.TCPFlagACK) {
		vs = append(vs, fmt.Sprintf("synchronized segment without ACK (RFC 9293 §3.10.7.4: ACK is always sent): %v", s))
	}
	if len(s.raw) > e.cap.MTU() {
		vs = append(vs, fmt.Sprintf("%d-byte packet on a %d-byte MTU link: %v", len(s.raw), e.cap.MTU(), s))
	}
	key := [2]uint16{s.SrcPort, s.DstPort}
	if syn {
		// A new incarnation of the 4-tuple: its SYN-ACK says what the peer's SYN was; the
		// window and ACK tracking start again.
		if s.Flags.Has(wire.TCPFlagACK) {
			e.peerEnd[key] = s.AckNum
		} else {
			delete(e.peerEnd, key)
		}
		if n, ok := e.negotiated[key]; ok {
			n.seen = false
			e.negotiated[key] = n
		}
	}
	if n, ok := e.negotiated[key]; ok && !syn {
		// RFC 6691 §2: "the sender MUST reduce the TCP data length to account for any IP or
		// TCP options that it is including in the packets that it sends".
		if n.peerMSS > 0 && len(s.data)+o.Len() > n.peerMSS {
			vs = append(vs, fmt.Sprintf("%d data + %d option bytes exceed the peer's MSS %d: %v", len(s.data), o.Len(), n.peerMSS, s))
		}
		// The stack cannot acknowledge what the peer never sent.
		if end, ok := e.peerEnd[key]; ok && s.Flags.Has(wire.TCPFlagACK) && !s.Flags.Has(wire.TCPFlagRST) &&
			seqGT(s.AckNum, end) {
			vs = append(vs, fmt.Sprintf("ACK %d beyond everything the peer sent (%d): %v", s.AckNum, end, s))
		}
		if s.Flags.Has(wire.TCPFlagACK) && !s.Flags.Has(wire.TCPFlagRST) {
			edge := s.AckNum + uint32(s.Window)<<n.shift
			slack := uint32(1)<<n.shift - 1
			if n.seen && seqLT(s.AckNum, n.ack) {
				vs = append(vs, fmt.Sprintf("ACK went back from %d to %d: %v", n.ack, s.AckNum, s))
			}
			// RFC 9293 §3.8.6.2.2: the right edge of the window is not moved left
			// ("shrinking the window ... is strongly discouraged"; tcp-core.md: never).
			if n.seen && seqLT(edge+slack, n.edge) {
				vs = append(vs, fmt.Sprintf("window right edge moved left from %d (%s) to %d: %v", n.edge, n.edgeSeen, edge, s))
			}
			if !n.seen || seqGT(s.AckNum, n.ack) {
				n.ack = s.AckNum
			}
			if !n.seen || seqGT(edge, n.edge) {
				n.edge, n.edgeSeen = edge, s.String()
			}
			n.seen = true
			e.negotiated[key] = n
		}
	}
	if n, ok := e.negotiated[key]; ok && !syn {
		// RFC 7323 §3.2: "Once TSopt has been successfully negotiated ... the TSopt MUST
		// be sent in every non-<RST> segment for the duration of the connection, and
		// SHOULD be sent in an <RST> segment"; without negotiation it MUST NOT be sent.
		if n.ts && !o.HasTimestamps && !s.Flags.Has(wire.TCPFlagRST) {
			vs = append(vs, fmt.Sprintf("timestamps negotiated but missing: %v", s))
		}
		if !n.ts && o.HasTimestamps {
			vs = append(vs, fmt.Sprintf("timestamps not negotiated but sent: %v", s))
		}
		// RFC 2018 §2: SACK options only after SACK-permitted was received.
		if !n.sack && o.NumSACK > 0 {
			vs = append(vs, fmt.Sprintf("SACK blocks without SACK-permitted: %v", s))
		}
	}
	return vs
}
