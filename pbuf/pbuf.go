package pbuf

import (
	"fmt"
	"sync/atomic"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/memp"
)

// Type is the kind of a pbuf.
type Type uint8

// The pbuf kinds (see the package doc).
const (
	RAM Type = iota + 1
	ROM
	REF
	POOL
)

func (t Type) String() string {
	switch t {
	case RAM:
		return "RAM"
	case ROM:
		return "ROM"
	case REF:
		return "REF"
	case POOL:
		return "POOL"
	}
	return fmt.Sprintf("pbuf.Type(%d)", uint8(t))
}

// Header room each layer reserves below it.
const (
	// LinkHeaderRoom holds an Ethernet header (14 bytes), rounded up.
	LinkHeaderRoom = 16
	// IPHeaderRoom holds an IPv6 header with a fragment header, or an IPv4 header with a
	// router-alert option.
	IPHeaderRoom = 48
	// TransportHeaderRoom holds the largest TCP header.
	TransportHeaderRoom = 60
)

// Layer is the header room to reserve in front of a new pbuf's payload: the sum of the
// header rooms of the layers that will prepend headers (lwIP's pbuf_layer).
type Layer int

// The layers a pbuf may be allocated at.
const (
	LayerRaw       Layer = 0
	LayerLink      Layer = LinkHeaderRoom
	LayerIP        Layer = LinkHeaderRoom + IPHeaderRoom
	LayerTransport Layer = LinkHeaderRoom + IPHeaderRoom + TransportHeaderRoom
)

// Flags carry per-packet facts between layers.
type Flags uint8

// Flag bits.
const (
	// FlagChecksumOK: the link verified the transport and IP checksums (offload).
	FlagChecksumOK Flags = 1 << iota
	// FlagLinkBroadcast: received as a link-layer broadcast (lwIP PBUF_FLAG_LLBCAST).
	FlagLinkBroadcast
	// FlagLinkMulticast: received as a link-layer multicast (lwIP PBUF_FLAG_LLMCAST).
	FlagLinkMulticast
	// FlagPush: the last pbuf of a TCP write with PSH (lwIP PBUF_FLAG_PUSH).
	FlagPush
	// FlagChecksumPartial: the transport checksum is not finished. Its field holds the
	// folded pseudo-header sum (addresses, protocol and the transport length), not
	// complemented, as Linux's CHECKSUM_PARTIAL; whoever segments the packet or puts it on
	// a link without checksum offload completes it (the stack does, where the link does
	// not say it will: link.Offloads.TxChecksum).
	FlagChecksumPartial
	// FlagWritable: a REF pbuf whose memory its holder may rewrite, because the link lent
	// it for this packet alone (an AF_XDP frame in zero-copy receive), as it may a POOL
	// pbuf's; software GRO rewrites the headers of the segment it merges into.
	FlagWritable
)

// GSOType says how a packet larger than the link's MTU is cut into the segments the wire
// carries (Linux's SKB_GSO_*, virtio-net's VIRTIO_NET_HDR_GSO_*).
type GSOType uint8

// The GSO types.
const (
	GSONone  GSOType = iota // an ordinary packet
	GSOTCPv4                // a TCP segment over IPv4 cut into GSOSize-byte payloads
	GSOTCPv6                // the same over IPv6
	GSOUDPL4                // a UDP payload cut into GSOSize-byte datagrams (USO)
)

func (t GSOType) String() string {
	switch t {
	case GSONone:
		return "none"
	case GSOTCPv4:
		return "tcpv4"
	case GSOTCPv6:
		return "tcpv6"
	case GSOUDPL4:
		return "udp"
	}
	return fmt.Sprintf("pbuf.GSOType(%d)", uint8(t))
}

// Releaser is told when wisp no longer needs the memory of a REF pbuf. Release is called
// exactly once, from whichever goroutine freed the last reference.
type Releaser interface {
	Release()
}

