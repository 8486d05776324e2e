// Package snmp is reflex's SNMP trap receiver: it listens on UDP for
// SNMP v1 traps, v2c traps and informs and v3 traps and informs (USM
// users with authentication and privacy), refuses v1/v2c communities not
// in its allow-list and v3 messages it cannot authenticate, and submits
// each notification as a raw event of source type snmp. An inform is
// answered with its Response PDU only once its event is durable on the
// intake log. The normalizer (Normalizer) maps the trap OID to
// event_type, the varbinds to event_data by OID and by name (a built-in
// table of standard and common OIDs, and the user's map; no MIB files),
// and the agent's address to source_host.
//
// Datagrams are read from a net.UDPConn and decoded with gosnmp
// (UnmarshalTrap, one security parameters table for all the v3 users),
// one at a time, with a recover per datagram: a datagram that panics the
// decoder is counted as rejected (reason parse) and the listener goes on.
package snmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
)

// Adapter and listener labels of the ingest metrics.
const (
	adapterLabel  = "snmp"
	listenerLabel = "udp"
)

// Reasons a notification is dropped (reflex_ingest_dropped_total).
const (
	dropIntakeFull  = "intake_full"  // the dropping submitter's buffer was full
	dropIntakeError = "intake_error" // the intake log did not store it
	dropClosed      = "closed"       // it arrived while the listener stopped
	dropSocket      = "socket"       // the kernel's receive buffer overflowed (Linux)
)

// DefaultReadBuffer is the socket receive buffer asked for (the kernel
// caps it at net.core.rmem_max).
const DefaultReadBuffer = 4 << 20

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// maxInflightInforms bounds the informs remembered while their events are
// submitted (retransmissions of one of them are not submitted again).
const maxInflightInforms = 4096

// Options configure Listen.
type Options struct {
	// Addr is the UDP address to listen on (host:port; port 0 picks one).
	Addr string
	// Source is the source system of the events (default "snmp").
	Source string
	// Settings are the communities, users and OID table (LoadConfig).
	Settings Settings
	// Env is the server's: intake, event size bound, logger, metrics.
	Env ingest.Env
	// Submitter tunes the dropping submitter (its Mode is ignored).
	Submitter intake.SubmitterOptions
	// ReadBuffer is the socket receive buffer in bytes (default
	// DefaultReadBuffer).
	ReadBuffer int
}

// Listener receives traps and informs on one UDP socket. Stop it.
type Listener struct {
	conn   *net.UDPConn
	dec    *Decoder
	sub    *intake.Submitter
	met    *ingest.Metrics
	log    *slog.Logger
	source string
	max    int

	stopping atomic.Bool
	done     chan struct{} // closed when the reader returns
	stopOnce sync.Once
	stopErr  error

	mu       sync.Mutex
	inflight map[string]struct{} // informs being submitted, by sender and ids
}

// Listen opens the socket and starts reading.
func Listen(opts Options) (*Listener, error) {
	if opts.Env.Intake == nil {
		return nil, errors.New("snmp: no intake")
	}
	if opts.Source == "" {
		opts.Source = adapterLabel
	}
	log := opts.Env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	met, err := ingest.NewMetrics(opts.Env.Registerer)
	if err != nil {
		return nil, fmt.Errorf("snmp: metrics: %w", err)
	}
	dec, err := NewDecoder(opts.Settings)
	if err != nil {
		return nil, err
	}
	addr, err := net.ResolveUDPAddr("udp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("snmp: listen address %q: %w", opts.Addr, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("snmp: listen: %w", err)
	}
	if opts.ReadBuffer <= 0 {
		opts.ReadBuffer = DefaultReadBuffer
	}
	if err := conn.SetReadBuffer(opts.ReadBuffer); err != nil {
		log.Warn("snmp: receive buffer", "bytes", opts.ReadBuffer, "err", err)
	}
	so := opts.Submitter
	so.Mode = intake.Dropping
	sub, err := opts.Env.Intake.NewSubmitter(so)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("snmp: submitter: %w", err)
	}
	l := &Listener{
		conn:     conn,
		dec:      dec,
		sub:      sub,
		met:      met,
		log:      log,
		source:   opts.Source,
		max:      opts.Env.MaxEventBytes,
		done:     make(chan struct{}),
		inflight: make(map[string]struct{}),
	}
	for _, reason := range []string{ReasonParse, ReasonCommunity, ReasonAuth, ReasonUnsupported, ReasonTooLarge} {
		met.Rejected.WithLabelValues(adapterLabel, listenerLabel, reason)
	}
	for _, reason := range []string{dropIntakeFull, dropIntakeError, dropClosed, dropSocket} {
		met.Dropped.WithLabelValues(adapterLabel, listenerLabel, reason)
	}
	met.Received.WithLabelValues(adapterLabel, listenerLabel)
	met.Accepted.WithLabelValues(adapterLabel, listenerLabel)
	go l.read(countSocketDrops(conn))
	log.Info("snmp trap listener started", "addr", conn.LocalAddr().String(),
		"communities", len(opts.Settings.Communities), "users", len(opts.Settings.Users), "engine_id", dec.EngineID())
	return l, nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() *net.UDPAddr { return l.conn.LocalAddr().(*net.UDPAddr) } //nolint:forcetypeassert // a UDPConn's

// EngineID is the receiver's engine ID in hex (what a v3 inform's sender
// discovers).
func (l *Listener) EngineID() string { return l.dec.EngineID() }

