package tcp

// The raw API's types: connection states, callbacks, write flags and the connection
// snapshot. The functions are in pcbapi.go (a PCB's) and listen.go (a Listener's).

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/wispstack/wisp/pbuf"
)

// State is a connection's RFC 9293 state.
type State uint8

// The states; String prints the RFC names (SYN-SENT, TIME-WAIT, ...).
const (
	StateClosed State = iota
	StateListen
	StateSynSent
	StateSynReceived
	StateEstablished
	StateFinWait1
	StateFinWait2
	StateCloseWait
	StateClosing
	StateLastAck
	StateTimeWait
)

var stateNames = [...]string{"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "STATE(?)"
}

// Callbacks. Each runs in core context and may call any raw API function, including
// Close and Abort on the PCB it was called for.
type (
	// AcceptFunc is called when a connection on l reaches ESTABLISHED (lwIP tcp_accept).
	// c is a new PCB with no callbacks set (but those its host set on an intercepted SYN
	// it was offered, SynFunc); the function sets them. Until it returns, the
	// connection counts against l's backlog, and longer when c.BacklogDelayed was called.
	AcceptFunc func(l *Listener, c *PCB)
	// ConnectedFunc is called when an active open reaches ESTABLISHED (lwIP tcp_connected).
	// A connect that fails calls the ErrFunc instead.
	ConnectedFunc func(c *PCB)
	// RecvFunc delivers in-order data (lwIP tcp_recv). It takes ownership of p, which holds
	// only payload. p == nil means the peer closed its sending side (FIN): no more data
	// will come. The window reopens only when the application calls c.Recved(n).
	RecvFunc func(c *PCB, p *pbuf.Pbuf)
	// SentFunc reports n more bytes acknowledged by the peer (lwIP tcp_sent); send buffer
	// space (c.SndBuf) has grown by at least n.
	SentFunc func(c *PCB, n int)
	// ErrFunc reports that the connection is gone (lwIP tcp_err): err is errs.Rst (reset by
	// the peer), errs.Refused (RST or ICMP port/protocol unreachable answered our SYN),
	// errs.Timeout (retransmissions or keepalive exhausted), errs.Rte (retransmissions
	// exhausted after ICMP net/host unreachable), errs.Abrt (aborted by Abort, by
	// Proto.Close, by data arriving after Shutdown(rx), or for lack of memory), errs.Clsd
	// (the connection ended normally while the application still held it: our FIN was
	// acknowledged in LAST-ACK after Shutdown(tx), or TIME-WAIT ran out). It is never
	// called after Close. The PCB is freed when the function returns: do not use c after.
	ErrFunc func(c *PCB, err error)
	// PollFunc is called every poll interval while the connection exists (lwIP tcp_poll),
	// for applications that retry writes that failed with errs.Mem.
	PollFunc func(c *PCB)
)

// WriteFlags modify Write (lwIP TCP_WRITE_FLAG_*).
type WriteFlags uint8

const (
	// WriteCopy copies the data into stack memory: the caller may reuse it at once.
	// Without it the data is referenced zero-copy and must stay unmodified until SentFunc
	// has reported it acknowledged (or the connection is gone).
	WriteCopy WriteFlags = 1 << iota
	// WriteMore says more data follows at once: PSH is not set and Nagle may hold the tail.
	WriteMore
)

// Info is a snapshot of one connection, like Linux's struct tcp_info.
type Info struct {
	State                    State
	MSS                      int // effective send MSS
	SndUna, SndNxt, RcvNxt   uint32
	SndWnd, RcvWnd           int // bytes, scaled
	SndWndScale, RcvWndScale uint8
	Cwnd, Ssthresh           int // bytes
	SRTT, RTTVar, RTO        time.Duration
	Unacked, Unsent          int // bytes
	Retransmits              uint64
	SACK, Timestamps         bool
	InRecovery               bool
	Congestion               string
	// Deferred: an intercepted SYN its host has not decided on (SYN-RECEIVED, nothing sent;
	// PCB.AcceptSyn, PCB.RefuseSyn).
	Deferred bool

	// What the connection holds and waits for (the live view, and the evidence a failing
	// test prints).
	Local, Remote netip.AddrPort
	RcvUnread     int    // delivered to the application and not yet consumed (Recved)
	OOSegs        int    // segments waiting out of order
	SndBuf        int    // bytes queued for sending (sent and not acknowledged, and unsent)
	SndBufSize    int    // the send buffer's size (SndBufSize)
	Timers        string // deadlines armed, e.g. "rto=180ms keep=2s" (Proto.Conns only)

	// Totals of the connection's life: data bytes the peer acknowledged and data bytes
	// received in order (SYN and FIN not counted); a rate is the difference of two Infos.
	BytesAcked, BytesReceived uint64
	// The packet memory the connection holds in its queues (Proto.Conns only): POOL pbufs
	// (received frames) and heap bytes (RAM pbufs: data written with WriteCopy, a
	// loopback's frames) of the send queue and the out-of-order queue, and the bytes
	// waiting out of order. Data delivered to RecvFunc belongs to the application
	// (RcvUnread counts it); REF/ROM data is the application's memory.
	Pbufs, HeapBytes int
	OOBytes          int
}

// String prints the connection in one line, as ss -tin would.
func (i Info) String() string {
	state := i.State.String()
	if i.Deferred {
		state += "(deferred)"
	}
	return fmt.Sprintf("%s %v->%v snd.una=%d snd.nxt=%d snd.wnd=%d unacked=%d unsent=%d sndbuf=%d/%d cwnd=%d rcv.nxt=%d rcv.wnd=%d unread=%d oos=%d rto=%v srtt=%v rtx=%d timers=[%s]",
		state, i.Local, i.Remote, i.SndUna, i.SndNxt, i.SndWnd, i.Unacked, i.Unsent, i.SndBuf, i.SndBufSize,
		i.Cwnd, i.RcvNxt, i.RcvWnd, i.RcvUnread, i.OOSegs, i.RTO, i.SRTT, i.Retransmits, i.Timers)
}
