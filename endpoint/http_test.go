package endpoint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTP serves net/http on a wisp listener and fetches from it with net/http's client
// dialing through wisp.
func TestHTTP(t *testing.T) {
	p := newPair(t, pairConfig{})
	l := listen(t, p.nb, "tcp", "[fd42:5eed::2]:80")
	body := strings.Repeat("wisp ", 100000)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}), ReadTimeout: ioTimeout, WriteTimeout: ioTimeout}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	tr := &http.Transport{DialContext: p.na.DialContext}
	cl := &http.Client{Transport: tr, Timeout: ioTimeout} // the dial, the request, the body
	for range 3 {
		resp, err := cl.Get("http://[fd42:5eed::2]:80/")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != body {
			t.Fatalf("got %d bytes, %v", len(b), err)
		}
	}
	tr.CloseIdleConnections()
	srv.Close()
	if err := <-done; err != http.ErrServerClosed {
		t.Fatal(err)
	}
}

// TestTLS runs crypto/tls over a wisp TCP connection.
func TestTLS(t *testing.T) {
	p := newPair(t, pairConfig{})
	c, s := p.tcpPair(t, 0) // deadlines, closed after the evidence
	cert := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "wisp.test"})
	ts := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}})
	p.ev.Close(tc)
	p.ev.Close(ts)
	go func() {
		b := make([]byte, 5)
		if _, err := io.ReadFull(ts, b); err == nil {
			ts.Write(b)
		}
	}()
	if _, err := tc.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(tc, b); err != nil || string(b) != "hello" {
		t.Fatalf("%q %v", b, err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wisp.test"},
		DNSNames:     []string{"wisp.test"},
		IPAddresses:  []net.IP{net.ParseIP("198.18.0.2")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
