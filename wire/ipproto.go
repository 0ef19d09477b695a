package wire

// IP protocol numbers (the IPv4 Protocol and IPv6 Next Header fields), from
// the IANA registry.
const (
	ProtoHopByHop    = 0  // IPv6 Hop-by-Hop Options (RFC 8200 §4.3)
	ProtoICMP        = 1  // ICMPv4 (RFC 792)
	ProtoIGMP        = 2  // IGMP (RFC 3376)
	ProtoTCP         = 6  // TCP (RFC 9293)
	ProtoUDP         = 17 // UDP (RFC 768)
	ProtoIPv6Route   = 43 // IPv6 Routing header (RFC 8200 §4.4)
	ProtoIPv6Frag    = 44 // IPv6 Fragment header (RFC 8200 §4.5)
	ProtoICMPv6      = 58 // ICMPv6 (RFC 4443)
	ProtoNoNextHdr   = 59 // IPv6 No Next Header (RFC 8200 §4.7)
	ProtoIPv6DstOpts = 60 // IPv6 Destination Options (RFC 8200 §4.6)
)
