package netconn

import (
	"sync"
	"sync/atomic"

	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/stack"
)

// member is a connection or listener a registry must tell when its stack closes.
type member interface {
	// stackClosed runs in core context while the stack closes: the member forgets its PCB
	// (the stack frees every PCB itself), frees what its mailbox holds, and wakes every
	// waiter, which then returns net.ErrClosed. It must not call the raw API.
	stackClosed()
}

// node links a member into its registry's list (the registry's lock).
type node struct {
	prev, next *node
	m          member
}

// registry is the netconn state of one stack: the connection count bounded by
// MempNumNetconn, and the list of live members, closed when the stack closes.
type registry struct {
	s      *stack.Stack
	limit  int32
	count  atomic.Int32
	closed atomic.Bool
	mu     sync.Mutex // guards head: members live on every core of the stack
	head   *node
}

// regs maps each stack with netconns to its registry; an entry leaves when its stack closes.
var regs sync.Map // *stack.Stack → *registry

// registryFor returns s's registry, creating it on first use. Core context (s locked).
// errs.Clsd when s is closed.
func registryFor(s *stack.Stack) (*registry, error) {
	if v, ok := regs.Load(s); ok {
		r := v.(*registry)
		if r.closed.Load() {
			return nil, errs.Clsd
		}
		return r, nil
	}
	r := &registry{s: s, limit: int32(s.Options().MempNumNetconn)}
	if err := r.watchClose(); err != nil {
		return nil, err
	}
	regs.Store(s, r)
	return r, nil
}

// watchClose arranges for r.stackClosed to run when the stack closes (Stack.OnClose, which
// runs before the protocols free their PCBs). errs.Clsd when the stack is already closed.
// Core context.
func (r *registry) watchClose() error {
	if !r.s.OnClose(r.stackClosed) {
		return errs.Clsd
	}
	return nil
}

// stackClosed tells every member; core context.
func (r *registry) stackClosed() {
	if r.closed.Swap(true) {
		return
	}
	regs.Delete(r.s)
	r.mu.Lock()
	head := r.head
	r.head = nil
	r.mu.Unlock()
	for n := head; n != nil; {
		next := n.next
		n.prev, n.next = nil, nil
		n.m.stackClosed()
		n = next
	}
}

// add links n.
func (r *registry) add(n *node, m member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n.m = m
	n.prev = nil
	n.next = r.head
	if r.head != nil {
		r.head.prev = n
	}
	r.head = n
}

// remove unlinks n if linked.
func (r *registry) remove(n *node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n.prev != nil {
		n.prev.next = n.next
	} else if r.head == n {
		r.head = n.next
	} else {
		return
	}
	if n.next != nil {
		n.next.prev = n.prev
	}
	n.prev, n.next = nil, nil
}

// reserve takes one netconn from the MempNumNetconn budget; false when none is left.
func (r *registry) reserve() bool {
	if r.count.Add(1) > r.limit {
		r.count.Add(-1)
		return false
	}
	return true
}

// release returns one netconn.
func (r *registry) release() { r.count.Add(-1) }

// isClosed reports whether the stack has closed, after waiting for a Close in progress to
// finish: a connection aborted with errs.Abrt may have been aborted by the stack's Close,
// whose OnClose hook runs in the same hold of the core lock. Must not be called in core context.
func (r *registry) isClosed() bool {
	if r.closed.Load() {
		return true
	}
	r.s.Lock()
	r.s.Unlock()
	return r.closed.Load()
}

// openPCB is the setup every connection and listener shares (core context): it takes a
// netconn from s's MempNumNetconn budget, makes a PCB with newPCB and runs setup on it
// (options, Bind, Connect, Listen). On any error the PCB is closed with closePCB and the
// netconn given back, so the caller has nothing to undo; on success the caller owns both
// and links its connection into the registry. Errors: errs.Clsd (s is closed), errs.Mem
// (MempNumNetconn reached), and those of newPCB and setup.
func openPCB[P any](s *stack.Stack, newPCB func() (P, error), closePCB func(P), setup func(P) error) (*registry, P, error) {
	var none P
	r, err := registryFor(s)
	if err != nil {
		return nil, none, err
	}
	if !r.reserve() {
		return nil, none, errs.Mem
	}
	pcb, err := newPCB()
	if err != nil {
		r.release()
		return nil, none, err
	}
	if err := setup(pcb); err != nil {
		closePCB(pcb)
		r.release()
		return nil, none, err
	}
	return r, pcb, nil
}
