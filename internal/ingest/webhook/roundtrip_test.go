package webhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

// requireDataRoundTrip checks that the event data a store would keep of an
// accepted event (its metadata, unknown fields and message, as the
// normalizer keeps them) is encoded by MarshalData and read back by
// UnmarshalData: intake and the store agree on what a value is.
func requireDataRoundTrip(t *testing.T, data []byte) {
	t.Helper()
	p, err := Parse(data)
	require.NoError(t, err)
	e := &event.Event{ID: 1}
	if p.Metadata != nil {
		e.SetData("metadata", p.Metadata)
	}
	if p.Extra != nil {
		e.SetData("extra", p.Extra)
	}
	e.SetData("message", p.Message)
	b, err := e.MarshalData()
	require.NoError(t, err)
	var back event.Event
	require.NoError(t, back.UnmarshalData(b), "event data %s", b)
	require.Equal(t, p.Message, back.Data["message"])
}

// TestAcceptedRoundTripsEventData is the regression test of issue 5 §1.1:
// {"metadata":{"v":1e309}} was accepted and could then not be read back,
// breaking every page of events that held it.
func TestAcceptedRoundTripsEventData(t *testing.T) {
	accepted := []string{
		`{"message":"m","metadata":{"v":1.7976931348623157e308,"w":-1e308,"u":1e-400,"z":0.0001e310}}`,
		`{"message":"m","metadata":{"big":` + strings.Repeat("9", 100) + `}}`,
		`{"message":"m","x":[1,2,{"y":1E+300}],"metadata":{"a":[[-0.0e-5]]}}`,
		`{"message":"m","metadata":{"s":"\u00e9\ud83d\ude80"}}`,
	}
	for _, in := range accepted {
		items, rejects, err := Decode("application/json", []byte(in), Options{})
		require.NoError(t, err)
		require.Empty(t, rejects, in)
		require.Len(t, items, 1)
		requireDataRoundTrip(t, items[0].Data)
	}

	rejected := []struct{ in, field, reason string }{
		{`{"message":"poison","metadata":{"v":1e309}}`, "metadata.v", "number 1e309 is out of range"},
		{`{"message":"poison","metadata":{"v":[0,-1E400]}}`, "metadata.v[1]", "number -1E400 is out of range"},
		{`{"message":"poison","other":{"deep":{"n":123e456}}}`, "other.deep.n", "number 123e456 is out of range"},
		{`{"message":"poison","metadata":{"v":1e1001}}`, "metadata.v", "number 1e1001 is out of range"},
	}
	for _, tt := range rejected {
		items, rejects, err := Decode("application/json", []byte(tt.in), Options{})
		require.NoError(t, err)
		require.Empty(t, items, tt.in)
		require.Equal(t, []Reject{{Index: 0, Field: tt.field, Reason: tt.reason}}, rejects)
		_, err = Parse([]byte(tt.in))
		require.EqualError(t, err, tt.field+": "+tt.reason)
	}
}
