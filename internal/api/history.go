package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/history"
	"github.com/reflex-ops/reflex/internal/store"
)

// HistoryStore is the part of store.Store that the time buckets, top N and
// trends read (history.Store).
type HistoryStore = history.Store

// ContextAnalyzer answers GET /api/v1/context (*contextual.Analyzer).
type ContextAnalyzer interface {
	Context(ctx context.Context, host string, now time.Time) (contextual.Context, error)
}

var _ ContextAnalyzer = (*contextual.Analyzer)(nil)

// Bounds of the history parameters.
const (
	defaultTopLimit    = 10
	defaultTrendsLimit = 20
)

// TopList is the top N of GET /api/v1/events/analytics?top=: the
// dimension and its noisiest keys, each with its points and trend when an
// interval is given.
type TopList struct {
	By      string           `json:"by"`
	Entries []history.Series `json:"entries"`
}

// Trends is the answer of GET /api/v1/events/trends.
type Trends struct {
	GroupBy   string `json:"groupby"`
	Timerange string `json:"timerange"`
	history.Comparison
	Count int `json:"count"`
}

// The values of top= and the dimension of each.
var topDims = map[string]store.Dimension{
	"hosts": store.DimHost, "services": store.DimService, "event_types": store.DimEventType,
	"severities": store.DimSeverity, "sources": store.DimSource, "templates": store.DimTemplate, "rules": store.DimRule,
}

const topNames = "hosts, services, event_types, severities, sources, templates or rules"

// The groupby values of trends and their dimensions.
var trendDims = map[string]store.Dimension{
	"host": store.DimHost, "service": store.DimService, "event_type": store.DimEventType,
	"severity": store.DimSeverity, "source": store.DimSource,
}

// parseInterval reads interval=5m|1h|1d.
func parseInterval(v url.Values) (string, time.Duration, *fieldError) {
	s := strings.TrimSpace(v.Get("interval"))
	for _, iv := range history.Intervals {
		if s == iv.Name {
			return iv.Name, iv.D, nil
		}
	}
	return "", 0, badField("interval", "unknown %q: want 5m, 1h or 1d", clip(s, 40))
}

// parseLimit reads limit=N within 1..most, def when absent.
func parseLimit(v url.Values, def, most int) (int, *fieldError) {
	if !v.Has("limit") {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v.Get("limit")))
	if err != nil || n < 1 || n > most {
		return 0, badField("limit", "must be an integer from 1 to %d", most)
	}
	return n, nil
}

// parseRange reads timerange, since and until: [since, until), until
// defaulting to now and since to until - timerange (timerange defaulting
// to 24h). It returns the timerange to answer: as given, or the length of
// since..until.
func parseRange(v url.Values, now time.Time, withSince bool) (string, time.Time, time.Time, *fieldError) {
	until := now.UTC()
	if v.Has("until") {
		t, fe := parseTime("until", v.Get("until"))
		if fe != nil {
			return "", time.Time{}, time.Time{}, fe
		}
		until = t
	}
	if withSince && v.Has("since") {
		if v.Has("timerange") {
			return "", time.Time{}, time.Time{}, badField("timerange", "give timerange or since, not both")
		}
		since, fe := parseTime("since", v.Get("since"))
		if fe != nil {
			return "", time.Time{}, time.Time{}, fe
		}
		if !since.Before(until) {
			return "", time.Time{}, time.Time{}, badField("since", "must be before until")
		}
		if until.Sub(since) > maxWindow {
			return "", time.Time{}, time.Time{}, badField("since", "more than 400 days before until")
		}
		return history.Short(until.Sub(since)), since, until, nil
	}
	tr := "24h"
	if v.Has("timerange") {
		tr = strings.TrimSpace(v.Get("timerange"))
	}
	d, err := parseTimerange(tr)
	if err != nil {
		return "", time.Time{}, time.Time{}, badField("timerange", "%v", err)
	}
	return tr, until.Add(-d), until, nil
}

// historyError answers an error of the history analyzer: 400 naming
// interval for too many buckets, else 503.
func (s *eventsAPI) historyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, history.ErrTooManyBuckets) {
		writeFieldError(w, badField("interval", "%s: use a longer interval or a shorter range", strings.TrimPrefix(err.Error(), "history: ")))
		return
	}
	s.unavailable(w, r, err, "history")
}

// historyParams are interval=, top= and limit= of the analytics.
type historyParams struct {
	limit  int
	ivName string
	iv     time.Duration
	top    string
	dim    store.Dimension
}

