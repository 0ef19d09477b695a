package opt

import (
	"fmt"
	"time"
)

// Options sizes a stack. Every pool, heap and queue is allocated once from these numbers
// when the stack is created and never grows: exhaustion fails the operation (ERR_MEM), drops
// the packet or resets the connection, and counts it. Field names follow lwIP's options.
//
// The zero value is not useful; start from a preset (Embedded, Client, Tunnel) and adjust.
type Options struct {
	// MemSize is the size in bytes of the heap that RAM pbufs (outgoing data) are carved
	// from (lwIP MEM_SIZE). The heap is a buddy allocator with 64-byte blocks: a request is
	// rounded up to a power of two, and one RAM pbuf is at most 64 KiB (larger requests become
	// chains).
	MemSize int
	// PbufPoolSize is the number of POOL pbufs, the fixed chunks received frames are stored
	// in (lwIP PBUF_POOL_SIZE).
	PbufPoolSize int
	// PbufPoolBufSize is the payload size of one POOL pbuf (lwIP PBUF_POOL_BUFSIZE). A frame
	// larger than this is stored as a chain.
	PbufPoolBufSize int
	// MempNumPbuf is the number of pbuf headers for REF/ROM pbufs that point at caller
	// memory (lwIP MEMP_NUM_PBUF).
	MempNumPbuf int
	// MempNumPbufRAM is the number of pbuf headers for RAM pbufs. lwIP keeps these headers
	// inside the heap; in Go they hold pointers and so live in a pool of their own, kept out
	// of the pointer-free payload arenas.
	MempNumPbufRAM int

	// MempNumRawPCB, MempNumUDPPCB, MempNumTCPPCB, MempNumTCPPCBListen, MempNumTCPSeg:
	// protocol control blocks and queued segments (lwIP MEMP_NUM_*).
	MempNumRawPCB       int
	MempNumUDPPCB       int
	MempNumTCPPCB       int
	MempNumTCPPCBListen int
	MempNumTCPSeg       int
	// MempNumNetconn bounds the netconns (connections and listeners of endpoint/netconn) of
	// a stack, as lwIP's MEMP_NUM_NETCONN: a count, not a pool, since a netconn is an object
	// its user holds and is never recycled. wisp has no netbufs (lwIP's MEMP_NUM_NETBUF): a
	// datagram waits in its mailbox as the pbuf chain it arrived in.
	MempNumNetconn int

	// MempNumReassData is the number of datagrams (IPv4 and IPv6 together) that may be under
	// reassembly at once (lwIP MEMP_NUM_REASSDATA).
	MempNumReassData int
	// IPReassMaxPbufs bounds the POOL pbufs held by all datagrams under reassembly
	// (lwIP IP_REASS_MAX_PBUFS); when reached, the oldest datagram is dropped.
	IPReassMaxPbufs int
	// IPReassMaxAge is how long an incomplete datagram is kept (lwIP IP_REASS_MAXAGE,
	// RFC 8200 §4.5 says 60 s for IPv6; lwIP uses 15 s for both by default).
	IPReassMaxAge time.Duration
	// MempNumFragPbuf is the number of fragments that may be in flight while an outgoing
	// datagram is fragmented (lwIP MEMP_NUM_FRAG_PBUF).
	MempNumFragPbuf int

	// ARPTableSize is the number of IPv4 neighbour entries per stack (lwIP ARP_TABLE_SIZE).
	ARPTableSize int
	// MempNumARPQueue is the number of packets queued while their next hop is resolved, over
	// all entries (lwIP MEMP_NUM_ARP_QUEUE).
	MempNumARPQueue int
	// ARPMaxAge is how long a resolved ARP entry is used before it is refreshed (lwIP
	// ARP_MAXAGE).
	ARPMaxAge time.Duration

	// ND6NumNeighbors is the number of IPv6 neighbour cache entries (lwIP
	// LWIP_ND6_NUM_NEIGHBORS); ND6NumRouters the default-router list size; ND6NumPrefixes the
	// on-link prefix list size.
	ND6NumNeighbors int
	ND6NumRouters   int
	ND6NumPrefixes  int
	// MempNumND6Queue is the number of IPv6 packets queued while their neighbour is resolved
	// (lwIP MEMP_NUM_ND6_QUEUE).
	MempNumND6Queue int
	// ND6ReachableTime is the base reachable time until a neighbour goes STALE when the
	// router does not advertise one (RFC 4861 REACHABLE_TIME, 30 s).
	ND6ReachableTime time.Duration
	// ND6RetransTimer is the interval between neighbour solicitations (RFC 4861 RETRANS_TIMER).
	ND6RetransTimer time.Duration
	// IPv6DupAddrDetectTransmits is the number of DAD probes for a tentative address
	// (RFC 4862 DupAddrDetectTransmits); 0 disables DAD.
	IPv6DupAddrDetectTransmits int
	// IPv6AutoConfig enables SLAAC from router advertisements (RFC 4862).
	IPv6AutoConfig bool

	// MempNumIGMPGroup and MempNumMLD6Group bound the multicast groups joined
	// (lwIP MEMP_NUM_IGMP_GROUP, MEMP_NUM_MLD6_GROUP).
	MempNumIGMPGroup int
	MempNumMLD6Group int

	// IPDefaultTTL is the TTL / hop limit of packets wisp originates (lwIP IP_DEFAULT_TTL).
	IPDefaultTTL uint8
	// IPForward routes packets between netifs (lwIP IP_FORWARD). Off: packets not addressed
	// to the stack are dropped and counted.
	IPForward bool
	// GRO coalesces the in-order TCP segments of one flow within each batch a link delivers
	// into one large segment before IP input (software GRO, Linux's rules: never across a
	// gap, a PSH, a changed option or header field), so IP and TCP run once per burst
	// instead of once per segment. Links that deliver bare IP packets (link.MediumIP: a TUN,
	// a WireGuard device, a gVisor link) get it. Off: every packet goes up as it came.
	GRO bool
	// ICMPRateLimit is the number of ICMP error messages a stack may send per second, and
	// ICMPRateBurst the bucket depth (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)).
	ICMPRateLimit int
	ICMPRateBurst int

	// TCPMSS is the largest segment wisp sends before the peer's MSS and the route MTU clamp
	// it (lwIP TCP_MSS).
	TCPMSS int
	// TCPWnd is the receive window (lwIP TCP_WND); values above 65535 need window scaling.
	TCPWnd int
	// TCPSndBuf is the bytes a connection may have queued for sending (lwIP TCP_SND_BUF)
	// when it starts.
	TCPSndBuf int
	// TCPMaxSndBuf is the largest send buffer autotuning may grow a connection to (Linux's
	// tcp_wmem[2]): the buffer follows twice the congestion window, so a long fat path is
	// not held to TCPSndBuf per round trip. Queued data lives in the stack's heap (MemSize),
	// which still bounds all connections together. 0 or TCPSndBuf: no autotuning.
	TCPMaxSndBuf int
	// TCPSndQueueLen is the number of pbufs a connection may have queued for sending
	// (lwIP TCP_SND_QUEUELEN).
	TCPSndQueueLen int
	// TCPTTL is the TTL of TCP segments (lwIP TCP_TTL).
	TCPTTL uint8
	// TCPMaxWnd is the largest receive window autotuning may grow a connection to while the
	// stack's packet memory allows (TCPWnd is where every connection starts). Equal to
	// TCPWnd: no autotuning.
	TCPMaxWnd int
	// TCPWndScale, TCPTimestamps and TCPSACK offer window scaling, timestamps (RFC 7323) and
	// SACK (RFC 2018) on SYNs (lwIP LWIP_WND_SCALE, LWIP_TCP_TIMESTAMPS, LWIP_TCP_SACK_OUT).
	// Window scaling is needed for windows above 65535.
	TCPWndScale   bool
	TCPTimestamps bool
	TCPSACK       bool
	// TCPCongestion names the congestion control: "cubic" (RFC 9438) or "newreno" (RFC 6582).
	TCPCongestion string
	// TCPInitCwnd is the initial congestion window in segments (RFC 6928 allows 10).
	TCPInitCwnd int
	// TCPMinRTO and TCPMaxRTO bound the retransmission timeout (RFC 6298 §2.4 asks for a
	// 1 s minimum; Linux uses 200 ms). TCPInitRTO is the RTO before the first sample.
	TCPMinRTO  time.Duration
	TCPMaxRTO  time.Duration
	TCPInitRTO time.Duration
	// TCPMaxRtx and TCPSynMaxRtx are the retransmissions of a segment and of a SYN before
	// the connection is dropped with a timeout (lwIP TCP_MAXRTX, TCP_SYNMAXRTX).
	TCPMaxRtx    int
	TCPSynMaxRtx int
	// TCPSynAckMaxRtx is the SYN-ACK retransmissions of a half-open (SYN-RECEIVED)
	// connection a listener made before it is dropped (Linux tcp_synack_retries); with the
	// RTO doubling from TCPInitRTO, 5 gives up after 1+2+4+8+16+32 = 63 s, as Linux does.
	TCPSynAckMaxRtx int
	// TCPSynRcvdTimeout bounds a half-open connection's whole life in SYN-RECEIVED, whatever
	// the RTO (Linux's effective limit is the 63 s above). When a listener's backlog or the
	// TCP_PCB pool is full, the oldest half-open connection is reaped first.
	TCPSynRcvdTimeout time.Duration
	// TCPDeferTimeout bounds how long an intercepted SYN a deferred intercept listener holds
	// (transport/tcp ListenIntercept, forwarder's deferred accept) waits for the host's
	// decision: past it the client gets a RST and the connection is counted in
	// DeferTimeouts. Nothing is sent to the client before the decision.
	TCPDeferTimeout time.Duration
	// TCPMSL is the maximum segment lifetime; TIME-WAIT lasts 2*TCPMSL (lwIP TCP_MSL).
	TCPMSL time.Duration
	// TCPDelAckTimeout bounds how long an ACK is delayed (RFC 9293 §3.8.6.3: under 0.5 s).
	TCPDelAckTimeout time.Duration
	// TCPKeepIdle, TCPKeepIntvl and TCPKeepCnt are the keepalive defaults of a connection
	// that enables keepalive (lwIP TCP_KEEPIDLE_DEFAULT, TCP_KEEPINTVL_DEFAULT,
	// TCP_KEEPCNT_DEFAULT).
	TCPKeepIdle  time.Duration
	TCPKeepIntvl time.Duration
	TCPKeepCnt   int
	// TCPListenBacklog is the backlog of a listener that asks for none (lwIP
	// TCP_DEFAULT_LISTEN_BACKLOG).
	TCPListenBacklog int
	// TCPSynCookies answers SYNs with cookies (RFC 4987) when a listener's backlog is full,
	// instead of dropping them.
	TCPSynCookies bool
	// TCPOOSeqMaxPbufs bounds the pbufs one connection holds out of order (lwIP
	// TCP_OOSEQ_MAX_PBUFS); 0 means only the window and the TCP_SEG pool bound it.
	TCPOOSeqMaxPbufs int
	// TCPChallengeAckLimit is the number of challenge ACKs (RFC 5961 §7) the stack sends per
	// second.
	TCPChallengeAckLimit int
	// TCPPortLow and TCPPortHigh bound the ephemeral ports (RFC 6056; RFC 6335 suggests
	// 49152-65535). UDP uses the same range.
	TCPPortLow  uint16
	TCPPortHigh uint16
	// TCPKeepConnWhenIPChanges keeps TCP connections alive when their local address is
	// removed from its netif (esp-lwip CONFIG_LWIP_TCP_KEEP_CONNECTION_WHEN_IP_CHANGES), for
	// links whose address comes back (a DHCP renewal, a roaming tunnel). Off (the default,
	// lwIP's behaviour): removing an address aborts every connection bound to it, and their
	// owners hear ERR_ABRT. Listeners are never closed either way.
	TCPKeepConnWhenIPChanges bool

	// TCPRecvMboxSize, UDPRecvMboxSize, AcceptMboxSize bound the netcon mailboxes
	// (lwIP DEFAULT_TCP_RECVMBOX_SIZE and friends).
	TCPRecvMboxSize int
	UDPRecvMboxSize int
	AcceptMboxSize  int

	// DNSMaxServers is how many DNS servers the stack's resolver keeps (lwIP
	// DNS_MAX_SERVERS): set by hand or by DHCP, asked in order. Default 2.
	DNSMaxServers int
	// DNSTableSize is how many names the resolver holds at once, in flight or cached for
	// their TTL (lwIP DNS_TABLE_SIZE); a lookup when every entry is in flight fails with
	// ERR_MEM. Default 4 (embedded), 64 (client, tunnel).
	DNSTableSize int
	// DNSMaxRetries is how many times a query is sent (to each server in turn) before the
	// name fails (lwIP DNS_MAX_RETRIES). Default 4.
	DNSMaxRetries int
	// DNSRetryInterval is the wait for an answer before the next try (lwIP's DNS_TMR_INTERVAL
	// tick times the entry's retry count, here a fixed interval). Default 1 s.
	DNSRetryInterval time.Duration
	// DNSMDNS sends names ending in ".local" to the mDNS group as one-shot queries (RFC 6762
	// §5.1) instead of the servers (lwIP LWIP_DNS_SUPPORT_MDNS_QUERIES). Default off.
	DNSMDNS bool
	// DHCPDoesACDCheck makes the DHCP client probe an offered address with ARP before using
	// it (RFC 5227; lwIP LWIP_DHCP_DOES_ACD_CHECK) and decline it when another host answers.
	// Default on.
	DHCPDoesACDCheck bool
}

