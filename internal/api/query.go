package api

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/history"
	"github.com/reflex-ops/reflex/internal/store"
)

// Limits of the query parameters.
const (
	defaultLimit   = 100
	maxLimit       = 1000
	defaultWindow  = 24 * time.Hour
	maxWindow      = 400 * 24 * time.Hour // also the largest analytics timerange
	maxFilterLen   = 255
	maxTextLen     = 200
	recentlyWindow = 5 * time.Minute // an unknown id younger than this may still be processing
)

// EventList is the answer of GET /api/v1/events.
type EventList struct {
	Events []event.Event `json:"events"`
	// NextCursor, when present, fetches the next (older) page: repeat the
	// request with the same filters and cursor=NextCursor.
	NextCursor string `json:"next_cursor,omitempty"`
	Count      int    `json:"count"`
	// Unreadable lists the ids of events of this page that are stored but
	// cannot be read back (store.ErrUnreadable); they are left out of
	// Events. Omitted when none.
	Unreadable []int64 `json:"unreadable,omitempty"`
}

// EventDetail is the answer of GET /api/v1/events/{id}: the event, and with
// ?include=raw the raw event of the requested id.
type EventDetail struct {
	event.Event
	RawEvent *event.Raw `json:"raw_event,omitempty"`
}

// MarshalJSON writes the event's fields (event.Event's own MarshalJSON,
// which would otherwise stand for the whole struct), then raw_event.
func (d EventDetail) MarshalJSON() ([]byte, error) {
	b, err := d.Event.MarshalJSON()
	if err != nil || d.RawEvent == nil {
		return b, err
	}
	// Unescaped, as the event: the caller's encoder decides.
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d.RawEvent); err != nil {
		return nil, err
	}
	b = append(b[:len(b)-1], `,"raw_event":`...) // b ends with the event's '}'
	b = append(b, bytes.TrimSuffix(raw.Bytes(), []byte("\n"))...)
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *EventDetail) UnmarshalJSON(b []byte) error {
	if err := d.Event.UnmarshalJSON(b); err != nil {
		return err
	}
	var raw struct {
		RawEvent *event.Raw `json:"raw_event"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	d.RawEvent = raw.RawEvent
	return nil
}

// CorrelationList is the answer of GET /api/v1/events/{id}/correlations.
type CorrelationList struct {
	EventID      int64               `json:"event_id"`
	Correlations []event.Correlation `json:"correlations"`
}

// Analytics is the answer of GET /api/v1/events/analytics.
// Interval, Overall and Series are there with interval=: the counts of
// every event and of the limit largest groups of GroupBy per bucket, each
// with its trend; Top with top=.
type Analytics struct {
	Timerange string           `json:"timerange"`
	GroupBy   string           `json:"groupby"`
	Since     time.Time        `json:"since"`
	Until     time.Time        `json:"until"`
	Total     int64            `json:"total"`
	Buckets   []store.Bucket   `json:"buckets"`
	Interval  string           `json:"interval,omitempty"`
	Overall   *history.Series  `json:"overall,omitempty"`
	Series    []history.Series `json:"series,omitempty"`
	Top       *TopList         `json:"top,omitempty"`
}

// listEvents serves GET /api/v1/events.
func (s *eventsAPI) listEvents(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	q, fe := parseEventQuery(v, s.now())
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	page, err := s.store.Events(r.Context(), q)
	if err != nil {
		s.unavailable(w, r, err, "list events")
		return
	}
	out := EventList{Events: page.Events, Count: len(page.Events), Unreadable: page.Unreadable}
	if out.Events == nil {
		out.Events = []event.Event{}
	}
	if page.More && page.NextID != 0 {
		out.NextCursor = encodeCursor(page.NextTime, page.NextID)
	}
	writeJSON(w, http.StatusOK, out)
}

var eventParams = []string{"severity", "hours", "since", "until", "host", "service", "event_type", "source", "correlation_id", "q", "limit", "cursor"}

// parseEventQuery validates the query parameters of GET /api/v1/events.
func parseEventQuery(v url.Values, now time.Time) (store.EventQuery, *fieldError) {
	var q store.EventQuery
	if fe := checkParams(v, eventParams, "severity"); fe != nil {
		return q, fe
	}
	if vals, ok := v["severity"]; ok {
		sevs, fe := parseSeverities(vals)
		if fe != nil {
			return q, fe
		}
		q.Severities = sevs
	}

	if s := v.Get("until"); s != "" || v.Has("until") {
		t, fe := parseTime("until", s)
		if fe != nil {
			return q, fe
		}
		q.Until = t
	}
	if s := v.Get("since"); s != "" || v.Has("since") {
		t, fe := parseTime("since", s)
		if fe != nil {
			return q, fe
		}
		q.Since = t
	}
	end := now
	if !q.Until.IsZero() {
		end = q.Until
	}
	if v.Has("hours") {
		if v.Has("since") {
			return q, badField("hours", "give hours or since, not both")
		}
		h, err := strconv.ParseFloat(v.Get("hours"), 64)
		if err != nil || math.IsNaN(h) || math.IsInf(h, 0) || h <= 0 {
			return q, badField("hours", "must be a positive number of hours, such as 24 or 0.5")
		}
		if h > maxWindow.Hours() {
			return q, badField("hours", "at most %g hours (400 days); use since for older events", maxWindow.Hours())
		}
		q.Since = end.Add(-time.Duration(h * float64(time.Hour)))
	} else if q.Since.IsZero() {
		q.Since = end.Add(-defaultWindow)
	}
	if !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, badField("since", "must be before until")
	}

	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{
		{"host", &q.Host, maxFilterLen},
		{"service", &q.Service, maxFilterLen},
		{"event_type", &q.EventType, maxFilterLen},
		{"source", &q.Source, maxFilterLen},
		{"correlation_id", &q.CorrelationID, maxFilterLen},
		{"q", &q.Text, maxTextLen},
	} {
		s := strings.TrimSpace(v.Get(f.name))
		if len(s) > f.max {
			return q, badField(f.name, "longer than %d bytes", f.max)
		}
		*f.dst = s
	}

	q.Limit = defaultLimit
	if v.Has("limit") {
		n, err := strconv.Atoi(v.Get("limit"))
		if err != nil || n < 1 || n > maxLimit {
			return q, badField("limit", "must be an integer from 1 to %d", maxLimit)
		}
		q.Limit = n
	}
	if v.Has("cursor") {
		t, id, err := decodeCursor(v.Get("cursor"))
		if err != nil {
			return q, badField("cursor", "invalid: pass next_cursor from the previous page unchanged")
		}
		q.BeforeTime, q.BeforeID = t, id
	}
	return q, nil
}

// checkParams rejects unknown query parameters and repeated ones, except
// those in multi.
func checkParams(v url.Values, known []string, multi ...string) *fieldError {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "" {
			return &fieldError{msg: "a query parameter has an empty name"}
		}
		if !slices.Contains(known, k) {
			return badField(clip(k, 40), "unknown query parameter; known: %s", strings.Join(known, ", "))
		}
		if len(v[k]) > 1 && !slices.Contains(multi, k) {
			return badField(k, "given more than once")
		}
	}
	return nil
}

// parseSeverities reads severity=critical,high or severity=critical&severity=high.
func parseSeverities(vals []string) ([]event.Severity, *fieldError) {
	var out []event.Severity
	for _, val := range vals {
		for _, part := range strings.Split(val, ",") {
			part = strings.ToLower(strings.TrimSpace(part))
			if part == "" {
				continue
			}
			sev := event.Severity(part)
			if !sev.Valid() {
				return nil, badField("severity", "unknown severity %q: want critical, high, medium, low or info (comma-separated or repeated)", clip(part, 40))
			}
			if !slices.Contains(out, sev) {
				out = append(out, sev)
			}
		}
	}
	if len(out) == 0 {
		return nil, badField("severity", "empty: want critical, high, medium, low or info (comma-separated or repeated)")
	}
	return out, nil
}

func parseTime(field, s string) (time.Time, *fieldError) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, badField(field, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
	}
	// The zero time means "not given" to the store: a time before the
	// epoch (0001-01-01T00:00:00Z included) is refused, not dropped.
	if t.Before(minQueryTime) {
		return time.Time{}, badField(field, "%s is before %s", clip(strings.TrimSpace(s), 40), minQueryTime.Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// noParams rejects any query parameter, and an undecodable query string.
func noParams(r *http.Request) *fieldError {
	v, fe := queryValues(r)
	if fe != nil {
		return fe
	}
	return checkParams(v, nil)
}

// minQueryTime is the earliest since or until a query may give.
var minQueryTime = time.Unix(0, 0).UTC()

// queryValues parses the request's query string strictly: where
// r.URL.Query() silently drops a pair it cannot decode (q=%ZZ), and with it
// a filter, this is a 400 naming the parameter.
func queryValues(r *http.Request) (url.Values, *fieldError) {
	v := make(url.Values)
	for rest := r.URL.RawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return nil, &fieldError{msg: "the query string holds a ';': separate parameters with '&'"}
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, &fieldError{msg: fmt.Sprintf("query parameter name %q is not valid URL encoding", clip(rawKey, 40))}
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, badField(clip(key, 40), "%q is not valid URL encoding (escape %% as %%25)", clip(rawVal, 40))
		}
		v[key] = append(v[key], val)
	}
	return v, nil
}

// The cursor is opaque to clients: base64url (no padding) of a version
// byte, the occurred_at of the last event of the page (seconds and
// nanoseconds since the Unix epoch) and its id.
const (
	cursorVersion = 1
	cursorLen     = 1 + 8 + 4 + 8
)

func encodeCursor(t time.Time, id int64) string {
	var b [cursorLen]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(t.Unix()))        //nolint:gosec // two's complement round trip
	binary.BigEndian.PutUint32(b[9:13], uint32(t.Nanosecond())) //nolint:gosec // 0 <= ns < 1e9
	binary.BigEndian.PutUint64(b[13:21], uint64(id))            //nolint:gosec // two's complement round trip
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (time.Time, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, 0, err
	}
	if len(b) != cursorLen || b[0] != cursorVersion {
		return time.Time{}, 0, errors.New("bad cursor")
	}
	sec := int64(binary.BigEndian.Uint64(b[1:9])) //nolint:gosec // two's complement round trip
	nsec := binary.BigEndian.Uint32(b[9:13])
	id := int64(binary.BigEndian.Uint64(b[13:21])) //nolint:gosec // checked positive below
	if nsec >= 1e9 || id <= 0 {
		return time.Time{}, 0, errors.New("bad cursor")
	}
	return time.Unix(sec, int64(nsec)).UTC(), id, nil
}

// pathID reads the {id} path segment: a positive integer.
func pathID(r *http.Request) (int64, *fieldError) { return pathIDOf(r, "event") }

// pathIDOf reads the {id} of the path, the id of a what.
func pathIDOf(r *http.Request, what string) (int64, *fieldError) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badField("id", "must be a positive integer %s id, got %q", what, clip(s, 40))
	}
	return id, nil
}

// getEvent serves GET /api/v1/events/{id}.
func (s *eventsAPI) getEvent(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if r.PathValue("id") == "webhook" {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on /api/v1/events/webhook; allowed: POST", "")
		return
	}
	id, fe := pathID(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"include"})
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	includeRaw := false
	if v.Has("include") {
		for _, part := range strings.Split(v.Get("include"), ",") {
			switch strings.TrimSpace(part) {
			case "raw":
				includeRaw = true
			case "":
			default:
				writeFieldError(w, badField("include", "unknown value %q: want raw", clip(part, 40)))
				return
			}
		}
	}

	e, ok := s.findEvent(w, r, id)
	if !ok {
		return
	}
	out := EventDetail{Event: *e}
	if includeRaw {
		raw, err := s.store.RawEvent(r.Context(), id)
		switch {
		case err == nil:
			out.RawEvent = raw
		case errors.Is(err, store.ErrNotFound):
		default:
			s.unavailable(w, r, err, "read raw event")
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// findEvent returns the processed event of id, or answers 404 (saying why
// when it can), 422 (stored but unreadable) or 503 and returns false.
func (s *eventsAPI) findEvent(w http.ResponseWriter, r *http.Request, id int64) (*event.Event, bool) {
	e, err := s.store.Event(r.Context(), id)
	if err == nil {
		return e, true
	}
	s.eventError(w, r, id, err)
	return nil, false
}

// eventError answers the error of reading event id.
func (s *eventsAPI) eventError(w http.ResponseWriter, r *http.Request, id int64, err error) {
	if errors.Is(err, store.ErrUnreadable) {
		unreadable(w, id)
		return
	}
	if !errors.Is(err, store.ErrNotFound) {
		s.unavailable(w, r, err, "read event")
		return
	}
	msg := fmt.Sprintf("event %d not found", id)
	raw, rerr := s.store.RawEvent(r.Context(), id)
	switch {
	case rerr == nil && len(raw.ProcessingErrors) > 0:
		msg = fmt.Sprintf("event %d was received but not kept: %s", id, strings.Join(raw.ProcessingErrors, "; "))
	case rerr == nil:
	default:
		if age := s.now().Sub(event.TimeOfID(id)); age >= 0 && age < recentlyWindow {
			msg = fmt.Sprintf("event %d not found: if it was accepted just now it may still be processing; retry shortly", id)
		}
	}
	writeError(w, http.StatusNotFound, msg, "")
}

// correlations serves GET /api/v1/events/{id}/correlations.
func (s *eventsAPI) correlations(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := pathID(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	eventID := id
	e, err := s.store.Event(r.Context(), id)
	switch {
	case err == nil:
		eventID = e.ID
	case errors.Is(err, store.ErrUnreadable):
		// Its correlations do not need its data: answer them when id is
		// the unreadable event itself.
	default:
		s.eventError(w, r, id, err)
		return
	}
	rows, err := s.store.Correlations(r.Context(), eventID)
	if errors.Is(err, store.ErrNotFound) {
		unreadable(w, id) // a raw id folded into an unreadable event
		return
	}
	if err != nil {
		s.unavailable(w, r, err, "list correlations")
		return
	}
	writeJSON(w, http.StatusOK, CorrelationList{EventID: eventID, Correlations: nonNil(rows)})
}

func nonNil(rows []event.Correlation) []event.Correlation {
	if rows == nil {
		return []event.Correlation{}
	}
	return rows
}

// unreadable answers 422 for an event that is stored but cannot be read
// back (store.ErrUnreadable): retrying will not help, and the rest of the
// service works, so neither 503 nor 500.
func unreadable(w http.ResponseWriter, id int64) {
	writeError(w, http.StatusUnprocessableEntity,
		fmt.Sprintf("event %d is stored but cannot be read back (its data does not decode); lists skip it and report it under \"unreadable\"", id), "id")
}

var groupBys = []store.GroupBy{store.BySeverity, store.ByHost, store.ByService, store.ByEventType, store.BySource, store.ByHour}

// analytics serves GET /api/v1/events/analytics.
func (s *eventsAPI) analytics(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		known := []string{"timerange", "groupby"}
		if s.history != nil {
			known = append(known, "since", "until", "interval", "top", "limit")
		}
		fe = checkParams(v, known)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	tr, since, until, fe := parseRange(v, s.now(), true)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	gb := store.BySeverity
	if v.Has("groupby") {
		gb = store.GroupBy(strings.TrimSpace(v.Get("groupby")))
		if !slices.Contains(groupBys, gb) {
			writeFieldError(w, badField("groupby", "unknown %q: want severity, host, service, event_type, source or hour", clip(string(gb), 40)))
			return
		}
	}
	hp, fe := parseHistoryParams(v, gb, since, until)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	q := store.AnalyticsQuery{Since: since, Until: until, GroupBy: gb}
	buckets, err := s.store.Analytics(r.Context(), q)
	if err != nil {
		s.unavailable(w, r, err, "analytics")
		return
	}
	out := Analytics{Timerange: tr, GroupBy: string(gb), Since: q.Since, Until: q.Until, Buckets: buckets}
	if out.Buckets == nil {
		out.Buckets = []store.Bucket{}
	}
	for _, b := range buckets {
		out.Total += b.Count
	}
	if !s.analyticsHistory(w, r, hp, &out) {
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// parseTimerange reads a Go duration with an optional leading number of
// days: "1h", "90m", "24h", "7d", "1d12h". It must be positive and at most
// 400 days.
func parseTimerange(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid %q: want a duration such as 1h, 24h or 7d (units d, h, m, s), at most 400d", clip(s, 40))
	var d time.Duration
	rest := s
	i := strings.IndexByte(s, 'd')
	if i >= 0 {
		days, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || math.IsNaN(days) || math.IsInf(days, 0) || days < 0 || days > maxWindow.Hours()/24 {
			return 0, bad
		}
		d = time.Duration(days * float64(24*time.Hour))
		rest = s[i+1:]
	}
	if rest != "" {
		if i >= 0 && (rest[0] == '-' || rest[0] == '+') {
			return 0, bad
		}
		more, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		d += more
	}
	if d <= 0 || d > maxWindow {
		return 0, bad
	}
	return d, nil
}
