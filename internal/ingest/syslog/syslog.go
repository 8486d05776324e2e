// Package syslog is reflex's syslog adapter: it listens on UDP, TCP and
// TLS, reads RFC 5424 and RFC 3164 messages (github.com/leodido/go-syslog,
// best effort; a message that does not parse is kept, its text whole, and
// counted as malformed), frames TCP streams by octet counting (RFC 6587)
// or by newline, detected per frame (see FrameReader), and submits one
// event per message through the intake: TCP and TLS with a blocking
// submitter, so that a connection stops being read while the intake is
// full and its sender feels backpressure; UDP with a dropping one, whose
// drops are counted, as are the kernel's (SO_RXQ_OVFL).
//
// Each intake item's Data is the message as received (see raw); the
// Normalizer parses it again into the event (its doc has the mapping).
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/normalize"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Listener names (the listener label of the metrics).
const (
	ListenerUDP = "udp"
	ListenerTCP = "tcp"
	ListenerTLS = "tls"
)

// Reasons of rejected and dropped messages (see ingest.Metrics).
const (
	ReasonTooLarge    = "too_large"    // a frame or datagram over MaxMessageBytes, or an event over the intake's limit
	ReasonEmpty       = "empty"        // an empty frame or datagram
	ReasonFraming     = "framing"      // a TCP stream that cannot be framed (the connection is closed)
	ReasonPanic       = "panic"        // the parser panicked on the message (or connection)
	ReasonIntakeFull  = "intake_full"  // dropped: the dropping submitter (UDP) was full
	ReasonIntakeError = "intake_error" // dropped: the intake failed to store it, or is stopping
	ReasonSocket      = "socket"       // dropped: the kernel's UDP receive buffer overflowed
)

// Reasons of refused connections (reflex_syslog_connections_refused_total).
const (
	RefusedLimit = "limit"         // MaxConnections were open
	RefusedTLS   = "tls_handshake" // the TLS handshake failed
)

// Adapter is a running syslog adapter. Stop it with Stop.
type Adapter struct {
	env  ingest.Env
	opts Options
	log  *slog.Logger
	met  *metrics

	blocking *intake.Submitter // TCP and TLS
	dropping *intake.Submitter // UDP

	// ctx ends when Stop gives up waiting: it bounds the blocking
	// submits of the connections.
	ctx    context.Context
	cancel context.CancelFunc

	udp      *net.UDPConn
	tcp, tls net.Listener
	tlsConf  *tls.Config

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	open    int            // connections counted against MaxConnections
	stopped atomic.Bool    // set under mu
	wg      sync.WaitGroup // listeners' loops and connections
}

