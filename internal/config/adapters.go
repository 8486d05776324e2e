package config

// adapterExamples ends reflex server --help: one working line per adapter
// and the program it is tested against (docs/adapters.md has the rest).
const adapterExamples = `
Adapters (off unless configured; docs/adapters.md):
  syslog        --syslog-tcp :5514 --syslog-udp :5514
                rsyslog.conf: *.* action(type="omfwd" target="reflex.example" port="5514" protocol="tcp" TCP_Framing="octet-counted")
                logger --rfc5424 -T -n 127.0.0.1 -P 5514 "disk full on /var"
  SNMP traps    --snmp-addr :1162 --snmp-config snmp.yml
                snmptrap -v 2c -c public 127.0.0.1:1162 '' 1.3.6.1.6.3.1.1.5.3 1.3.6.1.2.1.2.2.1.1.2 i 2
  email         --smtp-addr :2525 [--smtp-tls-cert cert.pem --smtp-tls-key key.pem]
                swaks --server 127.0.0.1:2525 --to alerts@reflex.example --header "Subject: [CRITICAL] Host: web-01 down"
  Alertmanager  POST /api/v1/events/alertmanager; alertmanager.yml receiver:
                webhook_configs: [{url: http://reflex:3009/api/v1/events/alertmanager, http_config: {authorization: {credentials_file: /etc/alertmanager/reflex.key}}}]
  Grafana       POST /api/v1/events/grafana (a webhook contact point, Authorization header "Bearer KEY")
  remote write  POST /api/v1/metrics/write; prometheus.yml:
                remote_write: [{url: http://reflex:3009/api/v1/metrics/write, authorization: {credentials_file: /etc/prometheus/reflex.key}}]
                with --metric-rules rules.yml (metric rules such as node_load1 > 4 for 5m, and PromQL checks)
  InfluxDB      POST /api/v1/metrics/influx, POST /write (line protocol; Telegraf's outputs.influxdb_v2 with token = KEY)
  databases     --db-checks checks.yml (PostgreSQL and MySQL/MariaDB checks, PostgreSQL LISTEN/NOTIFY)
`

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