// Stop stops reading, waits (bounded by ctx) for the events taken to be
// stored and their informs answered, and closes the socket. It is
// idempotent.
func (l *Listener) Stop(ctx context.Context) error {
	l.stopOnce.Do(func() {
		l.stopping.Store(true)
		_ = l.conn.SetReadDeadline(time.Now())
		<-l.done
		l.stopErr = l.sub.Close(ctx) // informs are answered on the socket still open
		if err := l.conn.Close(); err != nil && l.stopErr == nil {
			l.stopErr = fmt.Errorf("snmp: close: %w", err)
		}
	})
	return l.stopErr
}

// read reads datagrams until Stop, counting the kernel's drops when
// drops says it reports them.
func (l *Listener) read(drops bool) {
	defer close(l.done)
	buf := make([]byte, maxDatagram)
	var oob []byte
	if drops {
		oob = make([]byte, 64)
	}
	var dropped uint32
	for {
		n, oobn, _, from, err := l.conn.ReadMsgUDPAddrPort(buf, oob)
		if oobn > 0 {
			if total, ok := socketDrops(oob[:oobn]); ok && total != dropped {
				l.met.Dropped.WithLabelValues(adapterLabel, listenerLabel, dropSocket).Add(float64(total - dropped)) // wraps as the kernel's does
				dropped = total
			}
		}
		if err != nil {
			if l.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("snmp read", "err", err)
			time.Sleep(10 * time.Millisecond) // a persistent error must not spin
			continue
		}
		l.handle(buf[:n], from)
	}
}

// handle decodes and submits one datagram.
func (l *Listener) handle(data []byte, from netip.AddrPort) {
	l.met.Received.WithLabelValues(adapterLabel, listenerLabel).Inc()
	defer func() {
		if r := recover(); r != nil {
			l.rejected(ReasonParse, from, fmt.Errorf("panic: %v", r))
		}
	}()
	p, err := l.dec.Decode(data, from)
	if err != nil {
		reason := ReasonParse
		var re *RejectError
		if errors.As(err, &re) {
			reason = re.Reason
		}
		l.rejected(reason, from, err)
		return
	}
	if p.Trap == nil { // a v3 engine discovery probe
		l.reply(p.Reply, from)
		return
	}
	raw, err := json.Marshal(p.Trap)
	if err != nil {
		l.rejected(ReasonParse, from, err)
		return
	}
	if l.max > 0 && len(raw) > l.max {
		l.rejected(ReasonTooLarge, from, fmt.Errorf("event of %d bytes, at most %d", len(raw), l.max))
		return
	}
	key := ""
	if p.Reply != nil {
		key = p.Trap.informKey(from)
		if !l.begin(key) {
			return // a retransmission: answered when the first is stored
		}
	}
	item := intake.Item{SourceSystem: l.source, Severity: p.Trap.laneSeverity(), Data: raw, Host: p.Trap.Host()}
	err = l.sub.Enqueue(context.Background(), event.SourceSNMP, []intake.Item{item}, func(_ []int64, err error) {
		l.end(key)
		if err != nil {
			l.dropped(dropIntakeError)
			l.log.Warn("snmp event not stored", "err", err)
			return
		}
		l.met.Accepted.WithLabelValues(adapterLabel, listenerLabel).Inc()
		if p.Reply != nil {
			l.reply(p.Reply, from)
		}
	})
	if err != nil {
		l.end(key)
		switch {
		case errors.Is(err, intake.ErrDropped):
			l.dropped(dropIntakeFull)
		case errors.Is(err, intake.ErrClosed):
			l.dropped(dropClosed)
		case errors.Is(err, intake.ErrTooLarge):
			l.rejected(ReasonTooLarge, from, err)
		default:
			l.rejected(ReasonParse, from, err)
		}
	}
}

// begin records an inform being submitted, reporting false when it
// already is (a retransmission).
func (l *Listener) begin(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.inflight[key]; ok {
		return false
	}
	if len(l.inflight) < maxInflightInforms {
		l.inflight[key] = struct{}{}
	}
	return true
}

func (l *Listener) end(key string) {
	if key == "" {
		return
	}
	l.mu.Lock()
	delete(l.inflight, key)
	l.mu.Unlock()
}

func (l *Listener) reply(b []byte, to netip.AddrPort) {
	if _, err := l.conn.WriteToUDPAddrPort(b, to); err != nil && !l.stopping.Load() {
		l.log.Warn("snmp reply", "to", to.String(), "err", err)
	}
}

func (l *Listener) rejected(reason string, from netip.AddrPort, err error) {
	l.met.Rejected.WithLabelValues(adapterLabel, listenerLabel, reason).Inc()
	l.log.Debug("snmp datagram rejected", "reason", reason, "from", from.String(), "err", err)
}

func (l *Listener) dropped(reason string) {
	l.met.Dropped.WithLabelValues(adapterLabel, listenerLabel, reason).Inc()
}

// informKey identifies an inform and its retransmissions.
func (t *Trap) informKey(from netip.AddrPort) string {
	return from.String() + "/" + t.Version + "/" + t.User + "/" + strconv.FormatUint(uint64(t.requestID), 10)
}

// laneSeverity is the severity the event will have (a resolution is
// info), which picks its intake lane.
func (t *Trap) laneSeverity() event.Severity {
	if t.resolution() {
		return event.Info
	}
	if !t.Severity.Valid() {
		return DefaultSeverity
	}
	return t.Severity
}
