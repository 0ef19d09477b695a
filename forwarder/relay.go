package forwarder

// Relay: the copy loop of a TUN proxy, both directions between a connection the forwarder
// accepted and the host's upstream connection, with no buffer held while a direction waits:
//
//	device → wisp → upstream   TCPConn.WriteTo: each received pbuf is written upstream as it
//	                           sits in stack memory; nothing of the relay's own
//	device ← wisp ← upstream   a pooled buffer, taken only once upstream is readable
//	                           (syscall.RawConn.Read waits in the poller without one) and
//	                           given back as soon as wisp has taken the bytes
//
// io.Copy would park a 32 KiB buffer in every idle connection (32 MiB for a thousand);
// here an idle relayed connection costs two parked goroutines.

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/wispstack/wisp/endpoint"
)

// relayBufSize is the most one read from upstream moves into wisp at a time.
const relayBufSize = 32 << 10

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayBufSize); return &b }}

// RelayStats is what Relay moved, and how each direction ended.
type RelayStats struct {
	Up, Down       int64 // bytes device → upstream, upstream → device
	UpErr, DownErr error // nil when the direction ended with its source's EOF
}

// Relay copies c (a connection the forwarder accepted) and up (the host's connection to
// where c was going) both ways until both directions end, then closes both. The end of
// one direction is passed on as a half-close (CloseWrite) where the other side has one, so
// a client that shuts down its sending side still reads the whole answer; a reset on
// either side is passed on as a reset of the other (the peer sees the stream broken, not
// ended); any other error closes both. An upstream that is a syscall.Conn (a kernel
// socket) is read only when readable, so an idle connection holds no buffer. Relay blocks
// until both directions are done.
func Relay(c *endpoint.TCPConn, up net.Conn) RelayStats {
	var st RelayStats
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.Up, st.UpErr = c.WriteTo(up)
		endHalf(up, c, st.UpErr)
	}()
	st.Down, st.DownErr = copyDown(c, up)
	endHalf(c, up, st.DownErr)
	<-done
	_ = c.Close()
	_ = up.Close()
	return st
}

// endHalf ends the direction into dst from src after err (nil: src's EOF): a half-close
// of dst, or a reset of both for a reset, or a close of both.
func endHalf(dst, src net.Conn, err error) {
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		abort(dst)
		abort(src)
	}
	_ = dst.Close()
	_ = src.Close()
}

// abort makes c's Close send a RST: wisp's TCPConn has Abort, a kernel socket SetLinger(0).
func abort(c net.Conn) {
	switch c := c.(type) {
	case interface{ Abort() }:
		c.Abort()
	case interface{ SetLinger(int) error }:
		_ = c.SetLinger(0)
	}
}

// copyDown copies up into c until up's EOF (nil) or an error.
func copyDown(c *endpoint.TCPConn, up net.Conn) (int64, error) {
	sc, ok := up.(syscall.Conn)
	if !ok {
		return copyPooled(c, up)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return copyPooled(c, up)
	}
	var total int64
	for {
		var bp *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			if bp == nil {
				bp = relayBufs.Get().(*[]byte)
			}
			n, rerr = syscall.Read(int(fd), *bp)
			if rerr == syscall.EAGAIN {
				relayBufs.Put(bp) // wait for readability without a buffer
				bp = nil
				return false
			}
			if rerr == syscall.EINTR {
				return false
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if n > 0 {
			m, werr := c.Write((*bp)[:n])
			total += int64(m)
			if werr != nil && err == nil {
				err = werr
			}
		}
		if bp != nil {
			relayBufs.Put(bp)
		}
		switch {
		case err != nil:
			return total, err
		case n <= 0:
			return total, nil // EOF
		}
	}
}

// copyPooled is io.Copy with a pooled buffer, for an upstream that is not a kernel socket
// (a buffer is held while it waits).
func copyPooled(c *endpoint.TCPConn, up net.Conn) (int64, error) {
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	return io.CopyBuffer(writerOnly{c}, up, *bp)
}

// writerOnly hides the destination's ReadFrom, so io.CopyBuffer uses the given buffer.
type writerOnly struct{ io.Writer }
