package forwarder

import (
	"encoding/binary"
	"net/netip"

	"github.com/wispstack/wisp/ip"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/stack"
)

// ICMPConfig configures echo requests (ping) to intercepted addresses.
type ICMPConfig struct {
	// Mode: EchoLocal (default: answered in the core, from the address pinged), EchoHost
	// (handed to Handler), EchoDrop.
	Mode EchoMode
	// Handler gets each echo request under EchoHost, on a new goroutine; at most
	// MaxEchoPending at once (beyond, dropped and counted). nil: EchoHost drops.
	Handler func(*EchoRequest)
}

// EchoRequest is an intercepted echo request (ICMP type 8 or ICMPv6 type 128): from Src
// to Dst, with its identifier, sequence number and data. Reply answers it.
type EchoRequest struct {
	Src, Dst netip.Addr
	ID, Seq  uint16
	Data     []byte

	k *stack.Core
}

// Reply sends the echo reply from Dst to Src with Data (after the host's real round trip,
// say). Errors: the IP layer's (errs.Mem, a routing error).
func (r *EchoRequest) Reply() error {
	r.k.Lock()
	defer r.k.Unlock()
	return r.k.IP().SendEchoReply(r.Dst, r.Src, r.ID, r.Seq, r.Data)
}

// echoState is the forwarder's echo hook, one per core.
type echoState struct {
	cores []*echoCore
}

// echoCore is the echo hook of one core; scratch (its lock) holds the data of a request
// that came in a chain, for a local reply.
type echoCore struct {
	f       *Forwarder
	k       *stack.Core
	scratch []byte
}

func (f *Forwarder) startEcho() {
	for _, k := range f.s.Cores() {
		e := &echoCore{f: f, k: k}
		f.echo.cores = append(f.echo.cores, e)
		k.Lock()
		// Every mode goes through the hook, so the forwarder counts what it answered.
		k.IP().SetInterceptEcho(EchoHost, e.hook)
		k.Unlock()
	}
}

// stopEcho gives echo back to the core (answered locally, as with no forwarder).
func (f *Forwarder) stopEcho() {
	for _, e := range f.echo.cores {
		e.k.Lock()
		e.k.IP().SetInterceptEcho(EchoLocal, nil)
		e.k.Unlock()
	}
}

// hook (core context) takes an echo request to an intercepted address, p (owned) at its
// ICMP or ICMPv6 header; h is borrowed.
func (e *echoCore) hook(h *ip.Header, p *pbuf.Pbuf) {
	f := e.f
	c := &f.cfg.ICMP
	var hdr [8]byte
	if p.CopyOut(hdr[:], 0) < len(hdr) {
		f.st.echoDropped.Add(1)
		p.Free()
		return
	}
	id, seq := binary.BigEndian.Uint16(hdr[4:]), binary.BigEndian.Uint16(hdr[6:])
	n := p.TotLen() - len(hdr)
	switch {
	case c.Mode == EchoLocal:
		var data []byte
		if p.Next() == nil {
			data = p.Payload()[len(hdr):]
		} else {
			if cap(e.scratch) < n {
				e.scratch = make([]byte, n)
			}
			data = e.scratch[:n]
			p.CopyOut(data, len(hdr))
		}
		if err := e.k.IP().SendEchoReply(h.Dst, h.Src, id, seq, data); err != nil {
			f.st.echoDropped.Add(1)
		} else {
			f.st.echoLocal.Add(1)
		}
		p.Free()
	case c.Mode == EchoHost && c.Handler != nil && f.st.echoPending.Load() < MaxEchoPending:
		r := &EchoRequest{Src: h.Src, Dst: h.Dst, ID: id, Seq: seq, Data: make([]byte, n), k: e.k}
		p.CopyOut(r.Data, len(hdr))
		p.Free()
		f.st.echoHost.Add(1)
		f.st.echoPending.Add(1)
		go func() {
			defer f.st.echoPending.Add(-1)
			c.Handler(r)
		}()
	default:
		f.st.echoDropped.Add(1)
		p.Free()
	}
}
