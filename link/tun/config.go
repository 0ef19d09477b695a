package tun

import (
	"crypto/rand"
	"fmt"
)

// Config says how OpenConfig opens a TUN or TAP interface.
type Config struct {
	// Name is the interface to create or attach to: "" lets the kernel choose ("tun%d" or
	// "tap%d"), and a "%d" in it is numbered by the kernel.
	Name string
	// MTU is set on the interface, in [68, 65535]: the largest IP packet, as the kernel
	// counts it; a TAP's frames carry the 14-byte Ethernet header beyond it.
	MTU int
	// TAP opens a TAP interface (IFF_TAP): Ethernet frames (link.MediumEthernet), so the
	// stack runs ARP and NDP with the kernel and the interface can join a bridge. Without
	// it, a TUN interface: bare IP packets (link.MediumIP).
	TAP bool
	// HardwareAddr is the stack's MAC address on a TAP (Device.HardwareAddr), a unicast
	// address other than the kernel interface's own; zero picks a random locally
	// administered unicast address (never the kernel's). Ignored without TAP.
	HardwareAddr [6]byte
	// Offload asks the kernel for a virtio-net header on every packet (IFF_VNET_HDR) and
	// for checksum offload and TSO over IPv4 and IPv6 (TUNSETOFFLOAD with TUN_F_CSUM,
	// TUN_F_TSO4 and TUN_F_TSO6): reads then deliver packets of up to 64 KiB made of
	// coalesced segments, and the stack may write such packets (link.Offloader). When the
	// kernel refuses, the device works as without it and Logf says so once.
	Offload bool
	// Queues is the number of queues (IFF_MULTI_QUEUE when more than one), each with its own
	// file descriptor and reader goroutine; 0 means 1. At most 256, the kernel's limit.
	Queues int
	// Logf receives the line that says offloads were refused; nil: log.Printf.
	Logf func(format string, args ...any)
}

// maxQueues is the kernel's MAX_TAP_QUEUES.
const maxQueues = 256

// check validates c and returns the number of queues.
func (c *Config) check(ifNameSize int) (int, error) {
	if c.MTU < 68 || c.MTU > 65535 {
		return 0, fmt.Errorf("tun: MTU %d out of range [68, 65535]", c.MTU)
	}
	if len(c.Name) >= ifNameSize {
		return 0, fmt.Errorf("tun: interface name %q longer than %d bytes", c.Name, ifNameSize-1)
	}
	if c.Queues < 0 || c.Queues > maxQueues {
		return 0, fmt.Errorf("tun: %d queues out of range [1, %d]", c.Queues, maxQueues)
	}
	if c.TAP && c.HardwareAddr[0]&1 != 0 {
		return 0, fmt.Errorf("tun: hardware address %s is a multicast address", macString(c.HardwareAddr))
	}
	return max(c.Queues, 1), nil
}

// randomMAC returns a random locally administered unicast MAC address other than not.
func randomMAC(not [6]byte) [6]byte {
	for {
		var a [6]byte
		rand.Read(a[:])
		a[0] = a[0]&^0x01 | 0x02 // unicast, locally administered
		if a != not {
			return a
		}
	}
}

func macString(a [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3], a[4], a[5])
}
