package cond

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// dataMetadata is the key of event_data under which the webhook keeps its
// payload's metadata (normalize.DataMetadata).
const dataMetadata = "metadata"

// fieldID names what a path reads.
type fieldID uint8

const (
	fEventType fieldID = iota
	fSeverity
	fSource
	fSourceType
	fSourceHost
	fSourceService
	fTitle
	fDescription
	fTags
	fOccurrenceCount
	fPriority
	fOccurredAt
	fCorrelationID
	fMetadata  // event_data.metadata and below
	fEventData // event_data and below
)

// ftype is what Compile knows of a field's values, to check operands.
type ftype uint8

const (
	tString   ftype = iota // a string
	tSeverity              // a severity name, ordered by rank
	tStrings               // a list of strings (tags)
	tNumber                // a number
	tTime                  // a timestamp
	tDynamic               // anything: a path into event_data
)

func (t ftype) String() string {
	switch t {
	case tString:
		return "a string"
	case tSeverity:
		return "a severity"
	case tStrings:
		return "a list of strings"
	case tNumber:
		return "a number"
	case tTime:
		return "a timestamp"
	}
	return "any value"
}

// topFields are the top-level names a path can start with, aliases
// included.
var topFields = map[string]struct {
	id  fieldID
	typ ftype
}{
	"event_type":       {fEventType, tString},
	"severity":         {fSeverity, tSeverity},
	"source":           {fSource, tString},
	"source_type":      {fSourceType, tString},
	"source_host":      {fSourceHost, tString},
	"host":             {fSourceHost, tString},
	"source_service":   {fSourceService, tString},
	"service":          {fSourceService, tString},
	"title":            {fTitle, tString},
	"description":      {fDescription, tString},
	"tags":             {fTags, tStrings},
	"occurrence_count": {fOccurrenceCount, tNumber},
	"priority":         {fPriority, tNumber},
	"occurred_at":      {fOccurredAt, tTime},
	"correlation_id":   {fCorrelationID, tString},
	"metadata":         {fMetadata, tDynamic},
	"event_data":       {fEventData, tDynamic},
}

const unknownField = "unknown field (want event_type, severity, source, source_type, " +
	"source_host or host, source_service or service, title, description, tags, " +
	"occurrence_count, priority, occurred_at, correlation_id, metadata.<path> or event_data.<path>)"

// field is a compiled path: what to read and how to name it.
type field struct {
	id   fieldID
	typ  ftype
	name string   // as written in the document, for reasons
	segs []string // the segments below metadata or event_data
}

// resolveField compiles a field name (a key of a condition object) at
// path.
func resolveField(name, path string) (*field, error) {
	if len(name) > MaxFieldName {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("field name longer than %d bytes", MaxFieldName)}
	}
	head, rest, dotted := strings.Cut(name, ".")
	top, ok := topFields[head]
	if !ok {
		return nil, &Error{Path: path, Msg: unknownField}
	}
	f := &field{id: top.id, typ: top.typ, name: name}
	if !dotted {
		return f, nil
	}
	if top.typ != tDynamic {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("unknown field: %s has no fields inside it", head)}
	}
	f.segs = strings.Split(rest, ".")
	if len(f.segs) > MaxPathSegments {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("more than %d path segments after %s", MaxPathSegments, head)}
	}
	for _, s := range f.segs {
		if s == "" {
			return nil, &Error{Path: path, Msg: "empty path segment"}
		}
	}
	if f.id == fEventData && len(f.segs) == 2 && f.segs[0] == event.DataScoring &&
		(f.segs[1] == "severity" || f.segs[1] == "source_severity") {
		f.typ = tSeverity
	}
	return f, nil
}

// top reports whether the field is a top-level field of the event (cheap to
// read) rather than a path into event_data.
func (f *field) top() bool { return f.id < fMetadata }

// kind is the kind of a value read from an event.
type kind uint8

const (
	kMissing kind = iota
	kNull
	kBool
	kNumber
	kString
	kTime
	kList    // l: a JSON list, any element types
	kStrings // ss: a list of strings
	kObject  // an object: present, compares with nothing
	kOther   // any other Go value: present, compares with nothing
)

// value is a field's value as read from an event, without allocation: the
// kind decides which of the other fields holds it.
type value struct {
	kind kind
	b    bool
	n    float64
	s    string
	t    time.Time
	l    []any
	ss   []string
}

var missing = value{}

func str(s string) value {
	if s == "" {
		return missing
	}
	return value{kind: kString, s: s}
}

func num(n float64) value { return value{kind: kNumber, n: n} }

// get reads the field from e.
func (f *field) get(e *event.Event) value {
	switch f.id {
	case fEventType:
		return str(e.EventType)
	case fSeverity:
		return str(string(e.Severity))
	case fSource:
		return str(e.SourceSystem)
	case fSourceType:
		return str(string(e.SourceType))
	case fSourceHost:
		return str(e.SourceHost)
	case fSourceService:
		return str(e.SourceService)
	case fTitle:
		return str(e.Title)
	case fDescription:
		return str(e.Description)
	case fTags:
		if len(e.Tags) == 0 {
			return missing
		}
		return value{kind: kStrings, ss: e.Tags}
	case fOccurrenceCount:
		return num(float64(e.OccurrenceCount))
	case fPriority:
		return num(float64(e.Priority))
	case fOccurredAt:
		if e.OccurredAt.IsZero() {
			return missing
		}
		return value{kind: kTime, t: e.OccurredAt}
	case fCorrelationID:
		return str(e.CorrelationID)
	case fMetadata:
		v, ok := e.Data[dataMetadata]
		if !ok {
			return missing
		}
		return walk(v, f.segs)
	case fEventData:
		return eventData(e, f.segs)
	}
	return missing
}

