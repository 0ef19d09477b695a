package endpoint

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// SO_RCVTIMEO and SO_SNDTIMEO bound each call rather than set an absolute deadline: when
// set, each read (write) sets the conn's deadline to now plus the timeout, or the deadline
// the caller set if that comes first. A call that runs out of the per-call time fails
// with EAGAIN (whose Timeout() is true), as recv(2) does; one that reaches the caller's
// deadline fails with os.ErrDeadlineExceeded as usual.

// deadliner is what the netconn conns offer for deadlines.
type deadliner interface {
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// callTimeouts holds SO_RCVTIMEO / SO_SNDTIMEO and the caller's own deadlines.
type callTimeouts struct {
	on              atomic.Bool // rcv or snd is set: the calls must arm their deadline
	mu              sync.Mutex
	rcv, snd        time.Duration
	readDL, writeDL time.Time
}

// setDeadlines records the caller's deadlines (read, write) and applies them to d.
func (t *callTimeouts) setDeadlines(d deadliner, read, write bool, when time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if read {
		t.readDL = when
	}
	if write {
		t.writeDL = when
	}
	if d == nil {
		return nil
	}
	var err error
	if read {
		err = d.SetReadDeadline(when)
	}
	if write {
		err = errors.Join(err, d.SetWriteDeadline(when))
	}
	return err
}

// set changes SO_RCVTIMEO (read) or SO_SNDTIMEO; 0 turns it off and restores the caller's
// deadline on d.
func (t *callTimeouts) set(d deadliner, read bool, v time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if read {
		t.rcv = v
		if v == 0 && d != nil {
			_ = d.SetReadDeadline(t.readDL)
		}
	} else {
		t.snd = v
		if v == 0 && d != nil {
			_ = d.SetWriteDeadline(t.writeDL)
		}
	}
	t.on.Store(t.rcv != 0 || t.snd != 0)
}

func (t *callTimeouts) get(read bool) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if read {
		return t.rcv
	}
	return t.snd
}

// arm sets the per-call deadline of a read (or write) on d; a no-op when no timeout is set.
func (t *callTimeouts) arm(d deadliner, read bool) {
	if !t.on.Load() || d == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	per, user := t.rcv, t.readDL
	if !read {
		per, user = t.snd, t.writeDL
	}
	when := user
	if per > 0 {
		if p := time.Now().Add(per); when.IsZero() || p.Before(when) {
			when = p
		}
	}
	if read {
		_ = d.SetReadDeadline(when)
	} else {
		_ = d.SetWriteDeadline(when)
	}
}

// fix turns a deadline error caused by the per-call timeout into EAGAIN.
func (t *callTimeouts) fix(err error, read bool) error {
	if err == nil || !t.on.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	per, user := t.rcv, t.readDL
	if !read {
		per, user = t.snd, t.writeDL
	}
	if per > 0 && (user.IsZero() || time.Now().Before(user)) {
		return unix.EAGAIN
	}
	return err
}
