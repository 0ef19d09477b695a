package frag

import "github.com/wispstack/wisp/errs"

// Error is a reason a fragment was refused. Every Error matches errs.Val with errors.Is, so
// callers that only care about lwIP's codes need not know these; the ip package uses them
// to choose the ICMP error to send (RFC 8200 §4.5 asks for Parameter Problem code 0 for
// ErrMisaligned and ErrTooBig).
type Error struct{ text string }

func (e *Error) Error() string { return e.text }

// Unwrap makes errors.Is(err, errs.Val) hold.
func (e *Error) Unwrap() error { return errs.Val }

// The reasons a fragment is refused besides errs.Mem, errs.Arg and errs.Clsd.
var (
	// ErrMisaligned: a fragment with MF set whose data length is not a positive multiple of
	// 8 (RFC 8200 §4.5; RFC 791 fragments on 8-octet boundaries).
	ErrMisaligned = &Error{"frag: non-last fragment length is not a positive multiple of 8"}
	// ErrTooBig: the reassembled datagram would exceed 65535 bytes (IPv4 total length, IPv6
	// payload length).
	ErrTooBig = &Error{"frag: reassembled datagram would exceed 65535 bytes"}
	// ErrInconsistent: a fragment ends past the last fragment, or a second last fragment
	// disagrees with the first about the datagram's length.
	ErrInconsistent = &Error{"frag: fragment inconsistent with the last fragment"}
	// ErrOverlap: the fragment overlaps another of its datagram (RFC 5722); the whole
	// datagram is discarded, and so is every later fragment of it until it would have
	// timed out.
	ErrOverlap = &Error{"frag: overlapping fragment, datagram discarded"}
)
