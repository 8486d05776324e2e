package syslog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
)

// gatePublisher is a fake intake log for the adapter's unit tests: it
// stores what it is given while its gate is open and holds every publish
// while it is shut.
type gatePublisher struct {
	mu    sync.Mutex
	gate  chan struct{} // closed: open
	items []intake.Item
	shut  bool
}

func newGate(open bool) *gatePublisher {
	g := &gatePublisher{gate: make(chan struct{})}
	if open {
		close(g.gate)
	} else {
		g.shut = true
	}
	return g
}

func (g *gatePublisher) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		g.shut = false
		close(g.gate)
	}
}

func (g *gatePublisher) PublishBatch(ctx context.Context, msgs []bus.Message) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return &bus.BatchError{Errs: errsOf(len(msgs), fmt.Errorf("%w: %w", bus.ErrUnavailable, ctx.Err()))}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range msgs {
		var env intake.Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			return err
		}
		g.items = append(g.items, env.Events...)
	}
	return nil
}

func errsOf(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// messages are the raw messages stored so far.
func (g *gatePublisher) messages(t testing.TB) []string {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.items))
	for _, it := range g.items {
		var r raw
		require.NoError(t, json.Unmarshal(it.Data, &r))
		out = append(out, r.Message)
	}
	return out
}

// startTest starts an adapter on 127.0.0.1 (free ports) whose intake
// publishes to pub.
func startTest(t *testing.T, opts Options, pub intake.Publisher) (*Adapter, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	in, err := intake.New(intake.Options{Bus: pub, IDs: event.NewIDGen(1, nil), Registerer: reg})
	require.NoError(t, err)
	a, err := Start(ingest.Env{Intake: in, MaxEventBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler), Registerer: reg, Now: time.Now}, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a, reg
}

// eventually polls cond until it holds (deadline 10s).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func counter(_ *Adapter, vec *prometheus.CounterVec, labels ...string) float64 {
	return promtest.ToFloat64(vec.WithLabelValues(labels...))
}

func octet(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func TestTCPAndUDP(t *testing.T) {
	pub := newGate(true)
	a, _ := startTest(t, Options{TCPAddr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", MaxMessageBytes: 1000}, pub)

	c, err := net.Dial("tcp", a.Addr(ListenerTCP).String())
	require.NoError(t, err)
	_, err = io.WriteString(c, octet("<13>1 - h app - - - one")+"<13>1 - h app - - - two\n"+octet("<13>1 - h app - - - "+strings.Repeat("x", 1000))+"\n\n"+octet("<13>1 - h app - - - three"))
	require.NoError(t, err)
	u, err := net.Dial("udp", a.Addr(ListenerUDP).String())
	require.NoError(t, err)
	_, err = io.WriteString(u, "<13>1 - h app - - - four\n")
	require.NoError(t, err)
	_, err = u.Write([]byte("<13>1 - h app - - - " + strings.Repeat("y", 1000)))
	require.NoError(t, err)

	eventually(t, "four messages stored", func() bool { return len(pub.messages(t)) == 4 })
	require.ElementsMatch(t, []string{"<13>1 - h app - - - one", "<13>1 - h app - - - two", "<13>1 - h app - - - three", "<13>1 - h app - - - four"}, pub.messages(t))
	im := a.met.ingest
	eventually(t, "counters", func() bool {
		return counter(a, im.Accepted, "syslog", "tcp") == 3 && counter(a, im.Accepted, "syslog", "udp") == 1
	})
	require.Equal(t, 4.0, counter(a, im.Received, "syslog", "tcp"))
	require.Equal(t, 1.0, counter(a, im.Rejected, "syslog", "tcp", ReasonTooLarge))
	require.Equal(t, 2.0, counter(a, im.Received, "syslog", "udp"))
	require.Equal(t, 1.0, counter(a, im.Rejected, "syslog", "udp", ReasonTooLarge))

	// A 20-digit octet count closes the connection.
	_, err = io.WriteString(c, "99999999999999999999 <13>1 - h app - - - never")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the server closed the connection")
	require.Equal(t, 1.0, counter(a, im.Rejected, "syslog", "tcp", ReasonFraming))
	_ = c.Close()
	_ = u.Close()
}

// TestBackpressure checks that a TCP connection is not read while the
// intake holds all it may, and that what was read is stored once the
// intake is free.
func TestBackpressure(t *testing.T) {
	pub := newGate(false)
	a, _ := startTest(t, Options{TCPAddr: "127.0.0.1:0", MaxPendingEvents: 100}, pub)
	c, err := net.Dial("tcp", a.Addr(ListenerTCP).String())
	require.NoError(t, err)
	defer c.Close()

	// Far more than the submitter may hold (100 events) and the sockets'
	// buffers: the writes must block.
	msg := octet("<13>1 - h app - - - " + strings.Repeat("z", 1000))
	written := 0
	for written < 100000 {
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(time.Second)))
		if _, err := io.WriteString(c, msg); err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			break
		}
		written++
	}
	require.Less(t, written, 100000, "the sender felt backpressure")
	received := counter(a, a.met.ingest.Received, "syslog", "tcp")
	require.Less(t, received, float64(written), "the server stopped reading")
	require.Zero(t, counter(a, a.met.ingest.Accepted, "syslog", "tcp"))

	pub.open()
	_ = c.Close() // the last, partly written message is lost with the connection
	eventually(t, "what was read is stored", func() bool {
		got := counter(a, a.met.ingest.Received, "syslog", "tcp")
		return got >= float64(written) && counter(a, a.met.ingest.Accepted, "syslog", "tcp") == got
	})
}

