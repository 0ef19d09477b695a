package xdp

import (
	"fmt"
	"net/netip"

	"github.com/wispstack/wisp/link"
	"github.com/wispstack/wisp/pbuf"
)

// AttachMode says where the XDP program is attached.
type AttachMode int

const (
	// AttachAuto tries the driver's hook and falls back to the generic (skb) hook.
	AttachAuto AttachMode = iota
	// AttachDriver uses the driver's hook only (native XDP).
	AttachDriver
	// AttachGeneric uses the generic hook only (after the kernel built an skb).
	AttachGeneric
)

func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachDriver:
		return "driver"
	case AttachGeneric:
		return "generic"
	}
	return fmt.Sprintf("xdp.AttachMode(%d)", int(m))
}

// Defaults of Config's zero fields.
const (
	DefaultFrameSize = 2048
	DefaultRxFrames  = 2048
	DefaultTxFrames  = 2048
	DefaultRingSize  = 2048
)

// xdpPacketHeadroom is the kernel's XDP_PACKET_HEADROOM: in copy mode a received frame
// starts this far into its UMEM chunk.
const xdpPacketHeadroom = 256

// maxAddrs bounds each address map of the program (IPv4 and IPv6).
const maxAddrs = 256

// maxQueues bounds Config.Queues (the XSKMAP's size).
const maxQueues = 64

// Config says how Open binds an interface. Zero fields take the documented defaults.
type Config struct {
	// Interface is the interface name, in the calling thread's network namespace. Required.
	Interface string
	// Queues: queues 0..Queues-1 get one AF_XDP socket each; 0 means 1. At most 64.
	Queues int
	// FrameSize is the UMEM chunk: 2048 (default) or 4096.
	FrameSize int
	// RxFrames and TxFrames are the UMEM frames of each queue for receiving (the fill ring)
	// and for transmitting: two disjoint pools. Defaults 2048 each.
	RxFrames, TxFrames int
	// RingSize is the entries of each fill, completion, RX and TX ring, a power of two;
	// default 2048.
	RingSize int
	// Mode is where the program is attached; AttachAuto by default.
	Mode AttachMode
	// ZeroCopy asks for XDP_ZEROCOPY, falling back to copy mode when the driver refuses
	// (veth does). Info says what was granted.
	ZeroCopy bool
	// BusyPoll sets SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET on the sockets
	// where the kernel allows it, and the receivers poll the socket before waiting.
	BusyPoll bool
	// Batch is the most frames one DeliverPackets gets; default link.MaxBatch.
	Batch int
	// Addrs are the addresses whose traffic the program redirects to the sockets at first
	// (SetAddrs replaces them). At most 256 per family.
	Addrs []netip.Addr
	// MTU is the link's MTU; 0 takes the interface's, capped so that a frame fits a
	// received chunk (FrameSize less the kernel's 256 bytes of headroom).
	MTU int
	// RxZeroCopy delivers pbufs that reference the UMEM frame (pbuf.REF from Alloc) instead
	// of copying each frame into the dispatcher's POOL pbufs. It needs Alloc. At most half
	// of RxFrames are lent to the stack at once; beyond that frames are copied.
	RxZeroCopy bool
	// LinkLocal makes SetAddrs redirect IPv6 link-local addresses too. Off by default: the
	// stack gives SetAddrs every address of its netif, and the link-local address it forms
	// from the interface's MAC is the host's own, whose traffic would then reach wisp
	// instead of the kernel. Set it on an interface the host does not use for IPv6
	// (addrgenmode none). Addrs are redirected as given.
	LinkLocal bool
	// Alloc is the allocator whose REF headers RxZeroCopy uses (the stack's). Nil: copy.
	Alloc *pbuf.Allocator
	// Logf receives the fallbacks taken (generic attach, copy mode), once each; nil: silent.
	Logf func(format string, args ...any)
}