// Embedded returns the lwIP 2.1 defaults from opt.h, the configuration a microcontroller
// starts from: a 1600-byte heap, sixteen 592-byte POOL pbufs and a 536-byte MSS.
func Embedded() Options {
	const mss = 536
	return Options{
		MemSize:         1600,
		PbufPoolSize:    16,
		PbufPoolBufSize: 592, // LWIP_MEM_ALIGN_SIZE(TCP_MSS+40+PBUF_LINK_HLEN)
		MempNumPbuf:     16,
		MempNumPbufRAM:  16,

		MempNumRawPCB:       4,
		MempNumUDPPCB:       4,
		MempNumTCPPCB:       5,
		MempNumTCPPCBListen: 8,
		MempNumTCPSeg:       16,
		MempNumNetconn:      4,

		MempNumReassData: 5,
		IPReassMaxPbufs:  10,
		IPReassMaxAge:    15 * time.Second,
		MempNumFragPbuf:  15,

		ARPTableSize:    10,
		MempNumARPQueue: 30,
		ARPMaxAge:       5 * time.Minute,

		ND6NumNeighbors:            10,
		ND6NumRouters:              3,
		ND6NumPrefixes:             5,
		MempNumND6Queue:            20,
		ND6ReachableTime:           30 * time.Second,
		ND6RetransTimer:            time.Second,
		IPv6DupAddrDetectTransmits: 1,
		IPv6AutoConfig:             true,

		MempNumIGMPGroup: 8,
		MempNumMLD6Group: 4,

		IPDefaultTTL:  255,
		GRO:           true,
		ICMPRateLimit: 100,
		ICMPRateBurst: 10,

		TCPMSS:         mss,
		TCPWnd:         4 * mss,
		TCPSndBuf:      2 * mss,
		TCPSndQueueLen: (4*(2*mss) + (mss - 1)) / mss,
		TCPTTL:         255,
		TCPMaxWnd:      4 * mss,
		TCPWndScale:    false,
		TCPTimestamps:  true,
		TCPSACK:        true,
		TCPCongestion:  "newreno",
		TCPInitCwnd:    4,
		TCPMinRTO:      time.Second,
		TCPMaxRTO:      60 * time.Second,
		TCPInitRTO:     time.Second,
		TCPMaxRtx:      12,
		TCPSynMaxRtx:   6,

		TCPSynAckMaxRtx:   5,
		TCPSynRcvdTimeout: 63 * time.Second,
		TCPDeferTimeout:   10 * time.Second,
		TCPMSL:            60 * time.Second,

		TCPDelAckTimeout:     100 * time.Millisecond,
		TCPKeepIdle:          2 * time.Hour,
		TCPKeepIntvl:         75 * time.Second,
		TCPKeepCnt:           9,
		TCPListenBacklog:     255,
		TCPSynCookies:        true,
		TCPOOSeqMaxPbufs:     8,
		TCPChallengeAckLimit: 10,
		TCPPortLow:           49152,
		TCPPortHigh:          65535,

		TCPRecvMboxSize: 6,
		UDPRecvMboxSize: 6,
		AcceptMboxSize:  6,

		DNSMaxServers:    2,
		DNSTableSize:     4,
		DNSMaxRetries:    4,
		DNSRetryInterval: time.Second,
		DHCPDoesACDCheck: true,
	}
}

