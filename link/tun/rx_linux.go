//go:build linux

package tun

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// queue is one fd of the device and its reader goroutine.
//
// Receive buffers. A read must offer room for the longest packet (64 KiB with offloads),
// but most packets are short. So each reader keeps a standing chain of d.rxCap bytes of
// POOL pbufs from the dispatcher's AllocRx and reads into it with one readv: the packet
// takes the pbufs it filled (the last one trimmed), the rest of the chain stays, and the
// next read first tops the chain up with one AllocRx of exactly the bytes taken. A short
// packet thus costs one pbuf from the pool, as without offloads, and nothing is allocated
// and freed again per packet. The chain is freed when the reader finds nothing to read and
// waits: an idle device holds no pool memory (the stack's pools are back to zero), and a
// wake-up costs one AllocRx.
type queue struct {
	d  *Device
	f  *os.File
	rc syscall.RawConn

	// reader-owned
	stand     *pbuf.Pbuf      // the standing chain: d.rxCap-short bytes
	standDisp link.Dispatcher // whose AllocRx the standing chain came from
	short     int             // bytes the standing chain lacks (taken by packets)
	iov       []unix.Iovec
	hdr       [vnetHdrLen]byte
	peek      [peekLen]byte
	batch     []*pbuf.Pbuf
	discard   []byte
}

// reader is the receive goroutine of q: it waits for the fd to become readable, reads a
// batch, and delivers it. It stops when the device is closed or a read fails for good, and
// then frees its standing chain.
func (q *queue) reader() {
	d := q.d
	defer d.wg.Done()
	defer q.release()
	var rerr error
	readBatch := func(fd uintptr) bool {
		for len(q.batch) < cap(q.batch) {
			err := q.readOne(int(fd))
			switch err {
			case nil, unix.EINTR:
			case unix.EAGAIN:
				// Nothing (more) to read: deliver what we have, or wait for the poller,
				// holding no pool memory while the device is idle.
				if len(q.batch) == 0 {
					q.release()
				}
				return len(q.batch) > 0
			default:
				rerr = err
				return true
			}
		}
		return true
	}
	for {
		err := q.rc.Read(readBatch)
		if len(q.batch) > 0 {
			if disp := d.dispatcher(); disp != nil {
				d.rxFrames.Add(uint64(len(q.batch)))
				disp.DeliverPackets(q.batch)
			} else {
				for _, p := range q.batch {
					p.Free()
				}
				d.rxDropped.Add(uint64(len(q.batch)))
			}
			clear(q.batch)
			q.batch = q.batch[:0]
		}
		if err != nil {
			return // closed
		}
		if rerr != nil {
			d.rerr.CompareAndSwap(nil, &rerr)
			return
		}
	}
}

// release frees the standing chain.
func (q *queue) release() {
	q.stand.Free()
	q.stand, q.standDisp, q.short = nil, nil, q.d.rxCap
}

// readOne reads one frame into the standing chain and appends the part it filled to
// q.batch, or reads it into the discard buffer when there is no dispatcher or no buffer.
// A frame whose virtio-net header is malformed is dropped and counted; the chain stays.
func (q *queue) readOne(fd int) error {
	d := q.d
	disp := d.dispatcher()
	if disp != q.standDisp {
		q.release() // a chain of another dispatcher's pool
		q.standDisp = disp
	}
	if disp != nil && q.short > 0 {
		if p := disp.AllocRx(q.short); p != nil {
			if q.stand == nil {
				q.stand = p
			} else {
				pbuf.Cat(q.stand, p)
			}
			q.short = 0
		}
	}
	if disp == nil || q.short > 0 {
		n, err := unix.Read(fd, q.discard)
		if err == nil && n > 0 {
			d.rxDropped.Add(1)
		}
		return err
	}
	iov := q.iov[:0]
	if d.offload {
		iov = append(iov, iovec(q.hdr[:]))
	}
	for p := q.stand; p != nil && len(iov) < cap(iov); p = p.Next() {
		iov = append(iov, iovec(p.Payload()))
	}
	n, err := readv(fd, iov)
	clear(iov)
	switch {
	case err == unix.EFAULT:
		// The kernel had a packet longer than the chain (its GSO limit raised past
		// 64 KiB): that packet is lost, the device goes on.
		d.rxDropped.Add(1)
		return nil
	case err != nil:
		return err
	case n <= 0:
		return unix.EAGAIN
	}
	var flags pbuf.Flags
	var gso pbuf.GSOType
	var size int
	if d.offload {
		n -= vnetHdrLen
		ok := n > 0
		if ok {
			k := q.stand.CopyOut(q.peek[:min(n, len(q.peek))], 0)
			flags, gso, size, ok = rxMeta(q.hdr[:], q.peek[:k], n, d.lh, d.uso)
		}
		if !ok {
			d.rxBadHdr.Add(1)
			d.rxDropped.Add(1)
			return nil
		}
		if gso != pbuf.GSONone {
			d.rxGSO.Add(1)
		}
		if flags&pbuf.FlagChecksumPartial != 0 {
			d.rxPartial.Add(1)
		}
	}
	p := q.take(n)
	p.SetFlags(flags)
	p.SetGSO(gso, size)
	q.batch = append(q.batch, p)
	return nil
}

// take detaches the first pbufs of the standing chain that hold n bytes and returns them,
// trimmed to n; the chain keeps the rest, and q.short grows by the bytes taken.
func (q *queue) take(n int) *pbuf.Pbuf {
	p := q.stand
	last, seen := p, 0
	for seen+last.Len() < n {
		seen += last.Len()
		last = last.Next()
	}
	q.short += seen + last.Len()
	q.stand = last.Dechain()
	p.Shrink(n) // fixes the lengths of the pbufs before last, which Dechain leaves
	return p
}