// Validate reports whether Open would accept c (before asking the kernel).
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns c with its zero fields set, or an error naming the bad field.
func (c Config) withDefaults() (Config, error) {
	if c.Interface == "" {
		return c, fmt.Errorf("xdp: Config.Interface is required")
	}
	if c.Queues == 0 {
		c.Queues = 1
	}
	if c.FrameSize == 0 {
		c.FrameSize = DefaultFrameSize
	}
	if c.RxFrames == 0 {
		c.RxFrames = DefaultRxFrames
	}
	if c.TxFrames == 0 {
		c.TxFrames = DefaultTxFrames
	}
	if c.RingSize == 0 {
		c.RingSize = DefaultRingSize
	}
	if c.Batch == 0 {
		c.Batch = link.MaxBatch
	}
	switch {
	case c.Queues < 0 || c.Queues > maxQueues:
		return c, fmt.Errorf("xdp: %s: %d queues out of range [1, %d]", c.Interface, c.Queues, maxQueues)
	case c.FrameSize != 2048 && c.FrameSize != 4096:
		return c, fmt.Errorf("xdp: %s: frame size %d: must be 2048 or 4096", c.Interface, c.FrameSize)
	case c.RingSize < 8 || c.RingSize > 1<<16 || c.RingSize&(c.RingSize-1) != 0:
		return c, fmt.Errorf("xdp: %s: ring size %d: must be a power of two in [8, 65536]", c.Interface, c.RingSize)
	case c.RxFrames < 8 || c.RxFrames > 1<<20:
		return c, fmt.Errorf("xdp: %s: %d RX frames out of range [8, 1048576]", c.Interface, c.RxFrames)
	case c.TxFrames < 8 || c.TxFrames > 1<<20:
		return c, fmt.Errorf("xdp: %s: %d TX frames out of range [8, 1048576]", c.Interface, c.TxFrames)
	case c.Batch < 1 || c.Batch > c.RingSize:
		return c, fmt.Errorf("xdp: %s: batch %d out of range [1, %d]", c.Interface, c.Batch, c.RingSize)
	case c.Mode < AttachAuto || c.Mode > AttachGeneric:
		return c, fmt.Errorf("xdp: %s: bad attach mode %d", c.Interface, int(c.Mode))
	case c.MTU < 0 || c.MTU != 0 && c.MTU < 68:
		return c, fmt.Errorf("xdp: %s: MTU %d below 68", c.Interface, c.MTU)
	case c.MTU > c.maxMTU():
		return c, fmt.Errorf("xdp: %s: MTU %d does not fit a %d-byte frame (at most %d)", c.Interface, c.MTU, c.FrameSize, c.maxMTU())
	}
	var n4, n6 int
	for _, a := range c.Addrs {
		if a.Unmap().Is4() {
			n4++
		} else {
			n6++
		}
	}
	if n4 > maxAddrs || n6 > maxAddrs {
		return c, fmt.Errorf("xdp: %s: more than %d addresses of a family", c.Interface, maxAddrs)
	}
	return c, nil
}

// maxMTU is the largest MTU whose frames fit a received chunk.
func (c *Config) maxMTU() int {
	return c.FrameSize - xdpPacketHeadroom - link.MediumEthernet.HeaderLen()
}

// Info says what Open obtained from the kernel.
type Info struct {
	Interface   string
	IfIndex     int
	Attach      string // "driver" or "generic"
	ZeroCopy    bool   // the kernel granted XDP_ZEROCOPY
	NeedWakeup  bool   // XDP_USE_NEED_WAKEUP was accepted
	FrameSize   int
	Queues      int
	MTU         int
	RxZeroCopy  bool // received frames are lent to the stack as REF pbufs
	TxSkbBudget int  // XDP_MAX_TX_SKB_BUDGET set on the sockets, 0 when the kernel refused it
	// DeviceQueues is the interface's RX queue count (ETHTOOL_GCHANNELS), 0 if unknown.
	// Frames the device steers to a queue without a socket go to the kernel.
	DeviceQueues int
}

func (i Info) String() string {
	mode := "copy"
	if i.ZeroCopy {
		mode = "zero-copy"
	}
	rx := "copied"
	if i.RxZeroCopy {
		rx = "lent"
	}
	return fmt.Sprintf("%s (ifindex %d): %s attach, %s, need_wakeup %v, %d queues, %d-byte frames, MTU %d, received frames %s, TX skb budget %d",
		i.Interface, i.IfIndex, i.Attach, mode, i.NeedWakeup, i.Queues, i.FrameSize, i.MTU, rx, i.TxSkbBudget)
}
