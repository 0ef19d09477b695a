package stats

import (
	"fmt"
	"net/netip"
	"time"
)

// Conn is one PCB as the live view (`ss -tim`) and the doctor see it: a TCP connection
// (listeners are not listed), a UDP PCB, or a raw or ping PCB. Fields a protocol does not
// have stay zero.
type Conn struct {
	Proto string // "tcp", "udp", "raw", "ping"
	// State is TCP's RFC 9293 state name ("ESTABLISHED", "TIME-WAIT"); "bound" or
	// "connected" for the others.
	State         string
	Local, Remote netip.AddrPort
	Core          int // the stack core that carries it (stack.Config.Cores)

	// Bytes queued: for sending (sent and unacknowledged, and unsent), and received but not
	// yet read by the application (delivered and unread, and waiting out of order).
	SndQueued, RcvQueued int
	// The packet memory the PCB's own queues hold: POOL pbufs (received frames) and heap
	// bytes (RAM pbufs). What an application took from a callback is the application's.
	Pbufs, Heap int

	RTT, RTTVar time.Duration // smoothed round-trip time and its variation (RFC 6298)
	// Cwnd is the congestion window, SndWnd the peer's receive window, RcvWnd the window
	// we advertise, MSS the segment size we send; in bytes.
	Cwnd, SndWnd, RcvWnd, MSS int
	Retransmits               uint64 // segments retransmitted
	// Totals of the connection's life (data bytes, SYN and FIN not counted): a rate is the
	// difference of two snapshots over the time between them.
	BytesAcked, BytesReceived uint64

	// Beyond the fields above (additions for the doctor; TCP only): bytes sent and not
	// yet acknowledged, the send buffer's size now (autotuned: TCPSndBuf up to
	// TCPMaxSndBuf), and whether the connection is in loss recovery.
	InFlight   int
	SndBufSize int
	InRecovery bool
	// Drops counts the datagrams a UDP, raw or ping PCB's mailbox (netconn's, reported
	// through stack.QueueStater) dropped because it was full (UDPRecvMboxSize).
	Drops uint64
}

// String prints the connection in one line, as ss -tim would.
func (c Conn) String() string {
	s := fmt.Sprintf("%s %s %v->%v", c.Proto, c.State, c.Local, c.Remote)
	if c.Proto != "tcp" {
		if c.RcvQueued > 0 || c.Pbufs > 0 || c.Drops > 0 {
			s += fmt.Sprintf(" rcvq=%d pbufs=%d drops=%d", c.RcvQueued, c.Pbufs, c.Drops)
		}
		return s
	}
	return s + fmt.Sprintf(" core=%d sndq=%d/%d inflight=%d rcvq=%d pbufs=%d heap=%d rtt=%v/%v cwnd=%d snd.wnd=%d rcv.wnd=%d mss=%d rtx=%d acked=%d rcvd=%d",
		c.Core, c.SndQueued, c.SndBufSize, c.InFlight, c.RcvQueued, c.Pbufs, c.Heap,
		c.RTT.Round(time.Microsecond), c.RTTVar.Round(time.Microsecond), c.Cwnd, c.SndWnd, c.RcvWnd, c.MSS,
		c.Retransmits, c.BytesAcked, c.BytesReceived)
}
