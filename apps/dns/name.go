package dns

import (
	"strings"
	"time"
)

// ttlOf converts a record's TTL: RFC 2181 §8 makes values with the top bit set zero.
func ttlOf(v uint32) time.Duration {
	if v > 1<<31-1 {
		v = 0
	}
	return time.Duration(v) * time.Second
}

func trimDot(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

func normalize(name string) string { return strings.ToLower(trimDot(name)) }

// looksLiteral reports whether name may be an IP literal: IPv6 has a colon, IPv4 only
// digits and dots.
func looksLiteral(name string) bool {
	if strings.IndexByte(name, ':') >= 0 {
		return true
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isLocal reports whether name is in the mDNS domain "local." (RFC 6762 §3).
func isLocal(name string) bool {
	n := trimDot(name)
	return len(n) > 6 && strings.EqualFold(n[len(n)-6:], ".local")
}

// ValidName reports whether s is a host name worth asking for (RFC 1035 §2.3.1 syntax,
// relaxed as in practice: underscores and digit-only labels allowed, but not an all-numeric
// name).
func ValidName(s string) bool {
	if s == "." {
		return false
	}
	s = trimDot(s)
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	nonNumeric := false
	label := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if label == 0 || label > 63 || s[i-label] == '-' || s[i-1] == '-' {
				return false
			}
			label = 0
			continue
		}
		label++
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-':
			nonNumeric = true
		case '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return nonNumeric
}