// metrics are the ingest counters, resolved per listener, and the
// adapter's own.
type metrics struct {
	ingest     *ingest.Metrics
	malformed  *prometheus.CounterVec
	conns      *prometheus.GaugeVec
	refused    *prometheus.CounterVec
	udpBuffers *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	im, err := ingest.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	m := &metrics{
		ingest: im,
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_syslog_malformed_total",
			Help: "Syslog messages that did not parse as RFC 5424 or RFC 3164 and were kept as events with their whole text (tag syslog_malformed), by listener and reason (priority, rfc5424, rfc3164).",
		}, []string{"listener", "reason"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reflex_syslog_connections",
			Help: "Syslog TCP and TLS connections open, by listener.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_syslog_connections_refused_total",
			Help: "Syslog TCP and TLS connections closed as soon as accepted, by listener and reason (limit: syslog-max-connections were open; tls_handshake).",
		}, []string{"listener", "reason"}),
		udpBuffers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reflex_syslog_udp_receive_buffer_bytes",
			Help: "The syslog UDP socket's receive buffer as the kernel set it (SO_RCVBUF read back).",
		}, []string{"listener"}),
	}
	for _, c := range []**prometheus.CounterVec{&m.malformed, &m.refused} {
		if err := promutil.Register(reg, c); err != nil {
			return nil, err
		}
	}
	for _, g := range []**prometheus.GaugeVec{&m.conns, &m.udpBuffers} {
		if err := promutil.Register(reg, g); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// counters are one listener's counters, resolved once.
type counters struct {
	name     string
	received prometheus.Counter
	accepted prometheus.Counter
	m        *metrics
}

func (m *metrics) listener(name string) *counters {
	return &counters{
		name:     name,
		received: m.ingest.Received.WithLabelValues("syslog", name),
		accepted: m.ingest.Accepted.WithLabelValues("syslog", name),
		m:        m,
	}
}

func (c *counters) reject(reason string, n int) {
	c.m.ingest.Rejected.WithLabelValues("syslog", c.name, reason).Add(float64(n))
}

func (c *counters) drop(reason string, n int) {
	c.m.ingest.Dropped.WithLabelValues("syslog", c.name, reason).Add(float64(n))
}

// done is the submitters' callback for a submission of n items.
func (c *counters) done(n int) func([]int64, error) {
	return func(_ []int64, err error) {
		if err != nil {
			c.drop(ReasonIntakeError, n)
			return
		}
		c.accepted.Add(float64(n))
	}
}

// Start starts the configured listeners. env.Intake is required.
func Start(env ingest.Env, opts Options) (*Adapter, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if env.Intake == nil {
		return nil, errors.New("syslog: no intake")
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	met, err := newMetrics(env.Registerer)
	if err != nil {
		return nil, fmt.Errorf("syslog: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Adapter{env: env, opts: opts, log: env.Logger, met: met, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]struct{})}
	if err := a.listen(); err != nil {
		a.closeListeners()
		cancel()
		return nil, err
	}
	if a.tcp != nil || a.tls != nil {
		if a.blocking, err = env.Intake.NewSubmitter(intake.SubmitterOptions{Mode: intake.Blocking, MaxPendingEvents: opts.MaxPendingEvents}); err != nil {
			a.closeListeners()
			cancel()
			return nil, fmt.Errorf("syslog: %w", err)
		}
	}
	if a.udp != nil {
		if a.dropping, err = env.Intake.NewSubmitter(intake.SubmitterOptions{Mode: intake.Dropping, MaxPendingEvents: opts.MaxPendingEvents}); err != nil {
			a.closeListeners()
			cancel()
			return nil, fmt.Errorf("syslog: %w", err)
		}
	}
	if a.udp != nil {
		a.wg.Add(1)
		go a.serveUDP(a.udp, met.listener(ListenerUDP))
	}
	if a.tcp != nil {
		a.wg.Add(1)
		go a.accept(a.tcp, met.listener(ListenerTCP), nil)
	}
	if a.tls != nil {
		a.wg.Add(1)
		go a.accept(a.tls, met.listener(ListenerTLS), a.tlsConf)
	}
	a.log.Info("syslog listening", "udp", addrString(a.Addr(ListenerUDP)), "tcp", addrString(a.Addr(ListenerTCP)), "tls", addrString(a.Addr(ListenerTLS)))
	return a, nil
}

// listen opens the configured sockets.
func (a *Adapter) listen() error {
	var err error
	if a.opts.UDPAddr != "" {
		if a.udp, err = listenUDP(a.opts.UDPAddr, a.opts.UDPBuffer); err != nil {
			return fmt.Errorf("syslog: udp: %w", err)
		}
		if n, err := readBuffer(a.udp); err == nil {
			a.met.udpBuffers.WithLabelValues(ListenerUDP).Set(float64(n))
			if a.opts.UDPBuffer > 0 && n < a.opts.UDPBuffer {
				a.log.Warn("syslog UDP receive buffer smaller than asked: raise net.core.rmem_max", "asked", a.opts.UDPBuffer, "got", n)
			}
		}
	}
	if a.opts.TCPAddr != "" {
		if a.tcp, err = net.Listen("tcp", a.opts.TCPAddr); err != nil {
			return fmt.Errorf("syslog: tcp: %w", err)
		}
	}
	if a.opts.TLSAddr != "" {
		cert, err := tls.LoadX509KeyPair(a.opts.CertFile, a.opts.KeyFile)
		if err != nil {
			return fmt.Errorf("syslog: tls: %w", err)
		}
		a.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if a.tls, err = net.Listen("tcp", a.opts.TLSAddr); err != nil {
			return fmt.Errorf("syslog: tls: %w", err)
		}
	}
	return nil
}

// Addr is the address a listener (ListenerUDP, ListenerTCP, ListenerTLS)
// is bound to, or nil when it is off.
func (a *Adapter) Addr(listener string) net.Addr {
	switch listener {
	case ListenerUDP:
		if a.udp != nil {
			return a.udp.LocalAddr()
		}
	case ListenerTCP:
		if a.tcp != nil {
			return a.tcp.Addr()
		}
	case ListenerTLS:
		if a.tls != nil {
			return a.tls.Addr()
		}
	}
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (a *Adapter) closeListeners() {
	if a.udp != nil {
		_ = a.udp.Close()
	}
	if a.tcp != nil {
		_ = a.tcp.Close()
	}
	if a.tls != nil {
		_ = a.tls.Close()
	}
}

// Stop closes the listeners and the connections (each submits what it
// had read first), then waits, bounded by ctx, for what was taken to be
// stored. It is idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	first := !a.stopped.Load()
	a.stopped.Store(true)
	if first {
		now := time.Now()
		for c := range a.conns {
			_ = c.SetReadDeadline(now)
		}
	}
	a.mu.Unlock()
	if first {
		a.closeListeners()
	}
	stopCtx := context.AfterFunc(ctx, a.cancel) // give up the blocking submits at ctx's end
	defer stopCtx()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("syslog: stop: %w", ctx.Err())
	}
	var errs []error
	for _, s := range []*intake.Submitter{a.blocking, a.dropping} {
		if s != nil {
			if err := s.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	a.cancel()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("syslog: stop: %w", err)
	}
	return nil
}

// wire is what the listeners share to turn a message into an item: one
// per goroutine (the parser keeps state).
type wire struct {
	a      *Adapter
	p      *parser
	c      *counters
	buf    []byte
	source string
}

func (a *Adapter) newWire(c *counters) *wire {
	return &wire{a: a, p: newParser(a.opts.Location), c: c, source: a.opts.Source}
}

// item turns one message from peer into an intake item, or says why not
// (a rejected reason). It recovers from a parser panic.
func (w *wire) item(msg []byte, peer string) (it intake.Item, reason string) {
	defer func() {
		if r := recover(); r != nil {
			w.a.log.Error("syslog parser panic", "listener", w.c.name, "panic", fmt.Sprint(r))
			it, reason = intake.Item{}, ReasonPanic
		}
	}()
	if len(msg) == 0 {
		return intake.Item{}, ReasonEmpty
	}
	s := clean(msg)
	m := w.p.parse([]byte(s), w.a.env.Now())
	if m.Malformed != "" {
		w.c.m.malformed.WithLabelValues(w.c.name, m.Malformed).Inc()
	}
	w.buf = appendRaw(w.buf[:0], s, peer, w.c.name)
	if limit := w.a.env.MaxEventBytes; limit > 0 && len(w.buf) > limit {
		return intake.Item{}, ReasonTooLarge
	}
	data := make([]byte, len(w.buf))
	copy(data, w.buf)
	return intake.Item{
		SourceSystem: w.source,
		Severity:     SeverityOf(m.Severity),
		Data:         data,
		Host:         normalize.Host(hostOf(&m, peer)),
	}, ""
}

// clean makes msg valid UTF-8 without NUL, as the stores need it.
func clean(msg []byte) string {
	s := string(msg)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// appendRaw appends the JSON of raw{msg, peer, listener} to b (the
// strings are valid UTF-8: see clean).
func appendRaw(b []byte, msg, peer, listener string) []byte {
	b = append(b, `{"message":`...)
	b = appendString(b, msg)
	if peer != "" {
		b = append(b, `,"peer":`...)
		b = appendString(b, peer)
	}
	b = append(b, `,"listener":`...)
	b = appendString(b, listener)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s, valid UTF-8, as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// peerIP is the IP address of a connection's or datagram's sender.
func peerIP(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
