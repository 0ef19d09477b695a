package dns

import (
	"net/netip"
	"slices"
	"time"

	wdns "github.com/wispstack/wisp/wire/dns"
)

// Extract appends to dst the addresses of type t (A or AAAA) at the end of name's CNAME
// chain in m's answers (at most MaxAddrs in all, without duplicates) and returns the
// smallest TTL on the chain; found is false when the chain ends without such an address.
// It is the one reading of an answer: the resolver's, and the socket layer's over TCP.
func Extract(dst []netip.Addr, m *wdns.Message, name string, t wdns.Type) (_ []netip.Addr, ttl time.Duration, found bool) {
	cur := name
	ttl = MaxTTL
	for range maxCNAMEs + 1 {
		next := ""
		for i := range m.Answers {
			rr := &m.Answers[i]
			if rr.Class&0x7fff != wdns.ClassINET || !wdns.EqualName(cur, rr.Name) {
				continue // (mDNS sets the top bit of CLASS: cache-flush, RFC 6762 §10.2)
			}
			switch rr.Type {
			case t:
				if len(dst) < MaxAddrs && !slices.Contains(dst, rr.Addr) {
					dst = append(dst, rr.Addr)
				}
				ttl = min(ttl, ttlOf(rr.TTL))
				found = true
			case wdns.TypeCNAME:
				if next == "" {
					next = rr.Target
					ttl = min(ttl, ttlOf(rr.TTL))
				}
			}
		}
		if found || next == "" {
			return dst, ttl, found
		}
		cur = next
	}
	return dst, ttl, false
}

// NegativeTTL returns how long m's negative answer may be kept (RFC 2308 §5: the smaller
// of the SOA's TTL and its MINIMUM), or -1 without an SOA (not to be cached).
func NegativeTTL(m *wdns.Message) time.Duration {
	neg := time.Duration(-1)
	for _, rr := range m.Authorities {
		if rr.Type == wdns.TypeSOA {
			if t := min(ttlOf(rr.TTL), ttlOf(rr.SOA.Minimum)); neg < 0 || t < neg {
				neg = t
			}
		}
	}
	return neg
}