// Tunnel returns the preset for userspace tunnels, TUN proxies and servers: room for
// thousands of connections and multi-gigabit streams in a fixed 72 MiB of packet memory
// (see the budget report: `wisp budget --preset tunnel`).
func Tunnel() Options {
	o := Embedded()
	o.MemSize = 32 << 20
	o.PbufPoolSize = 8192
	o.PbufPoolBufSize = 2048 + 512 // a 1500-byte frame in one chunk with room to spare; larger frames chain
	o.MempNumPbuf = 4096
	o.MempNumPbufRAM = 16384

	o.MempNumRawPCB = 16
	o.DNSTableSize = 64
	o.MempNumUDPPCB = 1024
	o.MempNumTCPPCB = 8192
	o.MempNumTCPPCBListen = 64
	o.MempNumTCPSeg = 32768
	o.MempNumNetconn = 8192

	o.MempNumReassData = 64
	o.IPReassMaxPbufs = 1024
	o.IPReassMaxAge = 15 * time.Second
	o.MempNumFragPbuf = 256

	o.ARPTableSize = 256
	o.MempNumARPQueue = 512
	o.ND6NumNeighbors = 256
	o.ND6NumRouters = 8
	o.ND6NumPrefixes = 16
	o.MempNumND6Queue = 512

	o.MempNumIGMPGroup = 64
	o.MempNumMLD6Group = 64

	o.IPDefaultTTL = 64
	o.ICMPRateLimit = 1000
	o.ICMPRateBurst = 50

	// The route MTU and the peer's MSS decide: 1460 on Ethernet, 8960 on jumbo frames,
	// 65495 on a 64 KiB tunnel or loopback link.
	o.TCPMSS = 65535 - 40
	o.TCPWnd = 1 << 20
	o.TCPSndBuf = 1 << 20
	o.TCPMaxSndBuf = 8 << 20
	o.TCPSndQueueLen = 4 * (1 << 20) / 1460
	o.TCPTTL = 64
	o.TCPMaxWnd = 8 << 20
	o.TCPWndScale = true
	o.TCPCongestion = "cubic"
	o.TCPInitCwnd = 10
	o.TCPMinRTO = 200 * time.Millisecond
	o.TCPMSL = 30 * time.Second
	o.TCPDelAckTimeout = 40 * time.Millisecond
	// Tunnels relay for peers that vanish: find a dead one in minutes, not hours.
	o.TCPKeepIdle = 2 * time.Minute
	o.TCPKeepIntvl = 15 * time.Second
	o.TCPKeepCnt = 4
	o.TCPListenBacklog = 1024
	o.TCPOOSeqMaxPbufs = 0
	o.TCPChallengeAckLimit = 1000

	o.TCPRecvMboxSize = 256
	o.UDPRecvMboxSize = 256
	o.AcceptMboxSize = 128
	return o
}

