package netconn_test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint/netconn"
	"github.com/wispstack/wisp/errs"
)

// expected reports whether err is one a conn torn down under its users may return.
func expected(err error) bool {
	return err == nil || err == io.EOF || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errs.Rst) ||
		errors.Is(err, errs.Abrt) || errors.Is(err, errs.Clsd) || errors.Is(err, errs.Conn)
}

// Many goroutines read, write, set deadlines and close at once, on TCP and UDP; nothing
// panics or hangs, and the test's cleanup finds the pools at zero and no goroutine left.
func TestStress(t *testing.T) {
	a, b := newPair(t, tunnel())
	l, err := netconn.ListenTCP(b, netip.AddrPortFrom(addrB[0], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	const pairs = 8
	var wg sync.WaitGroup
	fail := make(chan error, 100)
	report := func(what string, err error) {
		if !expected(err) {
			select {
			case fail <- errors.Join(errors.New(what), err):
			default:
			}
		}
	}
	// The server side: accept and echo with two readers, two writers per conn.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				report("accept", err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 3000)
				for {
					n, err := c.Read(buf)
					if err != nil {
						report("server read", err)
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						report("server write", err)
						return
					}
				}
			}()
		}
	}()
	for i := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			c, err := netconn.DialTCP(t.Context(), a, netip.AddrPort{}, l.Addr(), nil)
			if err != nil {
				report("dial", err)
				return
			}
			var cw sync.WaitGroup
			for j := range 2 {
				cw.Add(2)
				go func() {
					defer cw.Done()
					buf := pattern(5000, uint64(j))
					r := rand.New(rand.NewPCG(uint64(i), uint64(j)))
					for {
						if _, err := c.Write(buf[:1+r.IntN(len(buf)-1)]); err != nil {
							report("client write", err)
							return
						}
					}
				}()
				go func() {
					defer cw.Done()
					buf := make([]byte, 2000)
					for {
						if _, err := c.Read(buf); err != nil {
							report("client read", err)
							return
						}
					}
				}()
			}
			cw.Add(1)
			go func() {
				defer cw.Done()
				for k := range 20 {
					c.SetDeadline(time.Now().Add(time.Duration(k) * time.Millisecond))
					time.Sleep(time.Millisecond)
					c.SetDeadline(time.Time{})
				}
			}()
			time.Sleep(time.Duration(20+r.IntN(100)) * time.Millisecond)
			if i%3 == 0 {
				c.Abort()
			} else {
				c.Close()
			}
			cw.Wait()
		}()
	}
	// UDP: readers and writers on one socket, closed under them.
	u, err := netconn.ListenUDP(a, netip.AddrPortFrom(addrA[0], 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	for j := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 100)
			for {
				var err error
				if j%2 == 0 {
					_, err = u.WriteTo(buf, u.LocalAddr())
					if errors.Is(err, errs.Mem) {
						err = nil
					}
				} else {
					_, _, err = u.ReadMsg(buf)
				}
				if err != nil {
					report("udp", err)
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	u.Close()
	l.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("goroutines still blocked after every Close")
	}
	close(fail)
	for err := range fail {
		t.Error(err)
	}
}
