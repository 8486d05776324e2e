package syslog

import (
	"errors"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxMessageBytes = 64 << 10
	DefaultMaxConnections  = 2000
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultSource          = "syslog"
)

// Options configure Start. Each listener is off while its address is
// empty; the zero value of the rest is the default.
type Options struct {
	// UDPAddr, TCPAddr and TLSAddr are the listen addresses (host:port;
	// port 0 picks a free one, see Adapter.Addr).
	UDPAddr string
	TCPAddr string
	TLSAddr string
	// CertFile and KeyFile are the PEM certificate (chain) and key of the
	// TLS listener; both are required with TLSAddr.
	CertFile string
	KeyFile  string
	// MaxMessageBytes bounds one message (default 64 KiB): a longer TCP
	// frame or UDP datagram is rejected (reason too_large).
	MaxMessageBytes int
	// MaxConnections bounds the TCP and TLS connections open at once
	// (default 2000); the next ones are closed as soon as accepted.
	MaxConnections int
	// IdleTimeout closes a TCP or TLS connection that sent nothing for
	// this long (default 5m); it also bounds a TLS handshake.
	IdleTimeout time.Duration
	// UDPBuffer is the UDP socket's receive buffer, SO_RCVBUF (0: the
	// kernel's default; Linux caps it at net.core.rmem_max).
	UDPBuffer int
	// Source is the events' source system (default "syslog").
	Source string
	// Location is the zone of RFC 3164 times (default time.Local).
	Location *time.Location
	// MaxPendingEvents bounds the events each of the adapter's submitters
	// (TCP and TLS; UDP) holds until the intake log has stored them
	// (default intake.DefaultMaxPendingEvents): past it TCP stops reading
	// and UDP drops.
	MaxPendingEvents int
}

func (o *Options) defaults() error {
	if o.UDPAddr == "" && o.TCPAddr == "" && o.TLSAddr == "" {
		return errors.New("syslog: no listener configured")
	}
	if o.TLSAddr != "" && (o.CertFile == "" || o.KeyFile == "") {
		return errors.New("syslog: the TLS listener needs a certificate and a key")
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	return nil
}