// Client returns the preset for WireGuard clients and TUN proxies on a host (the default of
// adapter/wireguard): tens of connections and a single stream at multi-gigabit speed on a
// local link, in about 6 MiB of packet memory (`wisp budget --preset client`). It is
// Tunnel's protocol behaviour with pools sized for one user's traffic: a receive window
// that autotunes from 64 KiB to 256 KiB (512 POOL chunks of 2048 bytes back it) and a send
// buffer that autotunes up to 2 MiB of the 4 MiB heap.
//
// The window is the trade: under wireguard-go every packet in flight holds a 64 KiB buffer
// in the host's Go heap, so on a local link a window that autotuning grows to 1 MiB costs
// ~20 MiB more resident memory for no more throughput (bench wg/bulk). 256 KiB still
// carries 2 Gbit/s at a 1 ms round trip, but only ~50 Mbit/s at 40 ms: a client that
// downloads over long paths raises TCPMaxWnd (and PbufPoolSize to back it).
func Client() Options {
	o := Tunnel()
	o.MemSize = 4 << 20
	o.PbufPoolSize = 512
	o.PbufPoolBufSize = 2048 // a 1500-byte frame and its link header room in one chunk
	o.MempNumPbuf = 512
	o.MempNumPbufRAM = 1024

	o.MempNumRawPCB = 4
	o.MempNumUDPPCB = 64
	o.MempNumTCPPCB = 64
	o.MempNumTCPPCBListen = 16
	o.MempNumTCPSeg = 2048
	o.MempNumNetconn = 128

	o.MempNumReassData = 16
	o.IPReassMaxPbufs = 128
	o.MempNumFragPbuf = 64

	o.ARPTableSize = 16
	o.MempNumARPQueue = 32
	o.ND6NumNeighbors = 16
	o.ND6NumRouters = 4
	o.ND6NumPrefixes = 8
	o.MempNumND6Queue = 32

	o.MempNumIGMPGroup = 8
	o.MempNumMLD6Group = 8

	o.TCPWnd = 64 << 10
	o.TCPMaxWnd = 256 << 10
	o.TCPSndBuf = 256 << 10
	o.TCPMaxSndBuf = 2 << 20
	o.TCPSndQueueLen = 4 * (256 << 10) / 1460
	o.TCPListenBacklog = 64

	o.TCPRecvMboxSize = 64
	o.UDPRecvMboxSize = 64
	o.AcceptMboxSize = 32
	return o
}

// Preset returns the named preset: "embedded", "client" or "tunnel" ("server" is
// another name for "tunnel").
func Preset(name string) (Options, error) {
	switch name {
	case "embedded":
		return Embedded(), nil
	case "client":
		return Client(), nil
	case "tunnel", "server":
		return Tunnel(), nil
	}
	return Options{}, fmt.Errorf("opt: unknown preset %q (have: embedded, client, tunnel)", name)
}

// PresetNames lists the names Preset accepts.
func PresetNames() []string { return []string{"embedded", "client", "tunnel"} }
