// Package cc holds TCP's congestion control algorithms behind one small interface: CUBIC
// (RFC 9438, the default, with HyStart++ from RFC 9406 in the initial slow start) and
// NewReno (RFC 5681, RFC 6582).
//
// Layer: transport (imports only the standard library). Concurrency: none; a Controller
// belongs to one connection and runs in the stack's core context.
package cc
