package ip

// SendOptions are the IP-level options of a transport PCB's sends (IP_TTL, IP_TOS,
// IP_MULTICAST_TTL, IP_MULTICAST_IF, IP_MULTICAST_LOOP and their IPv6 twins). The UDP, raw
// and TCP PCBs embed them, so the accessors are written once (TCP uses the TTL and TOS
// only); UDP and raw also choose their OutputOptions here. Like the PCBs' own methods they
// are core context, checked (Layer.AssertCore) in builds with the wispcheck tag once Init
// has named the layer.
type SendOptions struct {
	l               *Layer
	ttl, tos, mcTTL uint8
	mcIf            int
	mcLoop          bool
}

// Init gives o the defaults of a new PCB of l (Linux's): the stack's TTL, TOS 0, multicast
// TTL 1, multicast loop on, the route's netif.
func (o *SendOptions) Init(l *Layer) { *o = SendOptions{l: l, mcTTL: 1, mcLoop: true} }

func (o *SendOptions) assertCore() {
	if o.l != nil {
		o.l.AssertCore()
	}
}

// setOpt and getOpt are the accessors' bodies: the core check, then the field.
func setOpt[T any](o *SendOptions, f *T, v T) {
	o.assertCore()
	*f = v
}

func getOpt[T any](o *SendOptions, f *T) T {
	o.assertCore()
	return *f
}

// SetTTL sets the TTL / hop limit of unicast and broadcast sends (0: the stack default).
func (o *SendOptions) SetTTL(ttl uint8) { setOpt(o, &o.ttl, ttl) }

// TTL returns the value SetTTL set (0: the stack default).
func (o *SendOptions) TTL() uint8 { return getOpt(o, &o.ttl) }

// SetTOS sets the IPv4 TOS / IPv6 traffic class of sends.
func (o *SendOptions) SetTOS(tos uint8) { setOpt(o, &o.tos, tos) }

// TOS returns the value SetTOS set.
func (o *SendOptions) TOS() uint8 { return getOpt(o, &o.tos) }

// SetMulticastNetif sets the netif multicast (for UDP also limited broadcast) sends leave by
// (IP_MULTICAST_IF / IPV6_MULTICAST_IF); 0: the route's.
func (o *SendOptions) SetMulticastNetif(ifIndex int) { setOpt(o, &o.mcIf, ifIndex) }

// MulticastNetif returns the value SetMulticastNetif set.
func (o *SendOptions) MulticastNetif() int { return getOpt(o, &o.mcIf) }

// SetMulticastTTL sets the TTL / hop limit of multicast sends (default 1). 0 keeps them on
// this host, as Linux's IP_MULTICAST_TTL 0: delivered to local members when MulticastLoop
// is on (with TTL 0), never sent on the link (OutputOptions.LoopOnly).
func (o *SendOptions) SetMulticastTTL(ttl uint8) { setOpt(o, &o.mcTTL, ttl) }

// MulticastTTL returns the multicast TTL.
func (o *SendOptions) MulticastTTL() uint8 { return getOpt(o, &o.mcTTL) }

// SetMulticastLoop sets whether multicast sends are delivered to this stack too when the
// netif is a member of the group (default on).
func (o *SendOptions) SetMulticastLoop(on bool) { setOpt(o, &o.mcLoop, on) }

// MulticastLoop reports the multicast loop setting.
func (o *SendOptions) MulticastLoop() bool { return getOpt(o, &o.mcLoop) }

// OutputOptions returns what a send passes to Layer.Output: the TTL and TOS, or for a
// multicast destination the multicast TTL and loop (TTL 0: local members only, nothing on
// the wire, as Linux); FailIfFull, so a full link queue is errs.Mem. The caller picks the
// netif.
func (o *SendOptions) OutputOptions(multicast bool) OutputOptions {
	o.assertCore()
	r := OutputOptions{TTL: o.ttl, TOS: o.tos, FailIfFull: true}
	if multicast {
		r.TTL, r.MulticastLoop, r.LoopOnly = o.mcTTL, o.mcLoop, o.mcTTL == 0
	}
	return r
}