// Pbuf is one buffer of a chain. Its fields are private so the invariants hold; use the
// methods.
type Pbuf struct {
	next   *Pbuf
	mem    []byte // this buffer's memory; the payload is mem[off : off+len]
	off    int32
	len    int32
	totLen int32
	// ref is the reference count. It changes atomically once the pbuf can be shared, but
	// a pbuf not yet handed out (Alloc) and one whose count is 1 (Free: only its holder
	// can touch it) are written plainly; see Free.
	ref    int32
	typ    Type
	flags  Flags
	order  int8  // RAM: heap block order
	ifIdx  uint8 // receiving netif, 0 for none
	gso    GSOType
	gsoSz  uint16 // GSO: payload bytes of each segment but the last
	blk    int32  // RAM: heap unit of the block
	idx    int32  // index in its header pool: frees in constant time from a lazy pool
	a      *Allocator
	parent *Pbuf            // REF made by Split or RefRange: holds a reference to the pbuf it shares memory with
	owner  Releaser         // REF: told on release
	pool   *memp.Pool[Pbuf] // REF/ROM: the header pool it came from
}

// Next returns the next pbuf of the chain, or nil. Borrowed: the chain owns it.
func (p *Pbuf) Next() *Pbuf { return p.next }

// Len returns the payload length of this pbuf.
func (p *Pbuf) Len() int { return int(p.len) }

// TotLen returns the payload length of this pbuf and all that follow it.
func (p *Pbuf) TotLen() int { return int(p.totLen) }

// Type returns the pbuf's kind.
func (p *Pbuf) Type() Type { return p.typ }

// Payload returns this pbuf's payload (not the rest of the chain). The slice aliases the
// pbuf's memory and is valid until the pbuf is freed.
func (p *Pbuf) Payload() []byte { return p.mem[p.off : p.off+p.len : p.off+p.len] }

// HeaderRoom returns how many bytes AddHeader can still prepend.
func (p *Pbuf) HeaderRoom() int {
	if p.typ == ROM {
		return 0 // constant memory is never written
	}
	return int(p.off)
}

// Flags returns the packet flags (kept on the first pbuf of a chain).
func (p *Pbuf) Flags() Flags { return p.flags }

// SetFlags replaces the packet flags.
func (p *Pbuf) SetFlags(f Flags) { p.flags = f }

// GSO returns how a large packet is to be segmented (kept on the first pbuf of a chain):
// GSONone for an ordinary packet, else the type and the payload bytes of every segment
// but the last. On input the same mark says a link coalesced the packet (GRO) from
// segments of that size.
func (p *Pbuf) GSO() (GSOType, int) { return p.gso, int(p.gsoSz) }

// SetGSO sets the segmentation request; GSONone (or a size of 0) clears it.
func (p *Pbuf) SetGSO(t GSOType, size int) {
	if t == GSONone || size <= 0 {
		p.gso, p.gsoSz = GSONone, 0
		return
	}
	p.gso, p.gsoSz = t, uint16(min(size, 0xffff))
}

// CopyMeta copies the per-packet facts of q (flags, receiving netif, GSO request) to p: a
// header pbuf put in front of q, or the rest of a chain taking over from its first pbuf.
func (p *Pbuf) CopyMeta(q *Pbuf) {
	p.flags, p.ifIdx, p.gso, p.gsoSz = q.flags, q.ifIdx, q.gso, q.gsoSz
}

// IfIndex returns the index of the netif the packet arrived on (0: none).
func (p *Pbuf) IfIndex() int { return int(p.ifIdx) }

// SetIfIndex records the receiving netif.
func (p *Pbuf) SetIfIndex(i int) { p.ifIdx = uint8(i) }

// Refs returns the reference count of this pbuf.
func (p *Pbuf) Refs() int { return int(atomic.LoadInt32(&p.ref)) }

// Ref adds a reference to p (only p, as lwIP's pbuf_ref: the rest of the chain is held
// through p).
func (p *Pbuf) Ref() { atomic.AddInt32(&p.ref, 1) }

// Free drops one reference to p and releases every pbuf of the chain whose count reaches
// zero, stopping at the first still referenced. It returns how many pbufs were released.
// Takes ownership of the caller's reference. Free of nil is a no-op.
func (p *Pbuf) Free() int {
	if p == nil {
		return 0
	}
	var f freer
	defer f.unlock() // a double-free panic must not leave the allocator locked
	return f.free(p)
}

