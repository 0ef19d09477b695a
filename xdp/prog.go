package xdp

import "github.com/cilium/ebpf/asm"

// XDP verdicts (enum xdp_action).
const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTx      = 3
)

// Names of the program's maps: the instructions reference them by name.
const (
	MapXSKs  = "wisp_xsks"  // XSKMAP: rx_queue_index → AF_XDP socket
	MapV4    = "wisp_v4"    // hash: IPv4 address (4 bytes, network order) → 1
	MapV6    = "wisp_v6"    // hash: IPv6 address (16 bytes) → 1
	MapDrops = "wisp_drops" // per-CPU array of one uint64: DropProgram's count
)

// Frame offsets the program reads (Ethernet header of 14 bytes, no VLAN tag).
const (
	offEtherType = 12
	offIPv4Dst   = 14 + 16 // IPv4 destination address
	endIPv4      = 14 + 20 // end of a minimal IPv4 header
	offARPTPA    = 14 + 24 // ARP target protocol address
	endARP       = 14 + 28
	offIPv6Next  = 14 + 6  // IPv6 next header
	offIPv6Dst   = 14 + 24 // IPv6 destination address
	endIPv6      = 14 + 40
	offICMPv6    = endIPv6     // ICMPv6 type, right after a header without extensions
	offNSTarget  = endIPv6 + 8 // neighbor solicitation's target address (RFC 4861 4.3)
	endNS        = offNSTarget + 16
)

// EtherTypes as a little-endian load of their two big-endian bytes reads them.
const (
	leEtherIPv4 = 0x0008
	leEtherARP  = 0x0608
	leEtherIPv6 = 0xdd86
)

// RedirectProgram returns the link's XDP program: it redirects to the socket of the
// frame's receive queue (XSKMAP MapXSKs, keyed by rx_queue_index) the frames for the
// link's addresses, and passes everything else to the kernel:
//
//   - IPv4 whose destination is in MapV4 (fragments too: nothing past the IP header is read);
//   - ARP whose target protocol address is in MapV4;
//   - IPv6 whose destination is in MapV6;
//   - ICMPv6 neighbor solicitations (type 135, right after the IPv6 header) whose target is
//     in MapV6: they arrive at solicited-node multicast addresses.
//
// The redirect's flags are XDP_PASS, so a queue without a socket falls back to the kernel.
// Every packet read is bounds-checked against data_end; a truncated frame is passed.
func RedirectProgram() asm.Instructions { return redirectProgram(xdpPass) }

// redirectProgram is RedirectProgram with the verdict for a queue without a socket (tests
// use XDP_TX to tell "would redirect" from "pass").
func redirectProgram(fallback int32) asm.Instructions {
	const (
		ctx, data, end = asm.R6, asm.R7, asm.R8
	)
	return asm.Instructions{
		// struct xdp_md: data at 0, data_end at 4, rx_queue_index at 16.
		asm.Mov.Reg(ctx, asm.R1),
		asm.LoadMem(data, asm.R1, 0, asm.Word),
		asm.LoadMem(end, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R2, data),
		asm.Add.Imm(asm.R2, 14),
		asm.JGT.Reg(asm.R2, end, "pass"),
		asm.LoadMem(asm.R3, data, offEtherType, asm.Half),
		asm.JEq.Imm(asm.R3, leEtherIPv4, "ipv4"),
		asm.JEq.Imm(asm.R3, leEtherIPv6, "ipv6"),
		asm.JEq.Imm(asm.R3, leEtherARP, "arp"),
		asm.Ja.Label("pass"),

		// ARP: the target protocol address is the key.
		asm.Mov.Reg(asm.R2, data).WithSymbol("arp"),
		asm.Add.Imm(asm.R2, endARP),
		asm.JGT.Reg(asm.R2, end, "pass"),
		asm.LoadMem(asm.R3, data, offARPTPA, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R3, asm.Word),
		asm.Ja.Label("lookup4"),

		// IPv4: the destination is the key.
		asm.Mov.Reg(asm.R2, data).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R2, endIPv4),
		asm.JGT.Reg(asm.R2, end, "pass"),
		asm.LoadMem(asm.R3, data, offIPv4Dst, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R3, asm.Word),

		asm.LoadMapPtr(asm.R1, 0).WithReference(MapV4).WithSymbol("lookup4"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Ja.Label("redirect"),

		// IPv6: the destination is the key, or a neighbor solicitation's target.
		asm.Mov.Reg(asm.R2, data).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R2, endIPv6),
		asm.JGT.Reg(asm.R2, end, "pass"),
		asm.LoadMem(asm.R3, data, offIPv6Next, asm.Byte),
		asm.JNE.Imm(asm.R3, 58, "dst6"), // not ICMPv6
		asm.Mov.Reg(asm.R2, data),
		asm.Add.Imm(asm.R2, endNS),
		asm.JGT.Reg(asm.R2, end, "dst6"),
		asm.LoadMem(asm.R3, data, offICMPv6, asm.Byte),
		asm.JEq.Imm(asm.R3, 135, "ns6"),

		asm.LoadMem(asm.R3, data, offIPv6Dst, asm.Word).WithSymbol("dst6"),
		asm.StoreMem(asm.RFP, -16, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, data, offIPv6Dst+4, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, data, offIPv6Dst+8, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, data, offIPv6Dst+12, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R3, asm.Word),
		asm.Ja.Label("lookup6"),

		asm.LoadMem(asm.R3, data, offNSTarget, asm.Word).WithSymbol("ns6"),
		asm.StoreMem(asm.RFP, -16, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, data, offNSTarget+4, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, data, offNSTarget+8, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, data, offNSTarget+12, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R3, asm.Word),

		asm.LoadMapPtr(asm.R1, 0).WithReference(MapV6).WithSymbol("lookup6"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),

		// bpf_redirect_map(&xsks, ctx->rx_queue_index, fallback)
		asm.LoadMem(asm.R2, ctx, 16, asm.Word).WithSymbol("redirect"),
		asm.LoadMapPtr(asm.R1, 0).WithReference(MapXSKs),
		asm.Mov.Imm(asm.R3, fallback),
		asm.FnRedirectMap.Call(),
		asm.Return(),

		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	}
}

// DropProgram returns a program that drops every frame and counts it in the per-CPU
// array MapDrops (one uint64 at key 0): the kernel's own limit on a link, for benchmarks.
func DropProgram() asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(MapDrops),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord), // per-CPU: no other writer
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
	}
}
