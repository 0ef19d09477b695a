package stats

import "reflect"

// TCPExt counts the TCP events lwIP's stats_proto has no field for, in the spirit of Linux's
// TcpExt counters. The TCP record (Snapshot.TCP) keeps lwIP's meaning: Drop is the sum of
// every Drop* reason here, Chkerr/Lenerr/Opterr/Memerr/Proterr the same reasons lwIP counts.
type TCPExt struct {
	ActiveOpens  uint64 // connects started (SYN sent)
	PassiveOpens uint64 // connections accepted from a listener
	Established  uint64 // connections that reached ESTABLISHED
	ResetsSent   uint64 // RST segments sent
	ResetsRecv   uint64 // acceptable RST segments received
	Timeouts     uint64 // connections dropped after TCPMaxRtx / TCPSynMaxRtx retransmissions

	Retransmits     uint64 // segments retransmitted, for any reason
	FastRetransmits uint64 // retransmissions on duplicate ACKs / SACK loss detection
	RTOs            uint64 // retransmission timer expirations
	TLPs            uint64 // tail loss probes sent (RFC 8985 §7)
	RACKLosses      uint64 // segments marked lost by RACK (RFC 8985 §6.2)
	SACKRecoveries  uint64 // loss recovery episodes entered with SACK (RFC 6675)
	RenoRecoveries  uint64 // loss recovery episodes entered without SACK (RFC 6582)
	SpuriousRTOs    uint64 // RTOs undone because the original was acknowledged (timestamps)
	Undos           uint64 // window reductions undone: every retransmission proved spurious (RFC 3522 timestamps, RFC 3708 D-SACK)
	SACKBlocksRecv  uint64 // SACK blocks received and applied to the scoreboard
	DSACKRecv       uint64 // D-SACK blocks received (RFC 2883)
	DSACKSent       uint64 // duplicate segments received and reported with a D-SACK block (RFC 2883)

	ChallengeACKs        uint64 // challenge ACKs sent (RFC 5961)
	ChallengeACKsLimited uint64 // challenge ACKs suppressed by TCPChallengeAckLimit
	CookiesSent          uint64 // SYN-ACKs carrying a SYN cookie (RFC 4987)
	CookiesValid         uint64 // ACKs that completed a handshake through a cookie
	CookiesFailed        uint64 // ACKs whose cookie did not validate
	ListenOverflows      uint64 // SYNs that found the listener's backlog full
	PCBExhausted         uint64 // connections refused because TCP_PCB ran out
	SynRefused           uint64 // SYNs answered with a RST: no PCB could be had, even by recycling (never a cookie then)
	CookieRefused        uint64 // valid cookie ACKs answered with a RST: no PCB could be had for them
	HalfOpenReaped       uint64 // half-open (SYN-RECEIVED) connections dropped, oldest first, to make room for a new SYN
	HalfOpenTimeouts     uint64 // half-open connections dropped after TCPSynAckMaxRtx SYN-ACKs or TCPSynRcvdTimeout
	InterceptSyn         uint64 // intercepted SYNs (a TUN proxy's) that matched no connection: a new request for the intercept listener
	InterceptRefused     uint64 // intercepted SYNs answered with a RST by the stack: no intercept listener, its backlog full, no PCB, or an undecided one refused to make room
	SynDeduped           uint64 // retransmitted SYNs of a deferred (undecided) intercepted connection, dropped
	DeferTimeouts        uint64 // deferred intercepted connections not decided within TCPDeferTimeout, answered with a RST
	AcceptOverflows      uint64 // established connections the accept callback reset (a full accept mailbox, no netconn left)
	RcvShareClamped      uint64 // window advertisements cut to the connection's fair share of receive memory
	SndShareClamped      uint64 // send room (SndBuf, Write) cut to the connection's fair share of the heap
	RcvPruned            uint64 // data segments dropped to keep the receive pool's reserve (the connection's reader is not moving)
	TimeWaitRecycled     uint64 // TIME-WAIT PCBs reused for a new connection
	KeepaliveProbes      uint64 // keepalive probes sent
	KeepaliveTimeouts    uint64 // connections dropped by keepalive
	ZeroWindowProbes     uint64 // zero-window probes sent (persist timer)
	DelayedACKs          uint64 // ACKs sent by the delayed-ACK timer
	OOOQueued            uint64 // segments queued out of order
	RcvWndClamped        uint64 // window advertisements cut because packet memory ran low
	LinkFull             uint64 // sending paused because the link's transmit queue was full
	LinkCongestion       uint64 // window reductions for a full queue that is congestion (link.TxCongester)

	DropNoPCB       uint64 // no connection or listener for the segment (answered with RST)
	DropBadChecksum uint64 // checksum errors
	DropBadHeader   uint64 // data offset, length or flag combination invalid
	DropBadOption   uint64 // malformed options
	DropOutOfWindow uint64 // sequence number outside the receive window (RFC 9293 §3.10.7.4)
	DropBadAck      uint64 // unacceptable ACK (ahead of SND.NXT or too old, RFC 5961 §5)
	DropPAWS        uint64 // PAWS rejected an old timestamp (RFC 7323 §5)
	DropBadRST      uint64 // RST not exactly at RCV.NXT (challenged, RFC 5961 §3)
	DropBadSYN      uint64 // SYN in a synchronized state (challenged, RFC 5961 §4)
	DropOOOFull     uint64 // out-of-order segment with no room (pool, TCPOOSeqMaxPbufs)
	DropMem         uint64 // segment dropped because a pool or the heap was exhausted
	DropListen      uint64 // segment a listener could not take (backlog full, no cookies)
	DropClosed      uint64 // data for a connection whose application closed receiving
}

// Add accumulates o into t.
func (t *TCPExt) Add(o *TCPExt) {
	a, b := reflect.ValueOf(t).Elem(), reflect.ValueOf(o).Elem()
	for i := range a.NumField() {
		f := a.Field(i)
		f.SetUint(f.Uint() + b.Field(i).Uint())
	}
}

// writeTCPExt prints every non-zero counter, four to a line.
func (s *Snapshot) writeTCPExt(ew *errWriter) {
	writeCounters(ew, "TCP:", reflect.ValueOf(&s.TCPExt).Elem())
}

// writeCounters prints the non-zero uint64 fields of struct v under title, four to a line.
func writeCounters(ew *errWriter, title string, v reflect.Value) {
	t := v.Type()
	n := 0
	for i := range v.NumField() {
		x := v.Field(i).Uint()
		if x == 0 {
			continue
		}
		if n == 0 {
			ew.printf("\n%s", title)
		}
		if n%4 == 0 {
			ew.printf("\n ")
		}
		ew.printf(" %-20s %10d", t.Field(i).Name, x)
		n++
	}
	if n > 0 {
		ew.printf("\n")
	}
}
