package dns

import (
	"container/list"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// TTL bounds applied before caching.
const (
	// maxPositiveTTL caps a positive answer's TTL: RFC 8767 §4 recommends capping TTLs at
	// 7 days, as common resolvers do.
	maxPositiveTTL = 7 * 24 * time.Hour
	// maxNegativeTTL caps a negative answer's TTL: RFC 2308 §5, "values of one to three
	// hours have been found to work well".
	maxNegativeTTL = 3 * time.Hour
)

type cacheKey struct {
	name string // lower case, no final dot
	t    Type
}

type cacheEntry struct {
	key     cacheKey
	addrs   []netip.Addr // nil: a negative entry (NXDOMAIN or no data)
	expires time.Time
}

// cache is a bounded LRU of answers, keyed by name and type, expiring by TTL.
type cache struct {
	mu    sync.Mutex
	max   int
	m     map[cacheKey]*list.Element // guarded by mu
	lru   *list.List                 // guarded by mu; front: most recently used
	hits  uint64                     // guarded by mu
	evict uint64                     // guarded by mu
}

func newCache(n int) *cache {
	return &cache{max: n, m: make(map[cacheKey]*list.Element), lru: list.New()}
}

func keyOf(name string, t Type) cacheKey {
	return cacheKey{strings.ToLower(trimDot(name)), t}
}

// get returns a live entry's addresses (a copy) and whether one was found; a found entry
// with no addresses is negative.
func (c *cache) get(k cacheKey, now time.Time) ([]netip.Addr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	ce := e.Value.(*cacheEntry)
	if !now.Before(ce.expires) {
		c.lru.Remove(e)
		delete(c.m, k)
		return nil, false
	}
	c.lru.MoveToFront(e)
	c.hits++
	return append([]netip.Addr(nil), ce.addrs...), true
}

// put stores addrs (nil: negative) for ttl; a zero TTL is not cached (RFC 1035 §3.2.1:
// "Zero values are interpreted to mean that the RR can only be used for the transaction in
// progress, and should not be cached").
func (c *cache) put(k cacheKey, addrs []netip.Addr, ttl time.Duration, now time.Time) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ce := &cacheEntry{key: k, addrs: append([]netip.Addr(nil), addrs...), expires: now.Add(ttl)}
	if e, ok := c.m[k]; ok {
		e.Value = ce
		c.lru.MoveToFront(e)
		return
	}
	for c.lru.Len() >= c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*cacheEntry).key)
		c.evict++
	}
	c.m[k] = c.lru.PushFront(ce)
}

// len returns the number of entries, live or expired.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// ttlOf converts a record TTL: RFC 2181 §8, a value with the most significant bit set is
// treated as zero.
func ttlOf(v uint32) time.Duration {
	if v&(1<<31) != 0 {
		return 0
	}
	return time.Duration(v) * time.Second
}