// FreeAll is Free of every chain of ps (nil entries skipped), holding an allocator's lock
// across consecutive releases instead of taking it once per chain: a link that has written
// a batch frees it at once. It returns how many pbufs were released. Takes ownership of
// the caller's reference on each; the slice is borrowed and left as it was.
func FreeAll(ps []*Pbuf) int {
	var f freer
	defer f.unlock()
	n := 0
	for _, p := range ps {
		n += f.free(p)
	}
	return n
}

// AddHeader moves the payload start back by n bytes to prepend a header (lwIP
// pbuf_add_header). It fails with errs.Buf when the header room is too small.
func (p *Pbuf) AddHeader(n int) error {
	if n < 0 || n > p.HeaderRoom() {
		return errs.Buf
	}
	p.off -= int32(n)
	p.len += int32(n)
	p.totLen += int32(n)
	return nil
}

// RemoveHeader moves the payload start forward by n bytes (lwIP pbuf_remove_header). It only
// works within the first pbuf; it fails with errs.Buf otherwise.
func (p *Pbuf) RemoveHeader(n int) error {
	if n < 0 || n > int(p.len) {
		return errs.Buf
	}
	p.off += int32(n)
	p.len -= int32(n)
	p.totLen -= int32(n)
	return nil
}

// Header returns the first n bytes of the chain when they are contiguous in the first
// pbuf, as protocol headers must be. Borrowed, valid until p is freed.
func (p *Pbuf) Header(n int) ([]byte, bool) {
	if n < 0 || n > int(p.len) {
		return nil, false
	}
	return p.mem[p.off : p.off+int32(n) : p.off+int32(n)], true
}

// Cat appends chain t to chain h (lwIP pbuf_cat). Takes ownership of the caller's reference
// to t: from now on freeing h frees t. Both must be chains the caller owns.
func Cat(h, t *Pbuf) {
	if h == nil || t == nil {
		panic("pbuf: Cat of nil")
	}
	p := h
	for ; p.next != nil; p = p.next {
		p.totLen += t.totLen
	}
	p.totLen += t.totLen
	p.next = t
}

// Chain is Cat that keeps the caller's reference to t (lwIP pbuf_chain): the caller still
// owns t and must Free it.
func Chain(h, t *Pbuf) {
	Cat(h, t)
	t.Ref()
}

// Dechain detaches the rest of the chain after p and returns it (lwIP pbuf_dechain). The
// caller owns both p and the returned chain (nil if p was alone).
func (p *Pbuf) Dechain() *Pbuf {
	q := p.next
	if q == nil {
		return nil
	}
	p.next = nil
	p.totLen = p.len
	return q
}

// Skip returns the pbuf of the chain that holds byte offset, and the offset inside it
// (lwIP pbuf_skip); nil if offset is at or past the end. Borrowed.
func (p *Pbuf) Skip(offset int) (*Pbuf, int) {
	for p != nil && offset >= int(p.len) {
		offset -= int(p.len)
		p = p.next
	}
	return p, offset
}

// CopyOut copies bytes of the chain starting at offset into dst and returns how many
// (lwIP pbuf_copy_partial).
func (p *Pbuf) CopyOut(dst []byte, offset int) int {
	q, o := p.Skip(offset)
	n := 0
	for q != nil && n < len(dst) {
		n += copy(dst[n:], q.mem[q.off+int32(o):q.off+q.len])
		o = 0
		q = q.next
	}
	return n
}

// CopyIn copies src into the chain starting at offset (lwIP pbuf_take_at); it fails with
// errs.Buf, copying nothing, if the chain is too short.
func (p *Pbuf) CopyIn(src []byte, offset int) error {
	if offset < 0 || offset+len(src) > int(p.totLen) {
		return errs.Buf
	}
	q, o := p.Skip(offset)
	for n := 0; n < len(src); q, o = q.next, 0 {
		n += copy(q.mem[q.off+int32(o):q.off+q.len], src[n:])
	}
	return nil
}

