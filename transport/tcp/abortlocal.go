package tcp

import (
	"net/netip"

	"github.com/wispstack/wisp/errs"
)

// AbortLocal aborts every connection whose local address is a (lwIP
// tcp_netif_ip_addr_changed), for a stack that removed a from its netif: each ErrFunc gets
// errs.Abrt, TIME-WAIT PCBs are freed quietly. No RST is sent: the address is gone, and a
// segment from it could not be answered. Listeners bound to a stay open (they have no
// error callback, and freeing one under its owner would leave it a dangling PCB; they hear
// nothing until the address comes back), as do PCBs only bound to a (no connection yet: a
// later Connect fails for want of a route or source). It returns how many PCBs it aborted.
// Core context.
func (t *Proto) AbortLocal(a netip.Addr) int {
	t.timers.AssertCore()
	a = a.Unmap().WithZone("")
	n := 0
	c := t.all.head
	for c != nil {
		next := c.all.next
		if c.laddr != a || c.state == StateClosed || c.flags&fDying != 0 {
			c = next
			continue
		}
		var gen uint32
		if next != nil {
			gen = next.gen()
		}
		c.abandon(errs.Abrt)
		n++
		if next != nil && !next.alive(gen) {
			next = t.all.head // a callback freed the next PCB: start over
		}
		c = next
	}
	return n
}
