package forwarder

import (
	"fmt"
	"reflect"
	"strings"
)

// Stats are the forwarder's counters (tun2socks serves these as /netstats).
type Stats struct {
	// TCP: intercepted connections offered (Requests), accepted and rejected by the host,
	// refused with a RST because MaxPending or MaxFlows was reached or no memory was left
	// (RefusedFull), deferred requests refused at DeferTimeout, and live flows (Active).
	TCPRequests, TCPAccepted, TCPRejected, TCPRefusedFull, TCPDeferTimeouts, TCPActive uint64
	// UDP: sessions opened, live, datagrams dropped on a full queue, datagrams refused
	// (port unreachable) at MaxSessions, sessions ended by their idle timeout, and rejected.
	UDPSessions, UDPActive, UDPDropsQueue, UDPRefusedFull, UDPExpired, UDPRejected uint64
	// Echo requests answered in the core, handed to the host, and dropped (EchoDrop, no
	// handler, MaxEchoPending reached, or no memory for the reply).
	EchoLocal, EchoHost, EchoDropped uint64
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	c := &f.st
	return Stats{
		TCPRequests: c.tcpRequests.Load(), TCPAccepted: c.tcpAccepted.Load(), TCPRejected: c.tcpRejected.Load(),
		TCPRefusedFull: c.tcpRefusedFull.Load(), TCPDeferTimeouts: c.tcpDeferTimeouts.Load(),
		TCPActive:   uint64(max(c.tcpActive.Load(), 0)),
		UDPSessions: c.udpSessions.Load(), UDPActive: uint64(max(c.udpActive.Load(), 0)),
		UDPDropsQueue: c.udpDropsQueue.Load(), UDPRefusedFull: c.udpRefusedFull.Load(),
		UDPExpired: c.udpExpired.Load(), UDPRejected: c.udpRejected.Load(),
		EchoLocal: c.echoLocal.Load(), EchoHost: c.echoHost.Load(), EchoDropped: c.echoDropped.Load(),
	}
}

// String prints the counters as the stack's stats table prints its extended counters:
// a title, then four name/value pairs to a line.
func (s Stats) String() string {
	var b strings.Builder
	b.WriteString("forwarder:")
	v := reflect.ValueOf(s)
	t := v.Type()
	for i := range v.NumField() {
		if i%4 == 0 {
			b.WriteString("\n ")
		}
		fmt.Fprintf(&b, " %-20s %10d", t.Field(i).Name, v.Field(i).Uint())
	}
	b.WriteString("\n")
	return b.String()
}
