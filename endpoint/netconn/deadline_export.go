package netconn

import (
	"sync"
	"time"
)

// Deadline is one direction's net.Conn deadline, for connections above netconn that keep a
// mailbox of their own (package forwarder's UDP sessions): the mechanism of netconn's
// connections, a one-shot timer made on first use that marks the deadline expired and
// wakes the direction's one-slot channel. Init before use; Set and Stop are called with the
// connection's mutex held, and Expired is read under it.
type Deadline struct{ d deadline }

// Init binds the deadline to the connection's mutex and the direction's wakeup channel.
func (d *Deadline) Init(mu *sync.Mutex, ch chan struct{}) { d.d.init(mu, ch) }

// Set arms t (zero clears it) and wakes the waiter; mu held.
func (d *Deadline) Set(t time.Time) { d.d.set(t) }

// Stop releases the timer (on Close); mu held.
func (d *Deadline) Stop() { d.d.stop() }

// Expired reports whether the deadline has passed; mu held.
func (d *Deadline) Expired() bool { return d.d.expired }

// Wake posts the one-slot wakeup channel ch without blocking (a waiter re-checks).
func Wake(ch chan struct{}) { wake(ch) }
