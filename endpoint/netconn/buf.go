package netconn

import (
	"sync"

	"github.com/wispstack/wisp/pbuf"
)

// Buf is received data handed out without copying (lwIP's netbuf): views of the pbufs the
// packet arrived in. The caller reads it through Bytes and must call Release when done;
// until then the stack's memory stays in use, and for TCP the receive window stays closed
// by Len bytes (so a reader that holds Bufs slows its peer down instead of exhausting the
// pools). A Buf must not be used after Release.
type Buf struct {
	p     *pbuf.Pbuf // owned chain; nil after Release
	off   int        // bytes of p already consumed by Read before Recv took it
	n     int
	views [][]byte
	c     *TCPConn // TCP: told of the consumed bytes on Release
}

var bufPool = sync.Pool{New: func() any { return new(Buf) }}

// newBuf wraps chain p (taking ownership) from byte off on.
func newBuf(p *pbuf.Pbuf, off int, c *TCPConn) *Buf {
	b := bufPool.Get().(*Buf)
	b.p, b.off, b.n, b.c = p, off, p.TotLen()-off, c
	return b
}

// Bytes returns views of the data, in order; they are valid until Release. The slice is
// reused by the Buf: do not keep it past Release either.
func (b *Buf) Bytes() [][]byte {
	b.views = b.views[:0]
	if b.p == nil {
		return nil
	}
	q, o := b.p.Skip(b.off)
	for ; q != nil; q, o = q.Next(), 0 {
		if v := q.Payload()[o:]; len(v) > 0 {
			b.views = append(b.views, v)
		}
	}
	return b.views
}

// Len returns the number of bytes in b.
func (b *Buf) Len() int { return b.n }

// CopyTo copies the data into dst and returns how many bytes it copied (min(Len, len(dst))).
func (b *Buf) CopyTo(dst []byte) int {
	if b.p == nil {
		return 0
	}
	return b.p.CopyOut(dst, b.off)
}

// Release frees the data and, for TCP, reopens the receive window by Len bytes. Call it
// exactly once: the Buf is recycled.
func (b *Buf) Release() {
	if b.p == nil {
		return
	}
	b.p.Free()
	c, n := b.c, b.n
	b.p, b.c, b.n, b.off = nil, nil, 0, 0
	clear(b.views)
	b.views = b.views[:0]
	bufPool.Put(b)
	if c != nil {
		c.consumed(n)
	}
}
