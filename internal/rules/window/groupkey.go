package window

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
)

// dataMetadata is the key of event_data under which the webhook keeps its
// payload's metadata.
const dataMetadata = "metadata"

// GroupKey returns the group key of e for a rule's group_by: the values of
// the fields in order, each encoded as JSON and prefixed with its length,
// so that different values never make the same key. Fields are the
// top-level fields (source_host or host, source_service or service,
// event_type, severity, source, source_type, title, description,
// correlation_id, occurrence_count, priority, tags) and dotted paths
// metadata.X and event_data.X into the event's data. A missing field
// reads as null. An empty groupBy gives one group: "".
func GroupKey(e *event.Event, groupBy []string) string {
	if len(groupBy) == 0 {
		return ""
	}
	var b strings.Builder
	for _, f := range groupBy {
		v, err := json.Marshal(fieldValue(e, f))
		if err != nil {
			v = []byte("null")
		}
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.Write(v)
	}
	return b.String()
}

// fieldValue reads the field name of e; nil when missing.
func fieldValue(e *event.Event, name string) any {
	switch name {
	case "source_host", "host":
		return e.SourceHost
	case "source_service", "service":
		return e.SourceService
	case "event_type":
		return e.EventType
	case "severity":
		return string(e.Severity)
	case "source":
		return e.SourceSystem
	case "source_type":
		return string(e.SourceType)
	case "title":
		return e.Title
	case "description":
		return e.Description
	case "correlation_id":
		return e.CorrelationID
	case "occurrence_count":
		return e.OccurrenceCount
	case "priority":
		return e.Priority
	case "tags":
		return e.Tags
	}
	head, rest, ok := strings.Cut(name, ".")
	if !ok {
		return nil
	}
	segs := strings.Split(rest, ".")
	switch head {
	case "metadata":
		return walk(e.Data[dataMetadata], segs)
	case "event_data":
		switch segs[0] {
		case event.DataAsset:
			return walk(typed(e.Asset), segs[1:])
		case event.DataScoring:
			return walk(typed(e.Scoring), segs[1:])
		}
		return walk(e.Data[segs[0]], segs[1:])
	}
	return nil
}

// typed turns a typed part of event_data into its JSON form to walk.
func typed[T any](p *T) any {
	if p == nil {
		return nil
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return v
}

// walk follows segs down maps (and list indexes) from v.
func walk(v any, segs []string) any {
	for _, s := range segs {
		switch c := v.(type) {
		case map[string]any:
			v = c[s]
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}
