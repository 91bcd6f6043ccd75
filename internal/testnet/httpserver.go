package testnet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// HTTPServer is a plain HTTP server on 127.0.0.1 for fetching data through
// Tor in tests. Endpoints:
//
//	GET  /          "hello from gotor testnet\n"
//	GET  /random    the random file (Size bytes, SHA256 below)
//	POST /echo      answers with the request body unchanged
//	POST /upload    reads the body, answers "<length> <sha256 hex>\n"
type HTTPServer struct {
	// URL is the base URL, e.g. "http://127.0.0.1:40123".
	URL string
	// Port is the listening port.
	Port int
	// Size is the length of /random in bytes.
	Size int
	// SHA256 is the hex SHA-256 of /random.
	SHA256 string
	// Data is the content of /random.
	Data []byte

	srv *http.Server
	ln  net.Listener
}

// HelloBody is what GET / answers.
const HelloBody = "hello from gotor testnet\n"

// DefaultRandomSize is the size of /random when StartHTTPServer gets 0.
const DefaultRandomSize = 10 << 20

// StartHTTPServer starts an HTTP server on 127.0.0.1 with a random file of
// size bytes (DefaultRandomSize if size is 0).
func StartHTTPServer(size int) (*HTTPServer, error) {
	if size <= 0 {
		size = DefaultRandomSize
	}
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &HTTPServer{
		Port:   ln.Addr().(*net.TCPAddr).Port,
		Size:   size,
		SHA256: hex.EncodeToString(sum[:]),
		Data:   data,
		ln:     ln,
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, HelloBody)
	})
	mux.HandleFunc("GET /random", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set("X-Content-SHA256", s.SHA256)
		w.Write(data)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x\n", n, h.Sum(nil))
	})
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *HTTPServer) Close() error { return s.srv.Close() }
