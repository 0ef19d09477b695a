package gvisor

import (
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
)

// ethHeaderLen is the Ethernet II header: destination, source, EtherType.
const ethHeaderLen = header.EthernetMinimumSize

// Counters are the packets a Link or an Endpoint moved or dropped, by reason. "Rx" is the
// direction towards the stack the adapter feeds (wisp for a Link, gVisor for an Endpoint),
// "Tx" the direction towards the link below it.
type Counters struct {
	RxPackets  uint64 // delivered to the receiving stack
	RxNoBuffer uint64 // dropped: no receive buffer (AllocRx returned nil)
	RxDropped  uint64 // dropped: no dispatcher attached, or closed
	RxInvalid  uint64 // dropped: no link header where one is required, unknown IP version
	TxPackets  uint64 // accepted by the link below
	TxNoBuffer uint64 // dropped: no pbuf for a gVisor packet (Endpoint only)
	TxDropped  uint64 // dropped: refused by the link below, too long, malformed or closed
	// Offloads (offload.go), counted where the adapter converts them.
	RxGSO  uint64 // delivered marked as coalesced (Link: pbuf.SetGSO)
	TxGSO  uint64 // handed on as GSO packets (Link: GSOOptions; Endpoint: pbuf.SetGSO)
	TxCsum uint64 // partial checksums completed by the adapter (Link: UDP without a TSO path)
	RxCsum uint64 // partial checksums completed for gVisor, which checks every one (Endpoint)
}

type counters struct {
	rxPackets, rxNoBuffer, rxDropped, rxInvalid atomic.Uint64
	txPackets, txNoBuffer, txDropped            atomic.Uint64
	rxGSO, txGSO, txCsum, rxCsum                atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{
		RxPackets: c.rxPackets.Load(), RxNoBuffer: c.rxNoBuffer.Load(),
		RxDropped: c.rxDropped.Load(), RxInvalid: c.rxInvalid.Load(),
		TxPackets: c.txPackets.Load(), TxNoBuffer: c.txNoBuffer.Load(),
		TxDropped: c.txDropped.Load(),
		RxGSO:     c.rxGSO.Load(), TxGSO: c.txGSO.Load(), TxCsum: c.txCsum.Load(),
		RxCsum: c.rxCsum.Load(),
	}
}

// ipVersionProto maps the version nibble of a bare IP packet to gVisor's protocol number.
func ipVersionProto(first byte) (tcpip.NetworkProtocolNumber, bool) {
	switch first >> 4 {
	case 4:
		return header.IPv4ProtocolNumber, true
	case 6:
		return header.IPv6ProtocolNumber, true
	}
	return 0, false
}

// viewOf copies n bytes of chain p starting at off into a new gVisor View (from gVisor's
// pools). p is borrowed.
func viewOf(p *pbuf.Pbuf, off, n int) *buffer.View {
	v := buffer.NewView(n)
	q, o := p.Skip(off)
	for ; q != nil && n > 0; q = q.Next() {
		b := q.Payload()[o:]
		o = 0
		if len(b) > n {
			b = b[:n]
		}
		v.Write(b)
		n -= len(b)
	}
	return v
}

// copyFromViews copies n bytes of the view list, starting off bytes into it, into dst at
// dstOff. dst is borrowed and must have room; no allocation.
func copyFromViews(dst *pbuf.Pbuf, dstOff int, vl *buffer.ViewList, off, n int) {
	for v := vl.Front(); v != nil && n > 0; v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		b = b[off:]
		off = 0
		if len(b) > n {
			b = b[:n]
		}
		// dst was allocated with room for every byte copied here, so CopyIn cannot fail.
		_ = dst.CopyIn(b, dstOff)
		dstOff += len(b)
		n -= len(b)
	}
}

// dataOffset returns where pkt's unparsed data starts in the view list AsViewList returns:
// its header offset plus every header pushed or consumed.
func dataOffset(pkt *stack.PacketBuffer) (buffer.ViewList, int) {
	vl, off := pkt.AsViewList()
	return vl, off + pkt.HeaderSize()
}

// tcpipError maps a wisp link error to the gVisor error a LinkWriter returns.
func tcpipError(err error) tcpip.Error {
	switch err {
	case nil:
		return nil
	case errs.WouldBlock, errs.Mem, errs.Buf:
		return &tcpip.ErrNoBufferSpace{}
	case errs.Clsd:
		return &tcpip.ErrClosedForSend{}
	case errs.Val:
		return &tcpip.ErrMessageTooLong{}
	}
	return &tcpip.ErrAborted{}
}

// wispError maps a gVisor LinkWriter error to the wisp error link.Endpoint documents.
func wispError(err tcpip.Error) error {
	switch err.(type) {
	case nil:
		return nil
	case *tcpip.ErrNoBufferSpace, *tcpip.ErrWouldBlock:
		return errs.WouldBlock
	case *tcpip.ErrClosedForSend, *tcpip.ErrConnectionAborted, *tcpip.ErrAborted:
		return errs.Clsd
	case *tcpip.ErrMessageTooLong:
		return errs.Val
	}
	return errs.If
}
