package config

// validateAdapters checks the adapters' settings that need no file read:
// the files themselves are read, and their errors reported, when the
// adapter starts.
func (c Config) validateAdapters(bad func(field, format string, args ...any)) {
	if c.SyslogTLS != "" && (c.SyslogTLSCert == "" || c.SyslogTLSKey == "") {
		bad("syslog-tls", "needs syslog-tls-cert and syslog-tls-key")
	}
	if (c.SMTPTLSCert == "") != (c.SMTPTLSKey == "") {
		bad("smtp-tls-cert", "smtp-tls-cert and smtp-tls-key go together")
	}
	if c.SyslogMaxMessage < 480 {
		bad("syslog-max-message-bytes", "%d is below 480, the least RFC 5424 lets a receiver take", c.SyslogMaxMessage)
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"syslog-max-connections", int64(c.SyslogMaxConns)},
		{"syslog-idle-timeout", int64(c.SyslogIdleTimeout)},
		{"smtp-max-bytes", int64(c.SMTPMaxBytes)},
		{"smtp-max-connections", int64(c.SMTPMaxConns)},
		{"metric-max-series", int64(c.MetricMaxSeries)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.name, "must be above 0")
		}
	}
	if c.SyslogUDPBuffer < 0 {
		bad("syslog-udp-buffer", "must not be negative")
	}
	for name, v := range map[string]string{"syslog-source": c.SyslogSource, "snmp-source": c.SNMPSource, "smtp-source": c.SMTPSource} {
		if v == "" || len(v) > 100 {
			bad(name, "must be 1 to 100 characters")
		}
	}
}
