package main

import (
	"fmt"
	"net/netip"
	"strings"
)

// prefixList is a repeatable --addr flag.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		if a, aerr := netip.ParseAddr(v); aerr == nil {
			bits := 24
			if a.Is6() {
				bits = 64
			}
			return fmt.Errorf("%q has no prefix length: write it as %s/%d, for example", v, a, bits)
		}
		return fmt.Errorf("%q is not an address with a prefix length (like 198.18.0.1/24 or fd42:5eed::1/64)", v)
	}
	if p.Addr().Zone() != "" {
		return fmt.Errorf("%q: zones are not supported", v)
	}
	*l = append(*l, p)
	return nil
}
