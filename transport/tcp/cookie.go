package tcp

import (
	"net/netip"

	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/tcp/secret"
	"github.com/wispstack/wisp/wire"
)

// SYN cookies (RFC 4987 §3.6): with a listener's backlog full (or no PCB free), the SYN-ACK's
// ISN encodes the MSS, a coarse time and a keyed hash of the 4-tuple and the peer's ISN, so
// no state is kept; the final ACK (SEG.ACK - 1 = the cookie) rebuilds the connection. When
// the SYN carried timestamps, window scale and SACK-permitted travel in the low bits of our
// TSval and come back in the peer's TSecr; without timestamps they are not offered.

// sendCookie answers the SYN in with a cookie SYN-ACK.
func (t *Proto) sendCookie(l *Listener, in *segIn) {
	local := netip.AddrPortFrom(in.hdr.Dst, in.dstPort)
	remote := netip.AddrPortFrom(in.hdr.Src, in.srcPort)
	// A throwaway PCB-like computation of what we would announce.
	mtuMSS := t.routeMSS(in.hdr.Src)

	peerMSS := 536
	if in.hdr.Src.Is6() {
		peerMSS = 1220
	}
	if in.opts.HasMSS && in.opts.MSS > 0 {
		peerMSS = int(in.opts.MSS)
	}
	isn := t.keys.Cookie(local, remote, in.seq, min(peerMSS, mtuMSS, t.opts.TCPMSS), t.now())
	h := wire.TCPRepr{SrcPort: in.dstPort, DstPort: in.srcPort, SeqNum: isn, AckNum: in.seq + 1,
		Flags: wire.TCPFlagSYN | wire.TCPFlagACK, Window: uint16(min(t.opts.TCPWnd, 0xffff))}
	h.Options = wire.TCPOptions{HasMSS: true, MSS: uint16(mtuMSS)}
	if t.opts.TCPTimestamps && in.opts.HasTimestamps {
		ws := uint8(secret.NoWScale)
		if t.opts.TCPWndScale && in.opts.HasWindowScale {
			ws = min(in.opts.WindowScale, 14)
			h.Options.HasWindowScale, h.Options.WindowScale = true, wscaleFor(max(t.opts.TCPMaxWnd, t.opts.TCPWnd))
		}
		sack := t.opts.TCPSACK && in.opts.SACKPermitted
		h.Options.SACKPermitted = sack
		// The PCB rebuilt from the cookie uses the same per-4-tuple offset, so its TSvals
		// continue this one (TSCookie never packs a value above ts).
		ts := uint32(t.nowNs()/1e6) + t.keys.TSOffset(local, remote)
		h.Options.HasTimestamps, h.Options.TSVal, h.Options.TSEcr = true, tsCookie(ts, ws, sack), in.opts.TSVal
	}
	t.ext.CookiesSent++
	_ = t.send(in.hdr.Dst, in.hdr.Src, &h, nil, 0, 0, l.send.TTL(), l.send.TOS(), txOffload{})
}

// cookieACK tries to complete a cookie handshake with the ACK in (p is the whole segment,
// header included). true: p was consumed.
func (t *Proto) cookieACK(l *Listener, in *segIn, p *pbuf.Pbuf) bool {
	if in.hasSYN() || in.hasRST() || l.acceptFn == nil {
		return false
	}
	local := netip.AddrPortFrom(in.hdr.Dst, in.dstPort)
	remote := netip.AddrPortFrom(in.hdr.Src, in.srcPort)
	cookie, peerISN := in.ack-1, in.seq-1
	now := t.now()
	mss, ok := t.keys.CheckCookie(local, remote, peerISN, cookie, now)
	if !ok {
		t.ext.CookiesFailed++
		return false
	}
	var peerWS uint8 = secret.NoWScale
	sackOK := false
	if in.opts.HasTimestamps {
		ws, sk, ok := tsCookieDecode(in.opts.TSEcr)
		if ok {
			peerWS, sackOK = ws, sk
		}
	}
	c := t.allocPCB()
	if c == nil {
		// The cookie is good but no PCB can be had: reset, so the client that believes it
		// is connected learns at once that it is not (never a silent black hole).
		t.st.Memerr++
		t.ext.CookieRefused++
		t.resetFor(in, in.ack, 0, false)
		t.dropSeg(p, &t.ext.DropMem)
		return true
	}
	t.ext.CookiesValid++
	c.initPassive(l, in)
	c.initSend(now)
	c.iss = cookie
	c.sndUna, c.sndNxt, c.sndEnd, c.pushSeq, c.recover = cookie, cookie+1, cookie+1, cookie+1, cookie
	c.irs, c.rcvNxt = peerISN, in.seq
	c.rcvAdv = c.rcvNxt + uint32(min(t.opts.TCPWnd, 0xffff))
	c.syncPromise()
	c.peerMSS = mss
	if t.opts.TCPWndScale && peerWS != secret.NoWScale {
		c.flags |= fWS
		c.sndScale = peerWS
		c.rcvScale = wscaleFor(max(t.opts.TCPMaxWnd, t.opts.TCPWnd))
	} else {
		c.sndScale, c.rcvScale = 0, 0
		c.rcvBufMax, c.rcvBuf = min(c.rcvBufMax, 0xffff), min(c.rcvBuf, 0xffff)
	}
	if sackOK && t.opts.TCPSACK {
		c.flags |= fSACK
	}
	if in.opts.HasTimestamps && t.opts.TCPTimestamps {
		c.flags |= fTS
		c.tsRecent, c.tsRecentAge = in.opts.TSVal, t.nanos(now)
	}
	c.mss = c.effMSS()
	c.cc.SetMSS(c.mss)
	c.setState(StateSynReceived)
	t.hashInsert(c)
	c.flags |= fBacklog
	l.pending++
	// The rest is ordinary SYN-RECEIVED processing of this ACK (and any data on it).
	gen := c.enter()
	c.input(in, payload(in, p))
	c.leave(gen)
	return true
}
