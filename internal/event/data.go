package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
)

// Keys of event_data that hold the typed results of the stages.
const (
	DataAsset    = "asset"    // Event.Asset, set by the enricher
	DataScoring  = "scoring"  // Event.Scoring, set by the severity scorer
	DataTemplate = "template" // Event.Template, set by the template stage
	DataAlert    = "alert"    // Event.Alert, set by the normalizers of alerting sources
)

// dataField is a typed stage result that is kept in event_data under key.
//
// To add one: a field of Event tagged `json:"-"`, a Data* key above, and a
// line in dataFields, with typedField for a pointer to a struct (nil means
// none) or with an encode and a decode of its own otherwise.
type dataField struct {
	key string
	// encode returns the value to write under key and whether the event
	// has one.
	encode func(e *Event) (any, bool)
	// decode sets the field from raw, the JSON value stored under key, and
	// reports whether raw fits the field's type. When it does not, the
	// event is left unchanged and the value is kept in Data as it is.
	decode func(e *Event, raw []byte) bool
}

// dataFields are the typed results, in no particular order.
var dataFields = []dataField{
	typedField(DataAsset, func(e *Event) **Asset { return &e.Asset }),
	typedField(DataScoring, func(e *Event) **Scoring { return &e.Scoring }),
	typedField(DataTemplate, func(e *Event) **Template { return &e.Template }),
	typedField(DataAlert, func(e *Event) **Alert { return &e.Alert }),
}

// TypedDataKeys are the keys of event_data that hold typed results (Asset,
// Scoring, Template ...), for encodings of events that carry the typed
// results apart from Data and must know them all.
func TypedDataKeys() []string {
	keys := make([]string, len(dataFields))
	for i, f := range dataFields {
		keys[i] = f.key
	}
	return keys
}

// typedField is the dataField of a result held as a pointer to a struct
// (a JSON object) that field returns the address of: nil is no result,
// and a stored value fits when it is an object of T's fields and no other
// key (encoding/json matches the keys without regard to case).
func typedField[T any](key string, field func(e *Event) **T) dataField {
	return dataField{
		key: key,
		encode: func(e *Event) (any, bool) {
			p := *field(e)
			return p, p != nil
		},
		decode: func(e *Event, raw []byte) bool {
			if bytes.Equal(raw, []byte("null")) {
				return false // kept in Data as null, as stored
			}
			v := new(T)
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if dec.Decode(v) != nil {
				return false
			}
			*field(e) = v
			return true
		},
	}
}

// MarshalData encodes what the store keeps in event_data: the event's Data
// and the typed results of the stages (Asset, Scoring), each under its
// key, where a typed result that is set replaces a Data value of the same
// key. The document is encoded as a map is, keys sorted: the bytes are the
// same as when the results were Data values. It returns nil when there is
// nothing to keep. Stores use only this and UnmarshalData for event_data,
// so that the layout of that document is defined here once.
func (e *Event) MarshalData() ([]byte, error) {
	doc := e.dataDoc()
	if len(doc) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("event: encode event_data of event %d: %w", e.ID, err)
	}
	return b, nil
}

// dataDoc is the event_data document: Data itself when no typed result is
// set, else a copy of Data with the typed results under their keys.
func (e *Event) dataDoc() map[string]any {
	var doc map[string]any
	for _, f := range dataFields {
		v, ok := f.encode(e)
		if !ok {
			continue
		}
		if doc == nil {
			doc = make(map[string]any, len(e.Data)+len(dataFields))
			maps.Copy(doc, e.Data)
		}
		doc[f.key] = v
	}
	if doc == nil {
		return e.Data
	}
	return doc
}

// UnmarshalData restores what MarshalData encoded: the value of each typed
// result's key goes to its field, every other key to Data, with numbers as
// float64 and objects as map[string]any. A value under a typed key that
// does not fit its type (written by something else than MarshalData) stays
// in Data unchanged, so that nothing stored is lost. Empty input and JSON
// null leave the event without data. Input that is not a JSON object, or
// holds a value that cannot be decoded (such as a number out of float64's
// range), is an error naming the event and the key; UnmarshalData never
// panics.
func (e *Event) UnmarshalData(b []byte) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("event: decode event_data of event %d: not a JSON object: %w", e.ID, err)
	}
	var (
		errKey string
		keyErr error
	)
next:
	for k, raw := range doc {
		for _, f := range dataFields {
			if f.key == k && f.decode(e, raw) {
				continue next
			}
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			if keyErr == nil || k < errKey { // the same error for the same input
				errKey, keyErr = k, err
			}
			continue
		}
		if e.Data == nil {
			e.Data = make(map[string]any, len(doc))
		}
		e.Data[k] = v
	}
	if keyErr != nil {
		return fmt.Errorf("event: decode event_data of event %d: key %q: %w", e.ID, errKey, keyErr)
	}
	return nil
}

// MarshalJSON encodes the event as a row of the API: the fields by their
// JSON names, with event_data as MarshalData lays it out (the typed
// results inside it). HTML characters are left unescaped here, so that
// the caller's encoder decides (encoding/json escapes them unless
// SetEscapeHTML(false)), as it did for the plain struct.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // the fields without the methods
	p := plain(e)
	p.Data = e.dataDoc()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes what MarshalJSON encoded, event_data as
// UnmarshalData does (the typed results back into their fields).
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	v := struct {
		*plain
		Data json.RawMessage `json:"event_data"`
	}{plain: (*plain)(e)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return e.UnmarshalData(v.Data)
}

// DefaultPartitions is the number of partitions of the intake and
// processed streams unless configured otherwise.
const DefaultPartitions = 16

// PartitionOf maps a host to one of n partitions (0 when n <= 1). Every
// part of reflex that partitions by host (the intake and processed stream
// subjects, the pipeline's workers, keyed state) uses this function, so
// that one host's events always land together.
func PartitionOf(host string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(host))
	return int(h.Sum32() % uint32(n)) //nolint:gosec // n > 1 partitions, far below 2^32
}
