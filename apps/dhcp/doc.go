// Package dhcp is wisp's DHCPv4 client (RFC 2131, RFC 2132), in the shape of lwIP's dhcp.c:
// one Client per Ethernet netif, on a UDP PCB bound to port 68 and one clock.Timeout of the
// core's timer queue, armed only while something is pending (a retransmission, a probe, T1,
// T2 or the lease's end). Before the netif has an address the client sends from 0.0.0.0 to
// 255.255.255.255:67 out of its netif, and receives both broadcast replies and unicast ones
// to the offered address (ip.Netif.SetAcceptUDPPort). With Env.ACD (opt.DHCPDoesACDCheck)
// an offered address is probed with ARP before use (RFC 5227) and declined when another
// station has it.
//
//	INIT ─DISCOVER→ SELECTING ─OFFER/REQUEST→ REQUESTING ─ACK→ [CHECKING: 3 ARP probes]
//	  ↑                                           │NAK           │conflict: DECLINE, 10 s
//	  └──────────────── expiry, NAK ──────────────┴──────────────┘
//	BOUND ─T1→ RENEWING (unicast) ─T2→ REBINDING (broadcast) ─lease end→ INIT
//	INIT-REBOOT (Config.Addr) ─REQUEST→ REBOOTING ─ACK→ BOUND, NAK or silence → INIT
//
// The stack (stack/dhcp.go) builds a Client for NetifConfig.DHCP and installs and removes
// what a lease carries through Env's callbacks.
//
// Layer: apps (imports transport/udp, ip, pbuf, wire/dhcpv4, clock, errs — never stack).
// Concurrency: the state machine runs in core context; State, Lease and Stats are safe for
// concurrent use (they read a copy the core publishes), Renew takes the core lock itself.
package dhcp
