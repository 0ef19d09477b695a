// Package httpapp holds the HTTP side of `wisp serve --http`: a built-in handler with an
// index page and /bytes/N, which streams N bytes of internal/tcpapp's seeded pattern (so a
// 1 GB download is checked with tcpapp.PatternSum, or sha256sum against PatternSum's hex),
// and NewServer, an http.Server with the timeouts a public-facing server wants.
//
// The handler knows nothing of wisp: it serves any net.Listener, and `wisp serve` hands it
// the listeners of package endpoint.
//
// Layer: internal (imports internal/tcpapp and the standard library). Concurrency: the
// handler is safe for concurrent use, as net/http requires.
package httpapp
