package server

import (
	"context"
	"fmt"
	"os"

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/ingest/snmp"
)

// startSNMP starts the SNMP trap listener when --snmp-addr is set.
func (s *Server) startSNMP(context.Context) ([]api.Route, error) {
	if s.cfg.SNMPAddr == "" {
		return nil, nil
	}
	settings, err := snmp.LoadConfig(s.cfg.SNMPConfig, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("snmp-config: %w", err)
	}
	l, err := snmp.Listen(snmp.Options{
		Addr:     s.cfg.SNMPAddr,
		Source:   s.cfg.SNMPSource,
		Settings: settings,
		Env:      s.ingestEnv("snmp"),
	})
	if err != nil {
		return nil, err
	}
	s.stops.push("snmp listener", l.Stop)
	return nil, nil
}
