package tcp

// F-RTO (RFC 5682), the SACK-enhanced variant of §3.2 as Linux runs it: after a
// retransmission timeout, the first ACKs tell a spurious timeout (a delay spike: the
// originals were only late) from a real one. Instead of retransmitting the whole window
// again (go-back-N), the sender answers the first ACK that advances the window with new
// data; if the next ACK then (S)ACKs data sent only once before the timeout, the timeout
// was spurious and the window reduction is undone (RFC 4015's response, through undo, the
// same as Eifel and D-SACK undo). A duplicate ACK or SACK of the new data alone means
// the loss was real: conventional RTO recovery (the lost segments retransmitted) goes on.
//
// The state is in the cold part (frto, frtoOrig); "recover" is RFC 5682's variable of the
// same name (Linux's high_seq).

// frtoStep is the step of F-RTO a connection in RTO recovery is at.
type frtoStep uint8

const (
	frtoOff   frtoStep = iota // conventional RTO recovery (or none)
	frtoFirst                 // step 2: waiting for the first ACK after the retransmission
	frtoNew                   // step 2b: the next output sends new data, not retransmissions
	frtoWait                  // step 3: new data sent, waiting for the ACK that decides
	frtoWatch                 // step 3 undecided: retransmitting, an ACK of original data still undoes
)

// frtoStart is F-RTO step 1, at a timeout: "If the TCP sender is already in RTO recovery
// AND "recover" is larger than or equal to SND.UNA, do not enter step 2". Like Linux, the
// first timeout during fast recovery does not start it either (the window was already
// reduced for a loss that was detected), nor does a connection without SACK (§3.2 is the
// variant implemented).
func (c *PCB) frtoStart(wasRecovering bool) {
	c.frto = frtoOff
	if c.flags&fSACK != 0 && !wasRecovering && c.nrtx == 1 {
		c.frto = frtoFirst
	}
}

// frtoSeen notes a segment that the ACK being processed newly acknowledges or SACKs: if
// it was sent once, before the timeout (at or below "recover"), it reached the receiver
// without our retransmission (Linux's FLAG_ORIG_SACK_ACKED).
func (c *PCB) frtoSeen(s *seg) {
	if c.frto != frtoOff && s.flags&sEverRetx == 0 && seqLEQ(s.end(), c.recover) {
		c.frtoOrig = true
	}
}

// frtoAck runs F-RTO steps 2 and 3 for an acceptable ACK in RTO recovery (after the
// acknowledged data left the queues): advanced says SND.UNA moved, sacked is the bytes it
// newly SACKed.
func (c *PCB) frtoAck(advanced bool, sacked int) {
	orig := c.frtoOrig
	c.frtoOrig = false
	if c.frto == frtoOff || c.flags&fRTORecovery == 0 {
		c.frto = frtoOff
		return
	}
	if orig {
		// Step 3b (and, SACK-enhanced, already step 2): "If the ACK acknowledges a
		// segment that was not retransmitted": the timeout was spurious.
		c.frto = frtoOff
		c.undo()
		return
	}
	switch c.frto {
	case frtoFirst:
		// Step 2a: a duplicate ACK, or one that covers everything outstanding at the
		// timeout, ends F-RTO. Step 2b: an ACK that advances the window below "recover"
		// is answered with new data, if there is some the peer's window takes.
		c.frto = frtoOff
		if advanced && seqLT(c.sndUna, c.recover) {
			unsent := int(int32(c.sndEnd - c.sndNxt))
			wndLeft := int(int32(c.sndUna + uint32(c.sndWnd) - c.sndNxt))
			if unsent > 0 && wndLeft > 0 {
				c.recover = c.sndNxt // Linux's high_seq: new data is above it
				c.frto = frtoNew
			}
		}
	default:
		// Step 3a: a duplicate ACK or a SACK for new data alone: the loss was real.
		// An ACK that only covers retransmitted data decides nothing yet: like Linux,
		// the lost segments are retransmitted, and a later ACK of original data still
		// undoes.
		if !advanced || sacked > 0 {
			c.frto = frtoOff
		} else {
			c.frto = frtoWatch
		}
	}
}

// frtoHolds reports whether output must not retransmit the segments the timeout marked
// lost now: F-RTO sends new data first and waits for the ACK that decides.
func (c *PCB) frtoHolds() bool { return c.frto == frtoNew || c.frto == frtoWait }

// frtoSent ends step 2b after output: if no new data could go, F-RTO gives up and the lost
// segments are retransmitted (Linux tcp_xmit_recovery with REXMIT_NEW).
func (c *PCB) frtoSent() bool {
	if c.frto != frtoNew {
		return false
	}
	if seqGT(c.sndNxt, c.recover) {
		c.frto = frtoWait
		return false
	}
	c.frto = frtoOff
	return true
}
