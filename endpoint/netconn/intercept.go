package netconn

import (
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
	"github.com/wispstack/wisp/transport/tcp"
)

// AdoptTCP makes the connection of pcb, an ESTABLISHED connection that a raw-API listener
// of core k accepted (the forwarder's intercept listener), as ListenTCP's Accept would: it
// takes a netconn from MempNumNetconn, sets pcb's callbacks and argument, and registers the
// connection with the stack. onClose (may be nil) runs once, at the end of the
// connection's Close, after its netconn is given back: the caller's count of live
// connections. Core context of k (inside the accept callback). errs.Mem when no netconn is
// left, errs.Clsd when the stack is closed; pcb is then still the caller's (to abort).
func AdoptTCP(k *stack.Core, pcb *tcp.PCB, onClose func()) (*TCPConn, error) {
	r, err := registryFor(k.Stack())
	if err != nil {
		return nil, err
	}
	if pcb == nil {
		return nil, errs.Val
	}
	if !r.reserve() {
		return nil, errs.Mem
	}
	c := newTCPConn(k, r, pcb)
	c.connected = true
	c.laddr, c.raddr = pcb.LocalAddr(), pcb.RemoteAddr()
	c.setMSSLocked(pcb.Info().MSS)
	c.onClose = onClose
	return c, nil
}
