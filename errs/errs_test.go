package errs

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestErrnoMapping(t *testing.T) {
	wrapped := fmt.Errorf("send: %w", Mem)
	if !errors.Is(wrapped, Mem) || !errors.Is(wrapped, syscall.ENOMEM) {
		t.Fatal("errors.Is through a wrap")
	}
	if errors.Is(Rst, syscall.ENOMEM) || !errors.Is(Rst, syscall.ECONNRESET) {
		t.Fatal("Rst mapping")
	}
	if Mem.Name() != "ERR_MEM" || Mem.Code() != -1 || Mem.Error() != "out of memory" {
		t.Fatal(Mem.Name(), Mem.Code(), Mem.Error())
	}
}

func TestAllCodes(t *testing.T) {
	all := []struct {
		e     *Error
		code  int
		name  string
		errno syscall.Errno
	}{
		{Mem, -1, "ERR_MEM", syscall.ENOMEM},
		{Buf, -2, "ERR_BUF", syscall.ENOBUFS},
		{Timeout, -3, "ERR_TIMEOUT", syscall.ETIMEDOUT},
		{Rte, -4, "ERR_RTE", syscall.EHOSTUNREACH},
		{InProgress, -5, "ERR_INPROGRESS", syscall.EINPROGRESS},
		{Val, -6, "ERR_VAL", syscall.EINVAL},
		{WouldBlock, -7, "ERR_WOULDBLOCK", syscall.EWOULDBLOCK},
		{Use, -8, "ERR_USE", syscall.EADDRINUSE},
		{Already, -9, "ERR_ALREADY", syscall.EALREADY},
		{IsConn, -10, "ERR_ISCONN", syscall.EISCONN},
		{Conn, -11, "ERR_CONN", syscall.ENOTCONN},
		{If, -12, "ERR_IF", syscall.EIO},
		{Abrt, -13, "ERR_ABRT", syscall.ECONNABORTED},
		{Rst, -14, "ERR_RST", syscall.ECONNRESET},
		{Clsd, -15, "ERR_CLSD", syscall.ENOTCONN},
		{Arg, -16, "ERR_ARG", syscall.EIO},
		{Refused, -17, "ERR_REFUSED", syscall.ECONNREFUSED},
		{NetUnreach, -18, "ERR_NETUNREACH", syscall.ENETUNREACH},
		{NetDown, -19, "ERR_NETDOWN", syscall.ENETDOWN},
		{MsgSize, -20, "ERR_MSGSIZE", syscall.EMSGSIZE},
		{AddrNotAvail, -21, "ERR_ADDRNOTAVAIL", syscall.EADDRNOTAVAIL},
		{Access, -22, "ERR_ACCES", syscall.EACCES},
	}
	seen := map[int]bool{}
	for _, c := range all {
		if c.e.Code() != c.code || c.e.Name() != c.name || c.e.Errno() != c.errno {
			t.Errorf("%s: got %d %s %v", c.name, c.e.Code(), c.e.Name(), c.e.Errno())
		}
		if seen[c.code] {
			t.Errorf("%s: code %d reused", c.name, c.code)
		}
		seen[c.code] = true
		if !errors.Is(fmt.Errorf("x: %w", c.e), c.errno) || c.e.Error() == "" {
			t.Errorf("%s: errors.Is through a wrap", c.name)
		}
	}
}