// Bytes appends the whole chain's payload to dst (for tests and slow paths).
func (p *Pbuf) Bytes(dst []byte) []byte {
	for q := p; q != nil; q = q.next {
		dst = append(dst, q.Payload()...)
	}
	return dst
}

// ByteAt returns the byte at offset in the chain (lwIP pbuf_get_at); ok is false past the end.
func (p *Pbuf) ByteAt(offset int) (byte, bool) {
	q, o := p.Skip(offset)
	if q == nil {
		return 0, false
	}
	return q.mem[q.off+int32(o)], true
}

// Copy copies the payload of chain src into chain dst, which must be at least as long
// (lwIP pbuf_copy). Neither reference changes hands.
func Copy(dst, src *Pbuf) error {
	if dst.totLen < src.totLen {
		return errs.Arg
	}
	off := 0
	for q := src; q != nil; q = q.next {
		if err := dst.CopyIn(q.Payload(), off); err != nil {
			return err
		}
		off += int(q.len)
	}
	return nil
}

// Shrink trims the chain to newLen bytes, freeing pbufs that are no longer needed (lwIP
// pbuf_realloc; growing is not possible). The caller keeps its reference to p.
func (p *Pbuf) Shrink(newLen int) {
	if newLen < 0 || newLen > int(p.totLen) {
		panic("pbuf: Shrink out of range")
	}
	rem := newLen
	q := p
	for rem > int(q.len) {
		q.totLen = int32(rem) // q keeps all its bytes; rem counts from q onward
		rem -= int(q.len)
		q = q.next
	}
	// q is the new last pbuf.
	q.len = int32(rem)
	q.totLen = int32(rem)
	if rest := q.next; rest != nil {
		q.next = nil
		rest.Free()
	}
}

// Split cuts the chain at byte offset at (0 < at < TotLen) and returns the tail; p keeps the
// first at bytes. When at falls inside a pbuf, the tail starts with a REF pbuf sharing that
// pbuf's memory (it holds a reference until freed). The caller owns both chains; on error
// (errs.Mem: no REF header free) nothing changed.
func (p *Pbuf) Split(at int) (*Pbuf, error) {
	if at <= 0 || at >= int(p.totLen) {
		return nil, errs.Arg
	}
	q, o := p.Skip(at)
	// find the pbuf before q
	var prev *Pbuf
	for r := p; r != q; r = r.next {
		prev = r
	}
	if o == 0 {
		prev.next = nil
		for r := p; r != nil; r = r.next {
			r.totLen -= q.totLen
		}
		return q, nil
	}
	t, ti := p.a.refPool.GetIndex()
	if t == nil {
		return nil, errs.Mem
	}
	t.idx = int32(ti)
	t.typ = REF
	t.a = p.a
	t.pool = p.a.refPool
	t.mem = q.mem
	t.off = q.off + int32(o)
	t.len = q.len - int32(o)
	t.totLen = q.totLen - int32(o)
	t.next = q.next
	t.parent = q
	t.ref = 1
	q.Ref()
	q.next = nil
	q.len = int32(o)
	for r := p; r != nil; r = r.next {
		r.totLen -= t.totLen
	}
	return t, nil
}

// Check verifies the chain's invariants (tot_len == len + next.tot_len, positive counts) and
// returns a description of the first violation. Tests call it after every operation.
func (p *Pbuf) Check() error {
	for q := p; q != nil; q = q.next {
		want := q.len
		if q.next != nil {
			want += q.next.totLen
		}
		if q.totLen != want {
			return fmt.Errorf("pbuf: tot_len %d != len %d + next.tot_len", q.totLen, q.len)
		}
		if r := atomic.LoadInt32(&q.ref); r <= 0 {
			return fmt.Errorf("pbuf: reference count %d in a live chain", r)
		}
		if q.off < 0 || int(q.off+q.len) > len(q.mem) {
			return fmt.Errorf("pbuf: payload [%d,%d) outside memory of %d", q.off, q.off+q.len, len(q.mem))
		}
	}
	return nil
}
