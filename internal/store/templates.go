package store

import (
	"context"
	"time"
)

// TemplateStore holds the log templates that the template stage mines
// (events.log_templates) and the hosts each was seen on
// (events.log_template_hosts). The stage is the only writer: it allocates
// the ids and writes absolute counts.
type TemplateStore interface {
	// PutTemplates inserts the templates or, for an id stored already,
	// replaces its text, count, folded_into and state, keeps the earlier
	// first seen and the later last seen (the example of the first insert
	// stays, unless it was empty). UpdatedAt is set to now.
	PutTemplates(ctx context.Context, ts []LogTemplate) error
	// AllTemplates returns every stored template by id, to restore the
	// miner at start.
	AllTemplates(ctx context.Context) ([]LogTemplate, error)
	// Templates lists the templates q selects, most recently seen first
	// (then by id, descending).
	Templates(ctx context.Context, q TemplateQuery) ([]LogTemplate, error)
	// AddTemplateHosts records that each template was seen on its host,
	// at FirstSeen, and returns the pairs that were not recorded before,
	// in no particular order. A pair given twice counts once.
	AddTemplateHosts(ctx context.Context, pairs []TemplateHost) ([]TemplateHost, error)
	// HostsFirstSeen returns, for each of hosts that has a recorded
	// template, when its first template was seen; hosts with none are
	// absent.
	HostsFirstSeen(ctx context.Context, hosts []string) (map[string]time.Time, error)
}

// LogTemplate is a row of events.log_templates.
type LogTemplate struct {
	ID   int64
	Text string
	// Example is the first message of the template (cut to
	// MaxTemplateExample bytes); it routes the template through the
	// miner's tree at restore.
	Example string
	// FoldedInto is the template this one was folded into (its messages
	// count there from then on); 0 for a live template.
	FoldedInto int64
	// State is the miner's form of the template (logtmpl.Saved's tokens
	// and glue), opaque to the store.
	State     []byte
	Count     int64
	FirstSeen time.Time
	LastSeen  time.Time
	UpdatedAt time.Time
}

// MaxTemplateExample bounds the stored example of a template, in bytes;
// MaxTemplateText bounds its text.
const (
	MaxTemplateExample = 2048
	MaxTemplateText    = 4096
)

// TemplateQuery selects templates. The zero value selects the first
// DefaultTemplateLimit templates.
type TemplateQuery struct {
	// Host keeps the templates seen on this host.
	Host string
	// Limit bounds the answer: 1..1000, 0 means 100.
	Limit int
	// Before is the pagination cursor: only templates ordered strictly
	// after (BeforeLastSeen, BeforeID), that is seen last earlier, or at
	// the same time with a smaller id. Zero: from the start.
	BeforeLastSeen time.Time
	BeforeID       int64
}

// PageSize is q.Limit within 1..1000, 100 when unset.
func (q TemplateQuery) PageSize() int {
	if q.Limit <= 0 {
		return 100
	}
	return min(q.Limit, 1000)
}

// TemplateHost is a row of events.log_template_hosts: template
// TemplateID was first seen on Host at FirstSeen.
type TemplateHost struct {
	TemplateID int64
	Host       string
	FirstSeen  time.Time
}
