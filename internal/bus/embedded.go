package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded starts a NATS server with JetStream in the process, its file
// store in opts.DataDir, and SyncAlways: every write to the store is fsynced
// before the publish is acknowledged.
func startEmbedded(opts Options, log *slog.Logger) (*server.Server, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("bus: DataDir is required for the embedded NATS server")
	}
	if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("bus: create data dir: %w", err)
	}
	sopts := &server.Options{
		ServerName: "reflex",
		JetStream:  true,
		StoreDir:   opts.DataDir,
		// SyncAlways makes the file store fsync each message block write
		// before the stream answers the publish: an acknowledged message
		// survives kill -9 and power loss. Without it the server syncs
		// every SyncInterval (2 minutes by default) and acknowledges
		// before the data is on disk.
		SyncAlways: true,
		NoSigs:     true,
		DontListen: true,
		MaxPayload: opts.MaxPayload,
	}
	if opts.ListenAddr != "" {
		if opts.Token == "" {
			return nil, fmt.Errorf("bus: a token is required to listen for NATS clients on %s", opts.ListenAddr)
		}
		sopts.Authorization = opts.Token
		host, port, err := net.SplitHostPort(opts.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("bus: listen address %q: %w", opts.ListenAddr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("bus: listen address %q: bad port", opts.ListenAddr)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		sopts.DontListen = false
		sopts.Host = host
		sopts.Port = p
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded NATS server: %w", err)
	}
	sl := log.With("component", "nats-server")
	srv.SetLoggerV2(&serverLogger{log: sl}, sl.Enabled(context.Background(), slog.LevelDebug), false, false)
	srv.Start()
	if !srv.ReadyForConnections(opts.ConnectTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded NATS server not ready after %s", opts.ConnectTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded NATS server started without JetStream")
	}
	// Check that the option took: the server's JetStream configuration is
	// what each stream's file store copies its sync setting from.
	if cfg := srv.JetStreamConfig(); cfg == nil || !cfg.SyncAlways {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded NATS server is not syncing every write")
	}
	return srv, nil
}

// serverLogger adapts slog to the NATS server's Logger. The server's
// notices (its start banner among them) go to debug level.
type serverLogger struct{ log *slog.Logger }

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

var _ server.Logger = (*serverLogger)(nil)
