package metrics

import (
	"html/template"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wispstack/wisp/stack"
)

// Option configures Handler.
type Option func(*config)

type config struct {
	title string
}

// Title sets the heading of the HTML page (default "wisp").
func Title(t string) Option { return func(c *config) { c.title = t } }

// Handler returns the HTTP handler of s's stats:
//
//	/metrics        Prometheus text format: every counter of s.Stats(), the budget, the
//	                connection summary (a Collector read at each scrape, its own registry)
//	/               an HTML page: the budget, live counters, the connection list and the
//	                doctor's findings, refreshing itself every second from the two below
//	/snapshot.json  the doctor's input (doctor.Input: options, counters, connections), what
//	                `wisp doctor --url` reads and `--save` keeps
//	/diagnose       the doctor's findings in plain words; as JSON with ?json=1
//
// It serves only GET and HEAD. It is safe for concurrent use.
func Handler(s *stack.Stack, opts ...Option) http.Handler {
	c := config{title: "wisp"}
	for _, o := range opts {
		o(&c)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(s))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	registerDoctor(mux, s)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := page.Execute(w, pageData{Title: c.title, Budget: s.Budget(), Cores: len(s.Cores())}); err != nil {
			// Headers are out: all that is left is to stop writing.
			return
		}
	})
	return mux
}

// page is the HTML page; see page.go.
var page = template.Must(template.New("page").Parse(pageHTML))