func TestConnectionLimit(t *testing.T) {
	pub := newGate(true)
	a, _ := startTest(t, Options{TCPAddr: "127.0.0.1:0", MaxConnections: 3}, pub)
	addr := a.Addr(ListenerTCP).String()
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, fmt.Sprintf("<13>1 - h app - - - conn %d\n", i))
		require.NoError(t, err)
		conns = append(conns, c)
	}
	eventually(t, "three connections served", func() bool { return len(pub.messages(t)) == 3 })

	extra, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer extra.Close()
	require.NoError(t, extra.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = extra.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the fourth connection is closed")
	require.Equal(t, 1.0, counter(a, a.met.refused, "tcp", RefusedLimit))

	// One closes: a new one is taken.
	require.NoError(t, conns[0].Close())
	eventually(t, "a new connection served", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_, _ = io.WriteString(c, "<13>1 - h app - - - late\n")
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		return os.IsTimeout(err) // held open, not refused
	})
	eventually(t, "its message stored", func() bool { return len(pub.messages(t)) >= 4 })
}

func TestIdleTimeout(t *testing.T) {
	a, _ := startTest(t, Options{TCPAddr: "127.0.0.1:0", IdleTimeout: 100 * time.Millisecond}, newGate(true))
	c, err := net.Dial("tcp", a.Addr(ListenerTCP).String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "an idle connection is closed")
}

// TestStop checks that Stop closes held connections and stores what they
// had sent.
func TestStop(t *testing.T) {
	pub := newGate(true)
	a, _ := startTest(t, Options{TCPAddr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0"}, pub)
	c, err := net.Dial("tcp", a.Addr(ListenerTCP).String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "<13>1 - h app - - - before stop\n")
	require.NoError(t, err)
	eventually(t, "read", func() bool { return counter(a, a.met.ingest.Received, "syslog", "tcp") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.Stop(ctx))
	require.Equal(t, []string{"<13>1 - h app - - - before stop"}, pub.messages(t))
	require.NoError(t, a.Stop(ctx), "idempotent")
	_, err = net.Dial("tcp", a.Addr(ListenerTCP).String())
	require.Error(t, err, "the listener is closed")
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	pub := newGate(true)
	a, _ := startTest(t, Options{TLSAddr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile}, pub)
	c, err := tls.Dial("tcp", a.Addr(ListenerTLS).String(), &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	_, err = io.WriteString(c, octet("<13>1 - h app - - - over tls"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	eventually(t, "stored", func() bool { return len(pub.messages(t)) == 1 })
	require.Equal(t, 1.0, counter(a, a.met.ingest.Accepted, "syslog", "tls"))

	// A plain TCP client fails the handshake.
	p, err := net.Dial("tcp", a.Addr(ListenerTLS).String())
	require.NoError(t, err)
	_, _ = io.WriteString(p, "<13>1 - h app - - - plain\n")
	require.NoError(t, p.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, _ = io.ReadAll(p)
	_ = p.Close()
	eventually(t, "handshake failure counted", func() bool { return counter(a, a.met.refused, "tls", RefusedTLS) == 1 })
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestUDPIntakeFull checks that a full intake drops UDP messages, counted,
// without stalling the reader.
func TestUDPIntakeFull(t *testing.T) {
	pub := newGate(false)
	a, _ := startTest(t, Options{UDPAddr: "127.0.0.1:0", MaxPendingEvents: 10}, pub)
	u, err := net.Dial("udp", a.Addr(ListenerUDP).String())
	require.NoError(t, err)
	defer u.Close()
	msg := []byte("<13>1 - h app - - - udp")
	dropped := func() float64 {
		return counter(a, a.met.ingest.Dropped, "syslog", "udp", ReasonIntakeFull) + counter(a, a.met.ingest.Dropped, "syslog", "udp", ReasonSocket)
	}
	t.Cleanup(pub.open) // before Stop
	eventually(t, "drops counted", func() bool {
		for range 20 {
			_, _ = u.Write(msg)
		}
		return counter(a, a.met.ingest.Dropped, "syslog", "udp", ReasonIntakeFull) > 0
	})
	require.Positive(t, dropped())
	pub.open()
}