// parseHistoryParams checks interval=, top= and limit= against the range
// and groupby of the analytics; nil when none is given.
func parseHistoryParams(v url.Values, gb store.GroupBy, since, until time.Time) (*historyParams, *fieldError) {
	if !v.Has("interval") && !v.Has("top") {
		if v.Has("limit") {
			return nil, badField("limit", "applies to top and interval, and neither is given")
		}
		return nil, nil
	}
	hp := &historyParams{}
	var fe *fieldError
	if hp.limit, fe = parseLimit(v, defaultTopLimit, history.MaxSeries); fe != nil {
		return nil, fe
	}
	if v.Has("interval") {
		if hp.ivName, hp.iv, fe = parseInterval(v); fe != nil {
			return nil, fe
		}
		if gb == store.ByHour {
			return nil, badField("interval", "groupby=hour counts by hour already; give interval with groupby severity, host, service, event_type or source")
		}
		if err := history.CheckBuckets(since, until, hp.iv); err != nil {
			return nil, badField("interval", "%s: use a longer interval or a shorter range", strings.TrimPrefix(err.Error(), "history: "))
		}
	}
	if v.Has("top") {
		hp.top = strings.TrimSpace(v.Get("top"))
		var ok bool
		if hp.dim, ok = topDims[hp.top]; !ok {
			return nil, badField("top", "unknown %q: want %s", clip(hp.top, 40), topNames)
		}
	}
	return hp, nil
}

// analyticsHistory adds to out what hp asks for. It reports false when it
// answered an error.
func (s *eventsAPI) analyticsHistory(w http.ResponseWriter, r *http.Request, hp *historyParams, out *Analytics) bool {
	if hp == nil {
		return true
	}
	ctx := r.Context()
	if hp.iv > 0 {
		out.Interval = hp.ivName
		all, err := s.history.Series(ctx, history.SeriesRequest{Since: out.Since, Until: out.Until, Interval: hp.iv, By: store.DimAll, Keys: []string{""}})
		if err != nil {
			s.historyError(w, r, err)
			return false
		}
		out.Overall = &all[0]
		keys := []string{}
		for _, b := range out.Buckets {
			if len(keys) == hp.limit {
				break
			}
			keys = append(keys, b.Key)
		}
		if out.Series, err = s.history.Series(ctx, history.SeriesRequest{Since: out.Since, Until: out.Until, Interval: hp.iv, By: store.Dimension(out.GroupBy), Keys: keys}); err != nil {
			s.historyError(w, r, err)
			return false
		}
	}
	if hp.dim != "" {
		entries, err := s.history.Top(ctx, history.TopRequest{Since: out.Since, Until: out.Until, By: hp.dim, Limit: hp.limit, Interval: hp.iv})
		if err != nil {
			s.historyError(w, r, err)
			return false
		}
		out.Top = &TopList{By: hp.top, Entries: entries}
	}
	return true
}

// trends serves GET /api/v1/events/trends.
func (s *eventsAPI) trends(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"groupby", "timerange", "until", "limit", "interval"})
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	gb := "service"
	if v.Has("groupby") {
		gb = strings.TrimSpace(v.Get("groupby"))
	}
	dim, ok := trendDims[gb]
	if !ok {
		writeFieldError(w, badField("groupby", "unknown %q: want host, service, event_type, severity or source", clip(gb, 40)))
		return
	}
	tr, since, until, fe := parseRange(v, s.now(), false)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	limit, fe := parseLimit(v, defaultTrendsLimit, history.MaxCompareLimit)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	req := history.CompareRequest{Until: until, Range: until.Sub(since), By: dim, Limit: limit}
	if v.Has("interval") {
		if _, req.Interval, fe = parseInterval(v); fe != nil {
			writeFieldError(w, fe)
			return
		}
	}
	c, err := s.history.Compare(r.Context(), req)
	if err != nil {
		s.historyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Trends{GroupBy: gb, Timerange: tr, Comparison: c, Count: len(c.Groups)})
}

// context serves GET /api/v1/context?host=.
func (s *eventsAPI) context(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"host"})
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	host := strings.TrimSpace(v.Get("host"))
	switch {
	case host == "":
		writeFieldError(w, badField("host", "required: the host to describe"))
		return
	case len(host) > maxFilterLen:
		writeFieldError(w, badField("host", "longer than %d bytes", maxFilterLen))
		return
	}
	c, err := s.contextual.Context(r.Context(), host, s.now())
	if err != nil {
		s.unavailable(w, r, err, "context")
		return
	}
	writeJSON(w, http.StatusOK, c)
}
