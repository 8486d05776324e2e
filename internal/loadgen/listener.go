package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Message is one generated event of a listener mode, in no protocol: its
// Sender writes it as a syslog line, an SNMP trap or a mail.
type Message struct {
	Seq      int64  // unique in the run, from 1
	Host     string // one of Options.Hosts
	Source   string // one of Options.Sources
	Severity string // critical, high, medium, low or info
	Text     string // a log-like line with the host and Seq in it
	Time     time.Time
}

// Sender sends Messages to one listener over one connection (a TCP
// stream, a UDP socket, an SMTP session). It is used by one goroutine.
type Sender interface {
	Send(ctx context.Context, m Message) error
	Close() error
}

// Dialer opens a Sender to the listener at target (host:port).
type Dialer func(ctx context.Context, target string) (Sender, error)

// Listener modes (Options.Mode), by name: each mode's Dialer is in a file
// of its own (syslog.go, snmp.go, smtp.go).
var listenerModes = map[string]Dialer{
	"snmp":       dialSNMP,
	"smtp":       dialSMTP,
	"syslog-tcp": dialSyslogTCP,
	"syslog-udp": dialSyslogUDP,
}

// Modes lists the modes Options.Mode takes: webhook, then the listener
// modes.
func Modes() []string {
	names := []string{"webhook"}
	for n := range listenerModes {
		names = append(names, n)
	}
	slices.Sort(names[1:])
	return names
}

var severities = []string{"critical", "high", "medium", "low", "info"}

// runListener is Run for a listener mode: Concurrency senders send
// Messages (at Rate in all, or as fast as they go), then it waits for the
// server to process what its adapter accepted. Sent counts the messages
// written without error; Accepted is the adapter's
// reflex_ingest_accepted_total over the run, Rejected and Dropped its
// rejected and dropped counters.
func runListener(ctx context.Context, o Options, dial Dialer) (Result, error) {
	if o.Target == "" {
		return Result{}, fmt.Errorf("loadgen: mode %s needs a target address (host:port)", o.Mode)
	}
	metricsURL := o.URL + "/metrics"
	before, err := scrape(ctx, o.Client, metricsURL)
	if err != nil {
		return Result{}, err
	}
	var lim *rate.Limiter
	if o.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(o.Rate), max(1, int(o.Rate/100)))
	}
	var (
		seq, sent, errs atomic.Int64
		wg              sync.WaitGroup
		dialErr         error
		once            sync.Once
	)
	start := time.Now()
	phase, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-phase.Done():
				return
			case <-t.C:
				if o.Progress != nil {
					el := time.Since(start).Seconds()
					fmt.Fprintf(o.Progress, "%5.0fs sent %d (%.0f/s), errors %d\n", el, sent.Load(), float64(sent.Load())/el, errs.Load())
				}
			}
		}
	}()
	for w := range o.Concurrency {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s, err := dial(phase, o.Target)
			if err != nil {
				once.Do(func() { dialErr = fmt.Errorf("loadgen: %s: connect to %s: %w", o.Mode, o.Target, err) })
				return
			}
			defer func() { _ = s.Close() }()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano()))) //nolint:gosec // load, not secrets
			for phase.Err() == nil {
				if lim != nil && lim.Wait(phase) != nil {
					return
				}
				m := o.message(rng, seq.Add(1))
				if err := s.Send(phase, m); err != nil {
					if phase.Err() != nil {
						return
					}
					errs.Add(1)
					continue
				}
				sent.Add(1)
			}
		}(w)
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(start), Sent: sent.Load(), Errors: errs.Load()}
	cancel()
	<-done
	if dialErr != nil && res.Sent == 0 {
		return res, dialErr
	}

	// Wait for the adapter's accepted events to be processed.
	drainStart := time.Now()
	deadline := drainStart.Add(o.Drain)
	var after snapshot
	for {
		after, err = scrape(ctx, o.Client, metricsURL)
		if err != nil {
			return res, err
		}
		res.Accepted = int64(after.ingestAccepted - before.ingestAccepted)
		settled := res.Accepted+int64(after.ingestRejected-before.ingestRejected)+int64(after.ingestDropped-before.ingestDropped) >= res.Sent
		res.Caught = after.processed-before.processed >= float64(res.Accepted)
		if (settled && res.Caught) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.Rejected = int64(after.ingestRejected - before.ingestRejected)
	res.Dropped = int64(after.ingestDropped - before.ingestDropped)
	res.DrainTime = time.Since(drainStart)
	res.finish(before, after)
	return res, nil
}

// message makes the seq-th message of the run.
func (o *Options) message(rng *rand.Rand, seq int64) Message {
	host := fmt.Sprintf("host-%04d", rng.IntN(o.Hosts))
	sev := severities[1+rng.IntN(len(severities)-1)]
	if rng.Float64() < o.Critical {
		sev = "critical"
	}
	return Message{
		Seq:      seq,
		Host:     host,
		Source:   fmt.Sprintf("loadgen-%02d", rng.IntN(o.Sources)),
		Severity: sev,
		Text:     fmt.Sprintf("%s: connection to %s:%d %s after %dms (seq %d)", strings.ToUpper(sev[:1])+sev[1:], host, 1000+rng.IntN(9000), verbs[rng.IntN(len(verbs))], rng.IntN(5000), seq),
		Time:     time.Now(),
	}
}

var verbs = []string{"failed", "timed out", "was reset", "recovered", "was refused"}
