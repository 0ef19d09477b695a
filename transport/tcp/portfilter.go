package tcp

import "net/netip"

// PortFilter tells whether an ephemeral port may be chosen for a connection from local to
// remote: a stack with several cores lets each core's TCP pick only ports whose 4-tuple
// hashes to that core, so the connection's segments come back to it.
type PortFilter func(local netip.Addr, remote netip.AddrPort, port uint16) bool

// SetPortFilter installs f for the ephemeral ports Connect picks (nil: any free port).
// Ports bound explicitly, and port 0 bound without a remote, are not filtered. Core context.
func (t *Proto) SetPortFilter(f PortFilter) {
	t.timers.AssertCore()
	t.portOK = f
}
