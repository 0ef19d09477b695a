// Package netnstest gives tests that need the kernel a network namespace of their own: created
// with only a loopback interface (up) and no routes, deleted when the test ends whatever
// happens, with commands run inside it and Go code run on a thread that entered it. It is
// test support (it imports testing), shared by integration and the command's tests.
//
// Layer: internal (test support; imports testing, x/sys/unix). Its functions take the
// test's testing.TB and are safe to call from the test's goroutine; Do runs fn on a
// goroutine of its own and waits for it.
package netnstest
