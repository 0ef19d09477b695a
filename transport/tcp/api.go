package tcp

// This file is the raw API: lwIP's tcp_* functions in Go shape. Every function and callback
// here runs in the stack's core context (the core lock held, or inside a callback the stack
// made); none blocks.
//
// TEMPORARY CONTRACT SKELETON: bodies panic until the implementation lands. The signatures
// and documented semantics are the contract other packages build against.

import (
	"net/netip"
	"time"

	"github.com/wispstack/wisp/clock"
	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/memp"
	"github.com/wispstack/wisp/opt"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stats"
)

// Config wires a Proto to its stack.
type Config struct {
	Options opt.Options
	IP      *ip.Layer
	Alloc   *pbuf.Allocator
	Timers  *clock.Timeouts
	Pools   *memp.Table // TCP_PCB, TCP_PCB_LISTEN and TCP_SEG are registered here
	// Seed keys ISNs (RFC 6528), SYN cookies and ephemeral port choice (RFC 6056). Tests set
	// it for determinism; the stack draws it from crypto/rand otherwise.
	Seed uint64
}

// Proto is one stack's TCP: its PCB tables, pools and counters. It implements ip.Transport;
// the stack registers it for protocol 6.
type Proto struct{ _ int }

// New creates the TCP of a stack and registers its pools in c.Pools.
func New(c Config) (*Proto, error) { panic("tcp: unimplemented") }

// PoolDecls declares the pools New creates for options o, for the budget report.
func PoolDecls(o opt.Options) []memp.Decl { panic("tcp: unimplemented") }

// Input takes ownership of p (starting at the TCP header); h is borrowed (ip.Transport).
func (t *Proto) Input(h *ip.Header, p *pbuf.Pbuf) { panic("tcp: unimplemented") }

// ControlInput handles an ICMP error about a segment we sent (ip.Transport): PMTU updates
// on ControlPacketTooBig, soft errors otherwise (a connect in SYN-SENT fails on
// unreachable/refused after its SYN retries, as RFC 1122 §4.2.3.9 allows).
func (t *Proto) ControlInput(h *ip.Header, kind ip.ControlKind, mtu int, quoted []byte) {
	panic("tcp: unimplemented")
}

// Close aborts every connection (err callbacks get errs.Abrt), closes every listener and
// frees every pbuf TCP holds. The stack calls it on Close.
func (t *Proto) Close() { panic("tcp: unimplemented") }

// Stats adds TCP's counters into s (s.TCP and s.TCPExt).
func (t *Proto) Stats(s *stats.Snapshot) { panic("tcp: unimplemented") }

// NumPCBs returns the connections in use (TIME-WAIT included) and the listeners.
func (t *Proto) NumPCBs() (conns, listeners int) { panic("tcp: unimplemented") }

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
	// c is a new PCB with no callbacks set; the function sets them. Until it returns, the
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
	// the peer), errs.Refused (RST or ICMP unreachable answered our SYN), errs.Timeout
	// (retransmissions or keepalive exhausted), errs.Abrt (aborted by Abort, by Proto.Close
	// or for lack of memory). The PCB is freed when the function returns: do not use c after.
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

// PCB is one connection (lwIP struct tcp_pcb). PCBs come from the TCP_PCB pool.
type PCB struct{ _ int }

// NewPCB returns a fresh CLOSED PCB (lwIP tcp_new). errs.Mem when TCP_PCB is exhausted
// after recycling the oldest TIME-WAIT PCB.
func (t *Proto) NewPCB() (*PCB, error) { panic("tcp: unimplemented") }

// Bind sets the local address and port (lwIP tcp_bind). An unspecified address binds every
// local address; port 0 picks an ephemeral port (RFC 6056). errs.Use if taken (TIME-WAIT
// PCBs of the same port do not block a bind with SetReuseAddr), errs.Val for an address
// that is not local, errs.IsConn if c is not CLOSED.
func (c *PCB) Bind(addr netip.AddrPort) error { panic("tcp: unimplemented") }

// Listen turns a bound PCB into a Listener (lwIP tcp_listen_with_backlog): c returns to the
// pool and must not be used again. backlog ≤ 0 means Options.TCPListenBacklog. errs.Mem
// when TCP_PCB_LISTEN is exhausted (c then stays a usable CLOSED PCB).
func (c *PCB) Listen(backlog int) (*Listener, error) { panic("tcp: unimplemented") }

// Connect starts an active open to raddr (lwIP tcp_connect); fn is called on success. An
// unbound PCB gets the route's source address and an ephemeral port. errs.Rte with no route,
// errs.IsConn if not CLOSED, errs.Use if the 4-tuple is taken, errs.Mem without memory.
func (c *PCB) Connect(raddr netip.AddrPort, fn ConnectedFunc) error {
	panic("tcp: unimplemented")
}

// Write queues data for sending (lwIP tcp_write); Output or the end of input processing
// sends it. All or nothing: errs.Mem when len(data) exceeds SndBuf(), the queue length would
// exceed TCPSndQueueLen, or memory is short; errs.Conn if the connection cannot send (not
// yet connected is fine from SYN-SENT on; after Shutdown(tx) or Close it is errs.Conn).
func (c *PCB) Write(data []byte, flags WriteFlags) error { panic("tcp: unimplemented") }

