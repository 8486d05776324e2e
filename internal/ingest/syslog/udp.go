package syslog

import (
	"errors"
	"net"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
)

// listenUDP opens the UDP socket with a receive buffer of size bytes (0:
// the kernel's default) and the kernel's drop counter turned on where
// there is one.
func listenUDP(addr string, size int) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	if size > 0 {
		if err := c.SetReadBuffer(size); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	if err := enableDropCount(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// serveUDP reads datagrams until the socket is closed: one datagram is one
// message, submitted through the dropping submitter (a full intake drops
// it, counted, and the reader goes on).
func (a *Adapter) serveUDP(conn *net.UDPConn, c *counters) {
	defer a.wg.Done()
	w := a.newWire(c)
	buf := make([]byte, a.opts.MaxMessageBytes+1) // +1: a longer datagram is seen to be
	oob := make([]byte, oobSize)
	var kernelDrops uint32 // the socket's drop count last seen
	done := c.done(1)
	items := make([]intake.Item, 1)
	for {
		n, oobn, _, addr, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			a.log.Warn("syslog UDP read failed", "err", err)
			continue
		}
		if d, ok := dropCount(oob[:oobn]); ok && d != kernelDrops {
			c.drop(ReasonSocket, int(d-kernelDrops)) // wraps at 2^32 as the kernel's does
			kernelDrops = d
		}
		c.received.Inc()
		if n > a.opts.MaxMessageBytes {
			c.reject(ReasonTooLarge, 1)
			continue
		}
		it, reason := w.item(trimDatagram(buf[:n]), addr.Addr().Unmap().String())
		if reason != "" {
			c.reject(reason, 1)
			continue
		}
		items[0] = it
		if err := a.dropping.Enqueue(a.ctx, event.SourceSyslog, items, done); err != nil {
			if errors.Is(err, intake.ErrDropped) {
				c.drop(ReasonIntakeFull, 1)
			} else {
				c.drop(ReasonIntakeError, 1)
			}
		}
	}
}

// trimDatagram drops the line end some senders put after a datagram's
// message.
func trimDatagram(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}
