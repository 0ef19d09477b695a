// Package dhcpv4 is the wire format of BOOTP/DHCP messages (RFC 951, RFC 2131, RFC 2132):
// Message, a zero-copy view whose accessors are named after the RFC's fields, validated by
// Check; and Repr, the fields the DHCP client speaks, with Parse and Emit. Options 52
// (overload: options carried in the file and sname fields) are followed when reading.
//
// Layer: wire (imports the standard library only). Concurrency: none; values are
// independent.
package dhcpv4