// WritePbuf queues chain p for sending without copying, taking ownership of p whatever the
// result (for the netconn layer). Same limits and errors as Write.
func (c *PCB) WritePbuf(p *pbuf.Pbuf, flags WriteFlags) error { panic("tcp: unimplemented") }

// Output sends what the windows allow now (lwIP tcp_output).
func (c *PCB) Output() error { panic("tcp: unimplemented") }

// Recved tells TCP the application consumed n bytes delivered by RecvFunc, reopening the
// receive window (lwIP tcp_recved).
func (c *PCB) Recved(n int) { panic("tcp: unimplemented") }

// SndBuf returns the bytes Write may queue now (lwIP tcp_sndbuf).
func (c *PCB) SndBuf() int { panic("tcp: unimplemented") }

// SndQueueLen returns the pbufs queued for sending (lwIP tcp_sndqueuelen).
func (c *PCB) SndQueueLen() int { panic("tcp: unimplemented") }

// Close closes the connection in both directions (lwIP tcp_close): queued data is sent,
// then FIN; data arriving afterwards is answered with RST. After Close the PCB belongs to
// the stack: no callback fires again, and c must not be used again. A PCB in
// CLOSED or SYN-SENT is freed at once. Close never fails for lack of memory.
func (c *PCB) Close() error { panic("tcp: unimplemented") }

// Shutdown closes the receiving side (rx: further data is answered with RST, as lwIP's
// tcp_shutdown) and/or the sending side (tx: FIN after the queued data). Shutting both
// is Close.
func (c *PCB) Shutdown(rx, tx bool) error { panic("tcp: unimplemented") }

// Abort sends RST (if synchronized) and frees the PCB at once (lwIP tcp_abort); the ErrFunc
// is called with errs.Abrt. c must not be used after.
func (c *PCB) Abort() { panic("tcp: unimplemented") }

// Callback setters (lwIP tcp_arg, tcp_recv, tcp_sent, tcp_err, tcp_poll).
func (c *PCB) SetArg(arg any)                          { panic("tcp: unimplemented") }
func (c *PCB) Arg() any                                { panic("tcp: unimplemented") }
func (c *PCB) OnRecv(fn RecvFunc)                      { panic("tcp: unimplemented") }
func (c *PCB) OnSent(fn SentFunc)                      { panic("tcp: unimplemented") }
func (c *PCB) OnErr(fn ErrFunc)                        { panic("tcp: unimplemented") }
func (c *PCB) OnPoll(fn PollFunc, every time.Duration) { panic("tcp: unimplemented") }

// Settings.
func (c *PCB) SetNoDelay(on bool)   { panic("tcp: unimplemented") } // disables Nagle (TCP_NODELAY)
func (c *PCB) NoDelay() bool        { panic("tcp: unimplemented") }
func (c *PCB) SetReuseAddr(on bool) { panic("tcp: unimplemented") } // SO_REUSEADDR before Bind
func (c *PCB) SetTTL(ttl uint8)     { panic("tcp: unimplemented") }
func (c *PCB) SetTOS(tos uint8)     { panic("tcp: unimplemented") }

// SetKeepAlive enables keepalive; zero durations/count keep the Options defaults.
func (c *PCB) SetKeepAlive(on bool, idle, intvl time.Duration, cnt int) {
	panic("tcp: unimplemented")
}

// SetRcvBuf caps the receive window (SO_RCVBUF); 0 restores autotuning.
func (c *PCB) SetRcvBuf(n int) { panic("tcp: unimplemented") }

// BacklogDelayed keeps an accepted connection counted against its listener's backlog until
// BacklogAccepted (lwIP tcp_backlog_delayed / tcp_backlog_accepted): the netconn layer
// calls it while the connection waits in its accept mailbox.
func (c *PCB) BacklogDelayed()  { panic("tcp: unimplemented") }
func (c *PCB) BacklogAccepted() { panic("tcp: unimplemented") }

// Accessors.
func (c *PCB) State() State               { panic("tcp: unimplemented") }
func (c *PCB) LocalAddr() netip.AddrPort  { panic("tcp: unimplemented") }
func (c *PCB) RemoteAddr() netip.AddrPort { panic("tcp: unimplemented") }
func (c *PCB) Info() Info                 { panic("tcp: unimplemented") }

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
}

// Listener is a listening PCB (lwIP struct tcp_pcb_listen), from the TCP_PCB_LISTEN pool.
type Listener struct{ _ int }

// OnAccept sets the accept callback (lwIP tcp_accept). Without one, connections are reset.
func (l *Listener) OnAccept(fn AcceptFunc) { panic("tcp: unimplemented") }
func (l *Listener) SetArg(arg any)         { panic("tcp: unimplemented") }
func (l *Listener) Arg() any               { panic("tcp: unimplemented") }
func (l *Listener) Addr() netip.AddrPort   { panic("tcp: unimplemented") }

// Close stops listening and frees the listener; connections not yet accepted are reset.
func (l *Listener) Close() error { panic("tcp: unimplemented") }
