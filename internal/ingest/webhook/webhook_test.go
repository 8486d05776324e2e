package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenItem shows an accepted item: Data as the exact bytes, and the
// payload as Parse understood it.
type goldenItem struct {
	Source   string          `json:"source"`
	Severity event.Severity  `json:"severity"`
	Data     string          `json:"data"`
	Parsed   json.RawMessage `json:"parsed"`
}

type goldenResult struct {
	Error   string       `json:"error,omitempty"`
	Items   []goldenItem `json:"items,omitempty"`
	Rejects []Reject     `json:"rejects,omitempty"`
}

func TestDecodeGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.*json")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			ct := "application/json"
			if strings.HasSuffix(in, ".ndjson") {
				ct = "application/x-ndjson"
			}
			items, rejects, err := Decode(ct, body, Options{})
			var got goldenResult
			if err != nil {
				require.True(t, errors.Is(err, ErrBadRequest), "whole-body errors of these inputs are bad requests: %v", err)
				require.Nil(t, items)
				require.Nil(t, rejects)
				got.Error = err.Error()
			}
			for _, it := range items {
				p, err := Parse(it.Data)
				require.NoError(t, err)
				parsed, err := json.Marshal(p)
				require.NoError(t, err)
				got.Items = append(got.Items, goldenItem{Source: it.SourceSystem, Severity: it.Severity, Data: string(it.Data), Parsed: parsed})
			}
			got.Rejects = rejects
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			require.NoError(t, enc.Encode(got))
			out := buf.Bytes()
			golden := strings.TrimSuffix(in, filepath.Ext(in)) + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, out, 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create the golden file")
			require.Equal(t, string(want), string(out))
		})
	}
}

func TestDecodeMediaTypes(t *testing.T) {
	obj := []byte(`{"message":"m"}`)
	lines := []byte("{\"message\":\"a\"}\n{\"message\":\"b\"}\n")
	tests := []struct {
		contentType string
		body        []byte
		wantItems   int
		wantErr     error
	}{
		{"application/json", obj, 1, nil},
		{"application/json; charset=utf-8", obj, 1, nil},
		{"Application/JSON; charset=UTF-8", obj, 1, nil},
		{"application/json;charset=\"utf-8\"", obj, 1, nil},
		{"", obj, 1, nil},
		{"  ", obj, 1, nil},
		{"application/x-ndjson", lines, 2, nil},
		{"application/ndjson", lines, 2, nil},
		{"application/jsonl", lines, 2, nil},
		{"application/x-jsonlines; charset=utf-8", lines, 2, nil},
		// NDJSON's lines posted as JSON are not one value.
		{"application/json", lines, 0, ErrBadRequest},
		// A single object is one line of NDJSON.
		{"application/x-ndjson", obj, 1, nil},
		{"text/plain", obj, 0, ErrUnsupportedMediaType},
		{"application/x-www-form-urlencoded", obj, 0, ErrUnsupportedMediaType},
		{"application/xml", obj, 0, ErrUnsupportedMediaType},
		{"application/json-seq", obj, 0, ErrUnsupportedMediaType},
		{"application/json; charset=iso-8859-1", obj, 0, ErrUnsupportedMediaType},
		{"application/", obj, 0, ErrUnsupportedMediaType},
		{"/json", obj, 0, ErrUnsupportedMediaType},
		// A malformed parameter does not hide a good media type.
		{"application/json; charset", obj, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			items, rejects, err := Decode(tt.contentType, tt.body, Options{})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Empty(t, rejects)
			require.Len(t, items, tt.wantItems)
		})
	}
}

