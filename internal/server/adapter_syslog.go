package server

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/ingest/syslog"
)

// startSyslog starts the syslog listeners that are configured
// (syslog-udp, syslog-tcp, syslog-tls); none by default.
func (s *Server) startSyslog(context.Context) ([]api.Route, error) {
	c := s.cfg
	if c.SyslogUDP == "" && c.SyslogTCP == "" && c.SyslogTLS == "" {
		return nil, nil
	}
	a, err := syslog.Start(s.ingestEnv("syslog"), syslog.Options{
		UDPAddr:         c.SyslogUDP,
		TCPAddr:         c.SyslogTCP,
		TLSAddr:         c.SyslogTLS,
		CertFile:        c.SyslogTLSCert,
		KeyFile:         c.SyslogTLSKey,
		MaxMessageBytes: int(c.SyslogMaxMessage),
		MaxConnections:  c.SyslogMaxConns,
		IdleTimeout:     time.Duration(c.SyslogIdleTimeout),
		UDPBuffer:       int(c.SyslogUDPBuffer),
		Source:          c.SyslogSource,
	})
	if err != nil {
		return nil, err
	}
	s.stops.push("syslog", a.Stop)
	return nil, nil
}