// eventData reads a path into event_data as MarshalData lays it out: a
// typed result that is set (Asset, Scoring) stands under its key in place
// of a Data value.
func eventData(e *event.Event, segs []string) value {
	if len(segs) == 0 {
		if len(e.Data) == 0 && e.Asset == nil && e.Scoring == nil {
			return missing
		}
		return value{kind: kObject}
	}
	switch {
	case segs[0] == event.DataAsset && e.Asset != nil:
		return asset(e.Asset, segs[1:])
	case segs[0] == event.DataScoring && e.Scoring != nil:
		return scoring(e.Scoring, segs[1:])
	}
	v, ok := e.Data[segs[0]]
	if !ok {
		return missing
	}
	return walk(v, segs[1:])
}

// asset reads a path below event_data.asset from the typed result, as its
// JSON would read: empty fields are left out.
func asset(a *event.Asset, segs []string) value {
	if len(segs) == 0 {
		return value{kind: kObject}
	}
	if len(segs) > 1 {
		return missing
	}
	switch segs[0] {
	case "criticality":
		return str(a.Criticality)
	case "dependencies":
		if len(a.Dependencies) == 0 {
			return missing
		}
		return value{kind: kStrings, ss: a.Dependencies}
	case "environment":
		return str(a.Environment)
	case "owner":
		return str(a.Owner)
	case "service":
		return str(a.Service)
	case "team":
		return str(a.Team)
	}
	return missing
}

// scoring reads a path below event_data.scoring from the typed result.
func scoring(s *event.Scoring, segs []string) value {
	if len(segs) == 0 {
		return value{kind: kObject}
	}
	if len(segs) > 1 {
		return missing
	}
	switch segs[0] {
	case "priority":
		return num(float64(s.Priority))
	case "severity":
		return value{kind: kString, s: string(s.Severity)}
	case "source_severity":
		return value{kind: kString, s: string(s.SourceSeverity)}
	case "factors":
		return value{kind: kOther}
	}
	return missing
}

// walk follows segs through nested objects from v. A path ends at a list;
// it does not reach into a list's elements.
func walk(v any, segs []string) value {
	for i, s := range segs {
		switch m := v.(type) {
		case map[string]any:
			x, ok := m[s]
			if !ok {
				return missing
			}
			v = x
		case map[string]string:
			x, ok := m[s]
			if !ok || i != len(segs)-1 {
				return missing
			}
			return value{kind: kString, s: x}
		case *event.Asset:
			if m == nil {
				return missing
			}
			return asset(m, segs[i:])
		case *event.Scoring:
			if m == nil {
				return missing
			}
			return scoring(m, segs[i:])
		default:
			return missing
		}
	}
	return valueOf(v)
}

// valueOf converts a value found in event_data.
func valueOf(v any) value {
	switch x := v.(type) {
	case nil:
		return value{kind: kNull}
	case string:
		return value{kind: kString, s: x}
	case json.Number:
		if n, ok := parseNumber(string(x)); ok {
			return num(n)
		}
		return value{kind: kString, s: string(x)}
	case float64:
		return num(x)
	case bool:
		return value{kind: kBool, b: x}
	case map[string]any, map[string]string:
		return value{kind: kObject}
	case []any:
		return value{kind: kList, l: x}
	case []string:
		return value{kind: kStrings, ss: x}
	case int:
		return num(float64(x))
	case int64:
		return num(float64(x))
	case int32:
		return num(float64(x))
	case int16:
		return num(float64(x))
	case int8:
		return num(float64(x))
	case uint:
		return num(float64(x))
	case uint64:
		return num(float64(x))
	case uint32:
		return num(float64(x))
	case uint16:
		return num(float64(x))
	case uint8:
		return num(float64(x))
	case float32:
		return num(float64(x))
	case time.Time:
		return value{kind: kTime, t: x}
	case event.Severity:
		return value{kind: kString, s: string(x)}
	case *event.Asset:
		if x == nil {
			return value{kind: kNull}
		}
		return value{kind: kObject}
	case *event.Scoring:
		if x == nil {
			return value{kind: kNull}
		}
		return value{kind: kObject}
	}
	return value{kind: kOther}
}

// number reads v as a number: a number, or a string that is a number as
// JSON writes one (surrounding space and a leading + are not accepted).
func (v *value) number() (float64, bool) {
	switch v.kind {
	case kNumber:
		return v.n, true
	case kString:
		return parseNumber(v.s)
	}
	return 0, false
}

// time reads v as a timestamp: a time, or an RFC 3339 string.
func (v *value) time() (time.Time, bool) {
	switch v.kind {
	case kTime:
		return v.t, true
	case kString:
		return parseTime(v.s)
	}
	return time.Time{}, false
}
