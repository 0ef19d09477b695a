// Package opt holds wisp's options: the one struct that sizes every pool, heap and
// protocol limit of a stack, like lwIP's opt.h / lwipopts.h.
//
// Layer: base (imports nothing of wisp). Options are plain values: copy them, change
// fields, call Validate. Safe for concurrent use once no longer modified.
package opt
