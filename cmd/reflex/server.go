package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/datadir"
	"github.com/reflex-ops/reflex/internal/server"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	hopts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

func runServer(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, fl, err := config.Load("server", args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	if fl.CheckOnly {
		fmt.Fprintln(stderr, "configuration is valid")
		return nil
	}
	log := newLogger(cfg, stderr)
	srv, err := server.New(server.Options{Config: cfg, Logger: log, Stderr: stderr})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	log.Info("reflex is ready", "events_addr", addrString(srv.EventsAddr()), "autonomous_addr", addrString(srv.AutonomousAddr()))
	<-ctx.Done()
	log.Info("shutting down", "timeout", time.Duration(cfg.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownGrace))
	defer cancel()
	return srv.Shutdown(sctx)
}

func addrString(a interface{ String() string }) string {
	if a == nil {
		return "-"
	}
	return a.String()
}

func runMigrate(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, _, err := config.Load("migrate", args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if cfg.DatabaseURL == "" {
		// SQLite lives in the data dir: not while a server runs there.
		lock, err := datadir.Acquire(cfg.DataDir, time.Now)
		if err != nil {
			return err
		}
		defer func() { _ = lock.Unlock() }()
	}
	st, err := server.OpenStore(ctx, cfg, log, time.Now)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "migrations applied")
	return st.Close()
}
