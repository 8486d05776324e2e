package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// syslogSeverities are the syslog severity codes of Message.Severity, as
// the adapter maps them back: crit, err, warning, notice, info.
var syslogSeverities = map[string]int{"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}

// appendSyslog appends m as an RFC 5424 line: facility local0, the
// message's host as HOSTNAME, its source as APP-NAME, its Seq as MSGID
// digits in structured data.
func appendSyslog(b []byte, m Message) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(16*8+syslogSeverities[m.Severity]), 10)
	b = append(b, ">1 "...)
	b = m.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	b = append(b, m.Host...)
	b = append(b, ' ')
	b = append(b, m.Source...)
	b = append(b, " - load [loadgen@32473 seq=\""...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, "\"] "...)
	return append(b, m.Text...)
}

// syslogTCP sends octet-counted RFC 5424 messages (RFC 6587) over one TCP
// connection, through a write buffer flushed every 64 KiB and when idle
// for a millisecond.
type syslogTCP struct {
	conn net.Conn
	w    *bufio.Writer
	line []byte
	last time.Time
}

func dialSyslogTCP(ctx context.Context, target string) (Sender, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	return &syslogTCP{conn: c, w: bufio.NewWriterSize(c, 64<<10)}, nil
}

func (s *syslogTCP) Send(ctx context.Context, m Message) error {
	s.line = appendSyslog(s.line[:0], m)
	var n [12]byte
	if _, err := s.w.Write(strconv.AppendInt(n[:0], int64(len(s.line)), 10)); err != nil {
		return err
	}
	_ = s.w.WriteByte(' ')
	if _, err := s.w.Write(s.line); err != nil {
		return err
	}
	// A rate-limited sender sends seldom: flush at once then, so that a
	// message is not held; a fast one flushes as the buffer fills.
	now := time.Now()
	if now.Sub(s.last) > time.Millisecond {
		if dl, ok := ctx.Deadline(); ok {
			_ = s.conn.SetWriteDeadline(dl)
		}
		if err := s.w.Flush(); err != nil {
			return err
		}
	}
	s.last = now
	return nil
}

func (s *syslogTCP) Close() error {
	err := s.w.Flush()
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// syslogUDP sends one RFC 5424 message per datagram.
type syslogUDP struct {
	conn net.Conn
	line []byte
}

func dialSyslogUDP(ctx context.Context, target string) (Sender, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", target)
	if err != nil {
		return nil, err
	}
	return &syslogUDP{conn: c}, nil
}

func (s *syslogUDP) Send(_ context.Context, m Message) error {
	s.line = appendSyslog(s.line[:0], m)
	if _, err := s.conn.Write(s.line); err != nil {
		return fmt.Errorf("syslog-udp: %w", err)
	}
	return nil
}

func (s *syslogUDP) Close() error { return s.conn.Close() }
