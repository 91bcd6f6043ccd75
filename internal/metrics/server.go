// MetricsPort HTTP server (tor manual: MetricsPort, MetricsPortPolicy):
// GET /metrics in the Prometheus text format, connections from addresses
// the policy rejects are closed without a response, as C tor does.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServerConfig configures the MetricsPort.
type ServerConfig struct {
	// Addr is the listen address, e.g. "127.0.0.1:9035". Non-loopback
	// addresses are refused unless AllowNonLoopback is set.
	Addr             string
	AllowNonLoopback bool
	// Policy is the MetricsPortPolicy. Empty rejects every client, as C
	// tor does without a policy: byte counters are a traffic side channel
	// to other local users.
	Policy Policy
	Logger *slog.Logger
}

// Server serves a registry on the MetricsPort.
type Server struct {
	cfg  ServerConfig
	m    *Metrics
	log  *slog.Logger
	srv  *http.Server
	mu   sync.Mutex
	ln   net.Listener
	done chan struct{}
}

// NewServer validates cfg.
func NewServer(cfg ServerConfig, m *Metrics) (*Server, error) {
	if m == nil {
		return nil, errors.New("metrics: nil Metrics")
	}
	if cfg.Addr == "" {
		return nil, errors.New("metrics: empty MetricsPort address")
	}
	if !cfg.AllowNonLoopback && !isLoopback(cfg.Addr) {
		return nil, fmt.Errorf("metrics: refusing non-loopback MetricsPort %q", cfg.Addr)
	}
	s := &Server{cfg: cfg, m: m, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	return s, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Handler returns the HTTP handler: GET/HEAD /metrics only.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	prom := promhttp.HandlerFor(s.m.Registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		prom.ServeHTTP(w, r)
	})
	return mux
}

// allows applies the policy to a remote address.
func (s *Server) allows(ra net.Addr) bool {
	ap, err := netip.ParseAddrPort(ra.String())
	if err != nil {
		return false
	}
	return s.cfg.Policy.Allows(ap.Addr().Unmap())
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.mu.Lock()
	s.ln = l
	s.done = make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(&policyListener{Listener: l, s: s}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("metrics: serve", "err", err)
		}
	}()
	return nil
}

// Addr is the listening address (after Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	return err
}

// policyListener drops connections the policy rejects.
type policyListener struct {
	net.Listener
	s *Server
}

func (l *policyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.allows(c.RemoteAddr()) {
			return c, nil
		}
		l.s.log.Info("metrics: rejected connection by MetricsPortPolicy", "remote", c.RemoteAddr().String())
		c.Close()
	}
}
