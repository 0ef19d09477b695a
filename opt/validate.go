package opt

import (
	"errors"
	"fmt"
	"time"
)

// Limits the engine is built for; Validate rejects options outside them.
const (
	// MinPbufPoolBufSize is the smallest POOL pbuf: it must hold a full IPv6 header plus the
	// largest TCP header so that headers are always contiguous in the first pbuf of a frame.
	MinPbufPoolBufSize = 14 + 40 + 60
	// MaxPbufPoolBufSize bounds one POOL chunk.
	MaxPbufPoolBufSize = 64 << 10
	// MinMemSize is the smallest heap: one 1-KiB block.
	MinMemSize = 1024
	// MaxPoolCount bounds any one pool (indices are 32-bit).
	MaxPoolCount = 1 << 24
	// MaxMemSize bounds the heap.
	MaxMemSize = 1 << 34
	// MaxTCPWnd is the largest window window scaling can express (RFC 7323 §2.3: shift ≤ 14).
	MaxTCPWnd = 0xffff << 14
)

// Validate reports the first inconsistent setting, naming the field. A stack refuses to
// start with options that fail validation.
func (o *Options) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("opt: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	count := func(field string, v, min int) {
		if v < min || v > MaxPoolCount {
			bad(field, "%d out of range [%d, %d]", v, min, MaxPoolCount)
		}
	}
	if o.MemSize < MinMemSize || o.MemSize > MaxMemSize {
		bad("MemSize", "%d out of range [%d, %d]", o.MemSize, MinMemSize, MaxMemSize)
	}
	count("PbufPoolSize", o.PbufPoolSize, 2)
	if o.PbufPoolBufSize < MinPbufPoolBufSize || o.PbufPoolBufSize > MaxPbufPoolBufSize {
		bad("PbufPoolBufSize", "%d out of range [%d, %d] (must hold link+IPv6+TCP headers)",
			o.PbufPoolBufSize, MinPbufPoolBufSize, MaxPbufPoolBufSize)
	}
	count("MempNumPbuf", o.MempNumPbuf, 1)
	count("MempNumPbufRAM", o.MempNumPbufRAM, 1)
	count("MempNumRawPCB", o.MempNumRawPCB, 0)
	count("MempNumUDPPCB", o.MempNumUDPPCB, 0)
	count("MempNumTCPPCB", o.MempNumTCPPCB, 0)
	count("MempNumTCPPCBListen", o.MempNumTCPPCBListen, 0)
	count("MempNumTCPSeg", o.MempNumTCPSeg, 0)
	count("MempNumNetconn", o.MempNumNetconn, 0)
	count("MempNumReassData", o.MempNumReassData, 0)
	count("IPReassMaxPbufs", o.IPReassMaxPbufs, 0)
	count("MempNumFragPbuf", o.MempNumFragPbuf, 0)
	count("ARPTableSize", o.ARPTableSize, 1)
	count("MempNumARPQueue", o.MempNumARPQueue, 0)
	count("ND6NumNeighbors", o.ND6NumNeighbors, 1)
	count("ND6NumRouters", o.ND6NumRouters, 1)
	count("ND6NumPrefixes", o.ND6NumPrefixes, 1)
	count("MempNumND6Queue", o.MempNumND6Queue, 0)
	count("MempNumIGMPGroup", o.MempNumIGMPGroup, 0)
	count("MempNumMLD6Group", o.MempNumMLD6Group, 0)
	if o.MempNumReassData > 0 && o.IPReassMaxPbufs < 2 {
		bad("IPReassMaxPbufs", "%d: reassembly needs at least 2 pbufs (or set MempNumReassData to 0 to disable it)", o.IPReassMaxPbufs)
	}
	if o.MempNumReassData > 0 && o.IPReassMaxAge <= 0 {
		bad("IPReassMaxAge", "%v must be positive", o.IPReassMaxAge)
	}
	if o.ARPMaxAge <= 0 {
		bad("ARPMaxAge", "%v must be positive", o.ARPMaxAge)
	}
	if o.ND6ReachableTime <= 0 {
		bad("ND6ReachableTime", "%v must be positive", o.ND6ReachableTime)
	}
	if o.ND6RetransTimer <= 0 {
		bad("ND6RetransTimer", "%v must be positive", o.ND6RetransTimer)
	}
	if o.IPv6DupAddrDetectTransmits < 0 || o.IPv6DupAddrDetectTransmits > 10 {
		bad("IPv6DupAddrDetectTransmits", "%d out of range [0, 10]", o.IPv6DupAddrDetectTransmits)
	}
	if o.IPDefaultTTL == 0 {
		bad("IPDefaultTTL", "must not be 0")
	}
	if o.ICMPRateLimit < 0 || o.ICMPRateBurst < 0 || (o.ICMPRateLimit > 0 && o.ICMPRateBurst == 0) {
		bad("ICMPRateBurst", "%d with ICMPRateLimit %d: both non-negative, burst ≥ 1 when limiting", o.ICMPRateBurst, o.ICMPRateLimit)
	}
	// TCP: lwIP's own sanity checks (init.c) plus the RFC limits.
	if o.TCPMSS < 64 || o.TCPMSS > 65535-40 {
		bad("TCPMSS", "%d out of range [64, 65495]", o.TCPMSS)
	}
	// lwIP's rules relate windows and buffers to TCP_MSS. Here TCPMSS is a cap that the
	// route MTU lowers, so a tunnel may set 65495 and still run 1460-byte segments on
	// Ethernet: the rules use the segment size of a 1500-byte path when TCPMSS is larger.
	mss := min(o.TCPMSS, 1460)
	if o.TCPWnd < 2*mss || o.TCPWnd > MaxTCPWnd {
		bad("TCPWnd", "%d must be in [2*min(TCPMSS, 1460)=%d, %d]", o.TCPWnd, 2*mss, MaxTCPWnd)
	}
	if o.TCPSndBuf < 2*mss {
		bad("TCPSndBuf", "%d must be at least 2*min(TCPMSS, 1460)=%d", o.TCPSndBuf, 2*mss)
	}
	if o.TCPMaxSndBuf != 0 && o.TCPMaxSndBuf < o.TCPSndBuf {
		bad("TCPMaxSndBuf", "%d must be 0 or at least TCPSndBuf=%d", o.TCPMaxSndBuf, o.TCPSndBuf)
	}
	if min := (2*o.TCPSndBuf + mss - 1) / max(mss, 1); o.TCPSndQueueLen < min {
		bad("TCPSndQueueLen", "%d must be at least (2*TCPSndBuf)/min(TCPMSS, 1460)=%d", o.TCPSndQueueLen, min)
	}
	if o.MempNumTCPSeg > 0 && o.MempNumTCPSeg < o.TCPSndQueueLen {
		bad("MempNumTCPSeg", "%d must be at least TCPSndQueueLen=%d", o.MempNumTCPSeg, o.TCPSndQueueLen)
	}
	if o.TCPTTL == 0 {
		bad("TCPTTL", "must not be 0")
	}
	if o.TCPMaxWnd < o.TCPWnd || o.TCPMaxWnd > MaxTCPWnd {
		bad("TCPMaxWnd", "%d must be in [TCPWnd=%d, %d]", o.TCPMaxWnd, o.TCPWnd, MaxTCPWnd)
	}
	if !o.TCPWndScale && o.TCPMaxWnd > 0xffff {
		bad("TCPMaxWnd", "%d needs TCPWndScale (windows above 65535)", o.TCPMaxWnd)
	}
	switch o.TCPCongestion {
	case "cubic", "newreno":
	default:
		bad("TCPCongestion", "%q: want \"cubic\" or \"newreno\"", o.TCPCongestion)
	}
	if o.TCPInitCwnd < 1 || o.TCPInitCwnd > 64 {
		bad("TCPInitCwnd", "%d out of range [1, 64] segments", o.TCPInitCwnd)
	}
	if o.TCPMinRTO <= 0 || o.TCPMaxRTO < o.TCPMinRTO || o.TCPInitRTO < o.TCPMinRTO || o.TCPInitRTO > o.TCPMaxRTO {
		bad("TCPMinRTO", "want 0 < TCPMinRTO (%v) <= TCPInitRTO (%v) <= TCPMaxRTO (%v)", o.TCPMinRTO, o.TCPInitRTO, o.TCPMaxRTO)
	}
	if o.TCPMaxRtx < 1 || o.TCPSynMaxRtx < 1 {
		bad("TCPMaxRtx", "TCPMaxRtx (%d) and TCPSynMaxRtx (%d) must be ≥ 1", o.TCPMaxRtx, o.TCPSynMaxRtx)
	}
	if o.TCPSynAckMaxRtx < 1 || o.TCPSynRcvdTimeout <= 0 {
		bad("TCPSynAckMaxRtx", "TCPSynAckMaxRtx (%d) must be ≥ 1 and TCPSynRcvdTimeout (%v) positive", o.TCPSynAckMaxRtx, o.TCPSynRcvdTimeout)
	}
	if o.TCPDeferTimeout <= 0 {
		bad("TCPDeferTimeout", "%v must be positive", o.TCPDeferTimeout)
	}
	if o.TCPMSL <= 0 {
		bad("TCPMSL", "%v must be positive", o.TCPMSL)
	}
	if o.TCPDelAckTimeout <= 0 || o.TCPDelAckTimeout >= 500*time.Millisecond {
		bad("TCPDelAckTimeout", "%v must be in (0, 500ms) (RFC 9293 §3.8.6.3)", o.TCPDelAckTimeout)
	}
	if o.TCPKeepIdle <= 0 || o.TCPKeepIntvl <= 0 || o.TCPKeepCnt < 1 {
		bad("TCPKeepIdle", "keepalive idle (%v) and interval (%v) must be positive and count (%d) ≥ 1", o.TCPKeepIdle, o.TCPKeepIntvl, o.TCPKeepCnt)
	}
	if o.TCPListenBacklog < 1 {
		bad("TCPListenBacklog", "%d must be ≥ 1", o.TCPListenBacklog)
	}
	if o.TCPOOSeqMaxPbufs < 0 {
		bad("TCPOOSeqMaxPbufs", "%d must be ≥ 0", o.TCPOOSeqMaxPbufs)
	}
	if o.TCPChallengeAckLimit < 0 {
		bad("TCPChallengeAckLimit", "%d must be ≥ 0", o.TCPChallengeAckLimit)
	}
	if o.TCPPortLow < 1024 || o.TCPPortHigh < o.TCPPortLow || int(o.TCPPortHigh)-int(o.TCPPortLow) < 255 {
		bad("TCPPortLow", "ephemeral range %d-%d: want 1024 <= low, at least 256 ports", o.TCPPortLow, o.TCPPortHigh)
	}
	if o.TCPRecvMboxSize < 1 || o.UDPRecvMboxSize < 1 || o.AcceptMboxSize < 1 {
		bad("TCPRecvMboxSize", "mailbox sizes must be ≥ 1 (tcp %d, udp %d, accept %d)", o.TCPRecvMboxSize, o.UDPRecvMboxSize, o.AcceptMboxSize)
	}
	if o.DNSMaxServers < 1 || o.DNSMaxServers > 16 {
		bad("DNSMaxServers", "%d: want 1-16", o.DNSMaxServers)
	}
	if o.DNSTableSize < 1 || o.DNSTableSize > 1<<16 {
		bad("DNSTableSize", "%d: want 1-65536", o.DNSTableSize)
	}
	if o.DNSMaxRetries < 1 || o.DNSMaxRetries > 64 {
		bad("DNSMaxRetries", "%d: want 1-64", o.DNSMaxRetries)
	}
	if o.DNSRetryInterval < 10*time.Millisecond || o.DNSRetryInterval > time.Minute {
		bad("DNSRetryInterval", "%v: want 10ms-1m", o.DNSRetryInterval)
	}
	return errors.Join(errs...)
}