func TestDecodeMaxEvents(t *testing.T) {
	arr := func(n int) []byte {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"message":"m%d"}`, i)
		}
		return []byte("[" + strings.Join(parts, ",") + "]")
	}
	ndjson := func(n int) []byte {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "{\"message\":\"m%d\"}\n\n", i)
		}
		return b.Bytes()
	}
	tests := []struct {
		name      string
		ct        string
		body      []byte
		max       int
		wantItems int
		wantErr   bool
	}{
		{"array at limit", "application/json", arr(3), 3, 3, false},
		{"array over limit", "application/json", arr(4), 3, 0, true},
		{"ndjson at limit", "application/x-ndjson", ndjson(3), 3, 3, false},
		{"ndjson over limit", "application/x-ndjson", ndjson(4), 3, 0, true},
		{"default limit", "application/json", arr(DefaultMaxEvents), 0, DefaultMaxEvents, false},
		{"over default limit", "application/json", arr(DefaultMaxEvents + 1), 0, 0, true},
		{"invalid events count too", "application/json", []byte(`[1,2,3,4]`), 3, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, _, err := Decode(tt.ct, tt.body, Options{MaxEvents: tt.max})
			if tt.wantErr {
				require.ErrorIs(t, err, ErrBadRequest)
				require.Contains(t, err.Error(), "more than")
				return
			}
			require.NoError(t, err)
			require.Len(t, items, tt.wantItems)
		})
	}
}

func TestDecodeSyntaxErrorPosition(t *testing.T) {
	tests := []struct {
		name string
		ct   string
		body string
		want string
	}{
		{"first byte", "application/json", `x`, "byte offset 0 (line 1, column 1)"},
		{"inside object", "application/json", `{"message": x}`, "byte offset 12 (line 1, column 13)"},
		{"leading space counts", "application/json", "\n\n  {\"message\": x}", "byte offset 16 (line 3, column 15)"},
		{"second line", "application/json", "[\n{\"a\":1,}]", "byte offset 9 (line 2, column 8)"},
		{"truncated", "application/json", `[{"message":"a"}`, "unexpected end of input after 16 bytes"},
		{"two values", "application/json", `{} {}`, "line 1, column 4"},
		{"ndjson line", "application/x-ndjson", "{}\n\n{\"a\" 1}\n", "line 3: invalid JSON at column 6"},
		{"ndjson two values on a line", "application/x-ndjson", "{} {}", "line 1: invalid JSON at column 4"},
		{"ndjson column counts leading space", "application/x-ndjson", "  {\"a\" 1}", "line 1: invalid JSON at column 8"},
		{"ndjson truncated line", "application/x-ndjson", "{\"a\":1}\n{\"a\":", "line 2: invalid JSON: unexpected end of line"},
		{"truncated array", "application/json", "[", "unexpected end of input after 1 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode(tt.ct, []byte(tt.body), Options{})
			require.ErrorIs(t, err, ErrBadRequest)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecodeDataIsCompactedAndIndependent(t *testing.T) {
	body := []byte("[ { \"message\" : \"a  b\" , \"tags\" : [ \"x\" ] } ,\n {\"message\":\"c\"} ]")
	items, rejects, err := Decode("application/json", body, Options{})
	require.NoError(t, err)
	require.Empty(t, rejects)
	require.Len(t, items, 2)
	require.Equal(t, `{"message":"a  b","tags":["x"]}`, string(items[0].Data))
	require.Equal(t, `{"message":"c"}`, string(items[1].Data))
	// The body buffer may be reused by the caller.
	for i := range body {
		body[i] = 'X'
	}
	require.Equal(t, `{"message":"c"}`, string(items[1].Data))
	// Appending to one item's data must not clobber the next.
	_ = append(items[0].Data, "garbage"...)
	require.Equal(t, `{"message":"c"}`, string(items[1].Data))
}

func TestDecodeSourceDefault(t *testing.T) {
	items, _, err := Decode("application/json", []byte(`[{"message":"m"},{"message":"m","source":" zabbix "},{"message":"m","source":"  "}]`), Options{})
	require.NoError(t, err)
	require.Equal(t, "webhook", items[0].SourceSystem)
	require.Equal(t, "zabbix", items[1].SourceSystem)
	require.Equal(t, "webhook", items[2].SourceSystem)
}

func TestSplitArrayMatchesEncodingJSON(t *testing.T) {
	bodies := []string{
		`[1]`,
		`[ 1 , "a,b" , {"x":[1,2,{"y":"]"}]} , [] , {} , null , true , "\"]\\" ]`,
		"[\n\t{\"message\":\"a\\\\\"},\r\n\t\"}{\"\n]",
		`[[[[]]],[{}],"\u005d"]`,
	}
	for _, b := range bodies {
		t.Run(b, func(t *testing.T) {
			var want []json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(b), &want))
			got, err := splitArray([]byte(b), 100)
			require.NoError(t, err)
			require.Len(t, got, len(want))
			for i := range want {
				require.Equal(t, strings.TrimSpace(string(want[i])), string(got[i]))
			}
		})
	}
}

func TestParse(t *testing.T) {
	ts := time.Date(2024, 12, 20, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want Payload
	}{
		{
			name: "seed",
			in:   `{"source":"monitoring_system_name","event_type":"threshold_breach","severity":"critical","host":"web-server-01","service":"nginx","message":"CPU usage exceeded 95%","timestamp":"2024-12-20T10:30:00Z","metadata":{"cpu_usage":97.5,"threshold":95.0,"duration":"5m"}}`,
			want: Payload{
				Source: "monitoring_system_name", EventType: "threshold_breach", Severity: event.Critical,
				Host: "web-server-01", Service: "nginx", Message: "CPU usage exceeded 95%",
				Timestamp: ts, TimestampRaw: json.RawMessage(`"2024-12-20T10:30:00Z"`),
				Metadata: map[string]any{"cpu_usage": json.Number("97.5"), "threshold": json.Number("95.0"), "duration": "5m"},
			},
		},
		{
			name: "defaults",
			in:   `{"message":" m "}`,
			want: Payload{Source: "webhook", EventType: "generic", Severity: event.Info, Message: "m"},
		},
		{
			name: "nulls are absent",
			in:   `{"message":"m","source":null,"event_type":null,"severity":null,"host":null,"service":null,"title":null,"description":null,"timestamp":null,"metadata":null,"tags":null}`,
			want: Payload{Source: "webhook", EventType: "generic", Severity: event.Info, Message: "m"},
		},
		{
			name: "unix milliseconds",
			in:   `{"message":"m","timestamp":1734690600000}`,
			want: Payload{Source: "webhook", EventType: "generic", Severity: event.Info, Message: "m", Timestamp: ts, TimestampRaw: json.RawMessage(`1734690600000`)},
		},
		{
			name: "extra fields and tags",
			in:   `{"message":"m","tags":["A"," b ",""],"x":{"n":1},"y":null}`,
			want: Payload{
				Source: "webhook", EventType: "generic", Severity: event.Info, Message: "m",
				Tags:  []string{"A", "b"},
				Extra: map[string]any{"x": map[string]any{"n": json.Number("1")}, "y": nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseTimestampBoundaries(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"0", time.Unix(0, 0), true},
		{"99999999999", time.Unix(99999999999, 0), true},          // last value read as seconds
		{"100000000000", time.UnixMilli(100000000000), true},      // first value read as milliseconds
		{"1734690600.000000001", time.Unix(1734690600, 1), true},  // nanoseconds
		{"1734690600.0000000019", time.Unix(1734690600, 1), true}, // beyond nanoseconds: cut
		{"1734690600123.456789", time.UnixMilli(1734690600123).Add(456789 * time.Nanosecond), true},
		{"253402300799999", time.UnixMilli(253402300799999), true}, // 9999-12-31T23:59:59.999Z
		{"253402300800000", time.Time{}, false},
		{"12345678901234567", time.Time{}, false},
		{"", time.Time{}, false},
		{".5", time.Time{}, false},
		{"1.", time.Time{}, false},
		{"1.2.3", time.Time{}, false},
		{"+5", time.Time{}, false},
		{"-5", time.Time{}, false},
		{"1e9", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseUnix(tt.in)
			require.Equal(t, tt.ok, ok)
			if ok {
				require.True(t, tt.want.Equal(got), "got %v want %v", got, tt.want)
				require.Equal(t, time.UTC, got.Location())
			}
		})
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	in := Payload{
		Source: "s", EventType: "e", Severity: event.High, Host: "h", Service: "svc",
		Message: "m <b>&", Title: "t", Description: "d",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Metadata:  map[string]any{"n": json.Number("1.50")},
		Tags:      []string{"x"},
		Extra:     map[string]any{"region": "eu", "message": "shadowed"},
	}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var out Payload
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, `"2026-01-02T03:04:05.000000006Z"`, string(out.TimestampRaw))
	out.TimestampRaw = nil
	in.Extra = map[string]any{"region": "eu"}
	require.Equal(t, in, out)

	var bad Payload
	err = json.Unmarshal([]byte(`{"severity":"x"}`), &bad)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "message", fe.Field)
}

func TestCheckStorable(t *testing.T) {
	tests := []struct {
		in        string
		wantField string // "" with ok
		ok        bool
	}{
		{`{"a":"plain","b":[1,-2.5e10,{"c":"é 🚀 \ud83d\ude80 \u00e9 \\u0000"}]}`, "", true},
		{`{"a":"x\u0000"}`, "a", false},
		{`{"a":{"b":"\u0000"}}`, "a.b", false},
		{`{"k\u0000":1}`, "k", false},
		{`{"a":{"x":1,"k\u0000":1}}`, "a.k", false},
		{`{"a":"\ud800"}`, "a", false},
		{`{"a":"\ud800\u0041"}`, "a", false},
		{`{"a":"\udfff"}`, "a", false},
		{`{"a":"\uD83D\uDE80"}`, "", true},
		{"{\"a\":\"\xff\"}", "a", false},
		{"{\"a\xff\":1}", "a", false},
		{"{\"a\":\"\xed\xa0\x80\"}", "a", false}, // UTF-8 encoded surrogate
		{`{"a":1e308}`, "", true},
		{`{"a":-1.7976931348623157e308}`, "", true},
		{`{"a":0.0001e310}`, "", true},
		{`{"a":1E-1000}`, "", true}, // underflows to 0: readable
		{`{"a":1e309}`, "a", false},
		{`{"a":-1e309}`, "a", false},
		{`{"a":1e1000}`, "a", false},
		{`{"a":[1,2,1e99999]}`, "a[2]", false},
		{`{"metadata":{"v":1e309}}`, "metadata.v", false},
		{`{"m":{"l":[{"x":1},{"y":[0,1e400]}]}}`, "m.l[1].y[1]", false},
		{`{"a":` + strings.Repeat("9", 100) + `}`, "", true},
		{`{"a":` + strings.Repeat("9", 101) + `}`, "a", false},
		{`{"a":"x","b":{"c":1},"d":"\u0000"}`, "d", false},
		{`{"a":"\\","b":"\u0000"}`, "b", false},
		{`{"a":[[1],[2]],"b":{"c":[3]},"d":1e999}`, "d", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			fe := checkStorable([]byte(tt.in))
			if tt.ok {
				require.Nil(t, fe)
				return
			}
			require.NotNil(t, fe)
			require.Equal(t, tt.wantField, fe.Field)
		})
	}
}

func TestDecodeMaxEventBytes(t *testing.T) {
	small := `{"message":"a"}`
	big := `{"message":"` + strings.Repeat("x", 100) + `"}`
	opts := Options{MaxEventBytes: len(big)}
	// At the limit: accepted, with what else the body holds.
	items, rejects, err := Decode("application/json", []byte("["+small+","+big+`,{"x":1}]`), opts)
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.Len(t, rejects, 1)
	// One byte more anywhere in the body: nothing of it is accepted, and
	// the error names the event.
	for _, ct := range []string{"application/json", "application/x-ndjson"} {
		opts.MaxEventBytes = len(big) - 1
		body := "[" + small + "," + big + "," + small + "]"
		if ct != "application/json" {
			body = small + "\n" + big + "\n" + small + "\n"
		}
		items, rejects, err = Decode(ct, []byte(body), opts)
		require.ErrorIs(t, err, ErrEventTooLarge)
		require.ErrorContains(t, err, fmt.Sprintf("event 1 is %d bytes, more than the %d bytes", len(big), len(big)-1))
		require.Nil(t, items)
		require.Nil(t, rejects)
	}
}
