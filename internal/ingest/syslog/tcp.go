package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
)

// maxBatch bounds the messages of a connection submitted together: a
// connection submits what it has read whenever its buffer runs dry, or
// every maxBatch messages.
const maxBatch = 256

// accept accepts connections on l until it is closed. A TLS listener's
// connections are wrapped with conf.
func (a *Adapter) accept(l net.Listener, c *counters, conf *tls.Config) {
	defer a.wg.Done()
	gauge := a.met.conns.WithLabelValues(c.name)
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait a little, as
			// net/http does, rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			a.log.Warn("syslog accept failed", "listener", c.name, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !a.admit(conn) {
			a.met.refused.WithLabelValues(c.name, RefusedLimit).Inc()
			_ = conn.Close()
			continue
		}
		gauge.Inc()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer a.release(conn)
			defer gauge.Dec()
			a.serveConn(conn, c, conf)
		}()
	}
}

// admit counts conn against MaxConnections and tracks it for Stop; it
// reports false when the limit is reached or the adapter is stopping.
func (a *Adapter) admit(conn net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped.Load() || a.open >= a.opts.MaxConnections {
		return false
	}
	a.open++
	a.conns[conn] = struct{}{}
	return true
}

func (a *Adapter) release(conn net.Conn) {
	_ = conn.Close()
	a.mu.Lock()
	a.open--
	delete(a.conns, conn)
	a.mu.Unlock()
}

// idleReader sets the connection's read deadline before each read, so
// that a connection that sends nothing for the idle timeout is closed.
type idleReader struct {
	conn    net.Conn
	timeout time.Duration
	a       *Adapter
}

func (r idleReader) Read(p []byte) (int, error) {
	if err := r.conn.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
		return 0, err
	}
	// Checked after the deadline is set: Stop sets stopped, then every
	// connection's deadline to now, so either this sees it or Stop's
	// deadline comes after this one.
	if r.a.stopping() {
		return 0, io.EOF
	}
	return r.conn.Read(p)
}

func (a *Adapter) stopping() bool { return a.stopped.Load() }

// serveConn reads one connection's messages and submits them through the
// blocking submitter: while the intake is full the connection is not
// read, so its sender's writes back up. It recovers from a panic, closing
// the connection.
func (a *Adapter) serveConn(conn net.Conn, c *counters, conf *tls.Config) {
	w := a.newWire(c)
	peer := peerIP(conn.RemoteAddr())
	var batch []intake.Item
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("syslog connection panic", "listener", c.name, "peer", peer, "panic", r)
			c.reject(ReasonPanic, 1)
		}
		a.submit(c, batch) // what was read before the end
	}()
	if conf != nil {
		tc := tls.Server(conn, conf)
		ctx, cancel := context.WithTimeout(a.ctx, a.opts.IdleTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			a.met.refused.WithLabelValues(c.name, RefusedTLS).Inc()
			a.log.Debug("syslog TLS handshake failed", "peer", peer, "err", err)
			return
		}
		conn = tc
	}
	fr := NewFrameReader(idleReader{conn: conn, timeout: a.opts.IdleTimeout, a: a}, a.opts.MaxMessageBytes)
	limit := maxBatch
	if p := a.opts.MaxPendingEvents; p > 0 {
		limit = min(limit, p) // a batch must fit the submitter at all
	}
	batch = make([]intake.Item, 0, limit)
	for {
		msg, err := fr.Next()
		switch {
		case err == nil:
			c.received.Inc()
			it, reason := w.item(msg, peer)
			if reason != "" {
				c.reject(reason, 1)
			} else {
				batch = append(batch, it)
			}
		case errors.Is(err, ErrFrameTooLarge):
			c.received.Inc()
			c.reject(ReasonTooLarge, 1)
		default:
			a.endConn(c, peer, err)
			return
		}
		if len(batch) >= limit || (len(batch) > 0 && !fr.Buffered()) {
			a.submit(c, batch)
			batch = batch[:0]
		}
	}
}

// endConn logs why a connection ended, unless it simply closed.
func (a *Adapter) endConn(c *counters, peer string, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !a.stopping() {
			a.log.Debug("syslog connection idle: closed", "listener", c.name, "peer", peer)
		}
	case errors.Is(err, ErrFraming):
		c.reject(ReasonFraming, 1)
		a.log.Info("syslog connection closed: framing error", "listener", c.name, "peer", peer, "err", err)
	default:
		a.log.Debug("syslog connection ended", "listener", c.name, "peer", peer, "err", err)
	}
}

// submit submits a connection's batch through the blocking submitter; it
// waits for room (so the connection is not read meanwhile), not for the
// batch to be stored.
func (a *Adapter) submit(c *counters, batch []intake.Item) {
	if len(batch) == 0 {
		return
	}
	if err := a.blocking.Enqueue(a.ctx, event.SourceSyslog, batch, c.done(len(batch))); err != nil {
		c.drop(ReasonIntakeError, len(batch))
		a.log.Warn("syslog submit failed", "listener", c.name, "events", len(batch), "err", err)
	}
}
