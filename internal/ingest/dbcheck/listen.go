package dbcheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Backoff of a listener's reconnection.
const (
	listenMinBackoff = 500 * time.Millisecond
	listenMaxBackoff = 30 * time.Second
)

// listen keeps a connection to db that LISTENs on the channels of ls,
// and submits each notification, until ctx is done. When the connection
// drops it reconnects, with exponential backoff; notifications sent while
// it was down are lost (PostgreSQL keeps none for a listener that is not
// connected).
func (a *Adapter) listen(ctx context.Context, db *Database, ls []*Listen) {
	byChannel := make(map[string]*Listen, len(ls))
	for _, l := range ls {
		byChannel[l.Channel] = l
	}
	backoff := listenMinBackoff
	down := false
	for {
		err := a.listenOnce(ctx, db, byChannel, func() {
			backoff = listenMinBackoff
			if down {
				a.log.Info("database listener reconnected", "database", db.Name)
				down = false
			}
		})
		if ctx.Err() != nil {
			return
		}
		if !down {
			a.log.Warn("database listener disconnected; reconnecting", "database", db.Name, "err", db.redactor.text(err.Error()))
			down = true
		}
		wait := backoff/2 + rand.N(backoff/2+1) //nolint:gosec // jitter
		backoff = min(backoff*2, listenMaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listenOnce connects, listens and submits notifications until the
// connection fails or ctx is done; connected is called once it listens.
func (a *Adapter) listenOnce(ctx context.Context, db *Database, byChannel map[string]*Listen, connected func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dbcheck: panic in the listener: %v", p)
		}
	}()
	cfg, err := pgx.ParseConfig(db.dsn)
	if err != nil {
		return err
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "reflex-dbcheck-listen"
	}
	cctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(c)
	}()
	for ch := range byChannel {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if l := byChannel[n.Channel]; l != nil {
			a.notify(ctx, l, n)
		}
	}
}

// notify submits notification n of l's channel.
func (a *Adapter) notify(ctx context.Context, l *Listen, n *pgconn.Notification) {
	p := &Payload{
		Kind:      KindNotify,
		Database:  l.Database,
		Driver:    DriverPostgres,
		Host:      l.db.Host,
		Severity:  string(l.severity),
		At:        a.env.Now().UTC(),
		Channel:   n.Channel,
		PID:       n.PID,
		EventType: l.EventType,
		Text:      n.Payload,
	}
	// The lane and the partition are the normalizer's severity and host.
	sev := l.severity
	parsed := ParseNotification(n.Payload)
	if parsed.Severity != "" {
		sev = parsed.Severity
	}
	host := p.Host
	if parsed.Host != "" {
		host = parsed.Host
	}
	a.emit(ctx, p, sev, host)
}
