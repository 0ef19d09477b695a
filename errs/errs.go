// Package errs holds wisp's core errors, lwIP's err_t values as Go sentinels. The core
// returns them unwrapped; the socket layer maps each once to a syscall.Errno inside a
// *net.OpError (Errno gives the mapping, like lwIP's err_to_errno).
//
// Layer: base (imports nothing of wisp).
package errs

import "syscall"

// Error is one lwIP error code.
type Error struct {
	code  int8
	name  string
	text  string
	errno syscall.Errno
}

func (e *Error) Error() string { return e.text }

// Name returns the lwIP name, such as "ERR_MEM".
func (e *Error) Name() string { return e.name }

// Code returns lwIP's numeric err_t value (negative).
func (e *Error) Code() int { return int(e.code) }

// Errno returns the errno a socket reports for e (lwIP err_to_errno).
func (e *Error) Errno() syscall.Errno { return e.errno }

// Is lets errors.Is(err, syscall.ENOMEM) hold for Mem, and likewise for each mapping.
func (e *Error) Is(target error) bool {
	if n, ok := target.(syscall.Errno); ok {
		return n == e.errno
	}
	return false
}

// The lwIP error codes, with their err_to_errno mapping.
var (
	Mem        = &Error{-1, "ERR_MEM", "out of memory", syscall.ENOMEM}
	Buf        = &Error{-2, "ERR_BUF", "buffer error", syscall.ENOBUFS}
	Timeout    = &Error{-3, "ERR_TIMEOUT", "timeout", syscall.ETIMEDOUT}
	Rte        = &Error{-4, "ERR_RTE", "no route to host", syscall.EHOSTUNREACH}
	InProgress = &Error{-5, "ERR_INPROGRESS", "operation in progress", syscall.EINPROGRESS}
	Val        = &Error{-6, "ERR_VAL", "illegal value", syscall.EINVAL}
	WouldBlock = &Error{-7, "ERR_WOULDBLOCK", "operation would block", syscall.EWOULDBLOCK}
	Use        = &Error{-8, "ERR_USE", "address in use", syscall.EADDRINUSE}
	Already    = &Error{-9, "ERR_ALREADY", "already connecting", syscall.EALREADY}
	IsConn     = &Error{-10, "ERR_ISCONN", "already connected", syscall.EISCONN}
	Conn       = &Error{-11, "ERR_CONN", "not connected", syscall.ENOTCONN}
	If         = &Error{-12, "ERR_IF", "low-level netif error", syscall.EIO}
	Abrt       = &Error{-13, "ERR_ABRT", "connection aborted", syscall.ECONNABORTED}
	Rst        = &Error{-14, "ERR_RST", "connection reset", syscall.ECONNRESET}
	Clsd       = &Error{-15, "ERR_CLSD", "connection closed", syscall.ENOTCONN}
	Arg        = &Error{-16, "ERR_ARG", "illegal argument", syscall.EIO}

	// Refused is not in lwIP, which reports a reset connect as ERR_RST (ECONNRESET). A
	// connect answered by RST (or by ICMP port unreachable) fails with Refused, so a socket
	// reports ECONNREFUSED as every kernel does.
	Refused = &Error{-17, "ERR_REFUSED", "connection refused", syscall.ECONNREFUSED}

	// The codes below are not in lwIP either: each is an errno a socket must be able to
	// report distinctly, where lwIP folds it into ERR_RTE, ERR_VAL or ERR_MEM.

	// NetUnreach: no route to the destination's network (ICMP net unreachable, or a send
	// with no matching route).
	NetUnreach = &Error{-18, "ERR_NETUNREACH", "network unreachable", syscall.ENETUNREACH}
	// NetDown: the route's netif is down.
	NetDown = &Error{-19, "ERR_NETDOWN", "network is down", syscall.ENETDOWN}
	// MsgSize: a datagram larger than the protocol allows (or ICMP packet too big).
	MsgSize = &Error{-20, "ERR_MSGSIZE", "message too long", syscall.EMSGSIZE}
	// AddrNotAvail: bind to an address that is not local.
	AddrNotAvail = &Error{-21, "ERR_ADDRNOTAVAIL", "address not available", syscall.EADDRNOTAVAIL}
	// Access: a broadcast send on a socket without SO_BROADCAST.
	Access = &Error{-22, "ERR_ACCES", "permission denied", syscall.EACCES}
)
