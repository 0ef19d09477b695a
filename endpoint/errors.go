package endpoint

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/wispstack/wisp/errs"
)

// errnoOf maps an error from the layers below to what a socket reports: a *errs.Error
// becomes its syscall.Errno (lwIP's err_to_errno, done once here); io.EOF,
// os.ErrDeadlineExceeded, net.ErrClosed and errors that already are syscall.Errno pass
// through; context errors become the errors package net uses for them (their messages,
// Timeout for a deadline, errors.Is with the context error).
func errnoOf(err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return e.Errno()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return errCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	}
	return err
}

// opError wraps err once, as package net does: io.EOF is returned bare (net never wraps
// it), a nil err stays nil, and anything else becomes a *net.OpError whose Err is a
// syscall.Errno (or os.ErrDeadlineExceeded, net.ErrClosed, a context error).
func opError(op, network string, src, dst net.Addr, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err // already wrapped (a nested helper did it)
	}
	return &net.OpError{Op: op, Net: network, Source: src, Addr: dst, Err: errnoOf(err)}
}

// canceledError is what a canceled DialContext reports, like package net's: the text
// "operation was canceled", and errors.Is(err, context.Canceled) holds.
type canceledError struct{}

func (canceledError) Error() string        { return "operation was canceled" }
func (canceledError) Is(target error) bool { return target == context.Canceled }

// timeoutError is what a DialContext past its deadline reports, like package net's: the
// text "i/o timeout", Timeout() true, errors.Is with context.DeadlineExceeded and
// os.ErrDeadlineExceeded.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}

var (
	errCanceled error = canceledError{}
	errTimeout  error = timeoutError{}
)

// Errors of the socket layer itself, each an errno so errors.Is works like on a kernel
// socket.
var (
	errNoProtoOpt  = syscall.ENOPROTOOPT     // unknown socket option
	errProtoNoSupp = syscall.EPROTONOSUPPORT // network or protocol wisp does not do
	errInval       = syscall.EINVAL          // bad argument
	errAFNoSupport = syscall.EAFNOSUPPORT    // address family does not match the socket
	errDestAddrReq = syscall.EDESTADDRREQ    // write on an unconnected datagram socket
	errInProgress  = syscall.EINPROGRESS     // non-blocking connect started
	errAlready     = syscall.EALREADY        // a connect is already in progress
	errIsConn      = syscall.EISCONN         // already connected
	errNoSuitable  = errors.New("no suitable address found")
	errMissingAddr = errors.New("missing address")
	errNoResolver  = "names are not resolved here (use an IP literal)"
	errUnknownPort = "unknown port"
)
