package server

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/ingest/email"
)

// startSMTP starts the email adapter's SMTP listener when --smtp-addr is
// set.
func (s *Server) startSMTP(context.Context) ([]api.Route, error) {
	c := s.cfg
	if c.SMTPAddr == "" {
		return nil, nil
	}
	opts := email.Options{
		Addr:     c.SMTPAddr,
		Domain:   c.SMTPDomain,
		MaxBytes: int64(c.SMTPMaxBytes),
		MaxConns: c.SMTPMaxConns,
		Source:   c.SMTPSource,
	}
	if c.SMTPTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.SMTPTLSCert, c.SMTPTLSKey)
		if err != nil {
			return nil, fmt.Errorf("smtp-tls-cert: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var err error
	if opts.Recipients, err = email.ParseRecipients(c.SMTPRecipients); err != nil {
		return nil, err
	}
	if c.SMTPAuthFile != "" {
		if opts.Users, err = email.LoadUsers(c.SMTPAuthFile); err != nil {
			return nil, err
		}
	}
	if opts.Rules, err = email.LoadRules(c.SMTPRules); err != nil {
		return nil, fmt.Errorf("smtp-rules: %w", err)
	}
	srv, err := email.Start(s.ingestEnv("email"), opts)
	if err != nil {
		return nil, err
	}
	s.stops.push("smtp listener", srv.Stop)
	return nil, nil
}
