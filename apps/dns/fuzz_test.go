package dns_test

import (
	"errors"
	"testing"

	"github.com/wispstack/wisp/apps/dns"
	"github.com/wispstack/wisp/errs"
	"github.com/wispstack/wisp/pbuf"
	"github.com/wispstack/wisp/transport/udp"
	wdns "github.com/wispstack/wisp/wire/dns"
)

// FuzzAnswer: whatever the server answers (the query's ID put in its first two bytes), the
// lookup ends with exactly one callback (or is answered from the table), with at most
// MaxAddrs addresses, and nothing leaks (the pair's cleanup checks the pools).
func FuzzAnswer(f *testing.F) {
	good := wdns.Message{Header: wdns.Header{Response: true, RecursionAvailable: true},
		Questions: []wdns.Question{{Name: "host.wisp.test.", Type: wdns.TypeA, Class: wdns.ClassINET}},
		Answers: []wdns.Resource{
			{Name: "host.wisp.test.", Type: wdns.TypeCNAME, Class: wdns.ClassINET, Target: "x.wisp.test."},
			{Name: "x.wisp.test.", Type: wdns.TypeA, Class: wdns.ClassINET, Addr: host4},
		}}
	b, _ := good.Pack(nil)
	f.Add(b)
	good.RCode, good.Answers = wdns.RCodeNameError, nil
	good.Authorities = []wdns.Resource{{Name: "wisp.test.", Type: wdns.TypeSOA, Class: wdns.ClassINET, SOA: wdns.SOA{MName: "a.", RName: "b."}}}
	b, _ = good.Pack(nil)
	f.Add(b)
	good.RCode, good.Truncated = 0, true
	b, _ = good.Pack(nil)
	f.Add(b)
	f.Add([]byte{0, 0, 0x82, 0})

	e := newEnv(f, nil, live)
	var reply []byte
	e.p.B.Lock()
	pcb, err := e.p.B.UDP().NewPCB()
	if err == nil {
		err = pcb.Bind(live)
	}
	if err != nil {
		e.p.B.Unlock()
		f.Fatal(err)
	}
	pcb.OnRecv(func(c *udp.PCB, p *pbuf.Pbuf, info *udp.RecvInfo) {
		q := p.Bytes(nil)
		p.Free()
		if len(q) < 2 || len(reply) < 2 {
			return
		}
		out := append([]byte(nil), reply...)
		copy(out, q[:2])
		pb, err := e.p.B.Allocator().Alloc(pbuf.LayerTransport, len(out), pbuf.RAM)
		if err != nil {
			return
		}
		_ = pb.CopyIn(out, 0)
		_ = c.SendTo(pb, info.Src)
	})
	e.p.B.Unlock()
	f.Cleanup(func() {
		e.p.B.Lock()
		pcb.Close()
		e.p.B.Unlock()
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		reply = b
		var res result
		addrs, err := e.lookup("host.wisp.test", dns.IPv4, &res)
		if err == nil || errors.Is(err, dns.ErrNotFound) {
			if len(addrs) > dns.MaxAddrs {
				t.Fatalf("%d addresses from the table", len(addrs))
			}
			return
		}
		if !errors.Is(err, errs.InProgress) {
			t.Fatalf("lookup: %v", err)
		}
		for range tries {
			if res.calls > 0 {
				break
			}
			e.advance(ivl)
		}
		if res.calls != 1 || len(res.addrs) > dns.MaxAddrs {
			t.Fatalf("callbacks %d, %d addresses, %v", res.calls, len(res.addrs), res.err)
		}
	})
}
