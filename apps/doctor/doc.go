// Package doctor turns a stack's counters into diagnoses: what lwIP's guide teaches a
// developer to read in stats_display() — PCB exhaustion, pbuf starvation, a window or a
// send buffer too small for the path, ERR_MEM from the heap, a fragmented heap, an
// overflowing mailbox, a core held too long, retransmission storms, DNS with one server —
// each said in plain words with the opt.Options field to change and a value for it,
// computed from the evidence.
//
// An Input is one moment of a stack (stack.DoctorInput takes it; `wisp doctor` reads it
// from a running stack's /snapshot.json or a saved file). Diagnose compares two of them:
// counters are read as what happened between the two, rates as the differences over the
// time between them; with only one, counters since the stack started and no rates.
//
// Layer: apps (imports opt, stats; never stack). Diagnose is a pure function of its
// inputs, safe for concurrent use.
package doctor
