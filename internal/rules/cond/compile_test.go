package cond

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompileErrors(t *testing.T) {
	cases := []struct{ cond, err string }{
		// The document.
		{``, `conditions: must be a JSON object`},
		{`  `, `conditions: must be a JSON object`},
		{`null`, `conditions: must be a JSON object`},
		{`[]`, `conditions: must be a JSON object`},
		{`"x"`, `conditions: must be a JSON object`},
		{`{"event_type": "a"`, `conditions: invalid JSON: unexpected end of input`},
		{`{"event_type": "a",}`, `conditions: invalid JSON: invalid character '}' looking for beginning of object key string`},
		{`{"event_type": "a"} {}`, `conditions: unexpected data after the document`},
		{`{"event_type": "a", "event_type": "b"}`, `conditions.event_type: duplicate key`},
		{`{"metadata.x": 1e999}`, `conditions.metadata.x: number out of range`},

		// Fields.
		{`{"foo": 1}`, `conditions.foo: ` + unknownField},
		{`{"Event_Type": "a"}`, `conditions.Event_Type: ` + unknownField},
		{`{"source_system": "a"}`, `conditions.source_system: ` + unknownField},
		{`{"title.x": "a"}`, `conditions.title.x: unknown field: title has no fields inside it`},
		{`{"metadata.": 1}`, `conditions.metadata.: empty path segment`},
		{`{"metadata..x": 1}`, `conditions.metadata..x: empty path segment`},
		{`{"event_data.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q": 1}`, `conditions.event_data.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q: more than 16 path segments after event_data`},

		// Operators.
		{`{"metadata.cpu_usage": {"$gtt": 90}}`, `conditions.metadata.cpu_usage.$gtt: unknown operator`},
		{`{"$foo": 1}`, `conditions.$foo: unknown operator`},
		{`{"$gt": 1}`, `conditions.$gt: $gt needs a field: only $and, $or and $not stand where fields do`},
		{`{"metadata.x": {}}`, `conditions.metadata.x: empty operator object`},
		{`{"metadata": {"cpu_usage": {"$gt": 90}}}`, `conditions.metadata.cpu_usage: not an operator: an object value holds operators ($eq, $gt, $in ...); reach inside an object with a dotted path, such as metadata.cpu_usage`},
		{`{"metadata.x": {"$gt": 1, "y": 2}}`, `conditions.metadata.x.y: not an operator: an object value holds operators ($eq, $gt, $in ...); reach inside an object with a dotted path, such as metadata.x.y`},
		{`{"host": {"$or": [{"$eq": "a"}]}}`, `conditions.host.$or: $or combines conditions, not operators: write {"$or": [{"host": ...}, ...]} where fields stand`},

		// $and, $or, $not.
		{`{"$and": {"host": "a"}}`, `conditions.$and: must be a list of condition objects`},
		{`{"$or": []}`, `conditions.$or: must not be empty`},
		{`{"$or": [{"host": "a"}, "b"]}`, `conditions.$or[1]: must be a condition object`},
		{`{"$or": [{"host": "a"}, {"hots": "b"}]}`, `conditions.$or[1].hots: ` + unknownField},
		{`{"$and": [{"$or": [{"metadata.x": {"$regex": "("}}]}]}`, "conditions.$and[0].$or[0].metadata.x.$regex: invalid regular expression: missing closing ): `(`"},
		{`{"$not": [{"host": "a"}]}`, `conditions.$not: must be a condition object`},
		{`{"host": {"$not": "a"}}`, `conditions.host.$not: must be an operator object, such as {"$gt": 3}`},
		{`{"host": {"$not": {}}}`, `conditions.host.$not: empty operator object`},
		{`{"host": {"$not": {"$regex": 5}}}`, `conditions.host.$not.$regex: must be a string`},

		// Operand types.
		{`{"metadata.x": {"$gt": [1]}}`, `conditions.metadata.x.$gt: must be a number or an RFC 3339 timestamp`},
		{`{"metadata.x": {"$gt": "90"}}`, `conditions.metadata.x.$gt: must be a number or an RFC 3339 timestamp`},
		{`{"metadata.x": {"$lte": null}}`, `conditions.metadata.x.$lte: must be a number or an RFC 3339 timestamp`},
		{`{"metadata.x": {"$eq": [1]}}`, `conditions.metadata.x.$eq: must be a string, number, boolean or null`},
		{`{"metadata.x": {"$eq": {"a": 1}}}`, `conditions.metadata.x.$eq: must be a string, number, boolean or null`},
		{`{"metadata.x": [1, [2]]}`, `conditions.metadata.x[1]: must be a string, number, boolean or null`},
		{`{"metadata.x": {"$in": 1}}`, `conditions.metadata.x.$in: must be a list`},
		{`{"metadata.x": {"$nin": [{"a": 1}]}}`, `conditions.metadata.x.$nin[0]: must be a string, number, boolean or null`},
		{`{"metadata.x": {"$regex": 5}}`, `conditions.metadata.x.$regex: must be a string`},
		{`{"metadata.x": {"$regex": "a(b"}}`, "conditions.metadata.x.$regex: invalid regular expression: missing closing ): `a(b`"},
		{`{"metadata.x": {"$regex": "(?<name"}}`, "conditions.metadata.x.$regex: invalid regular expression: invalid named capture: `(?<name`"},
		{`{"metadata.x": {"$regex": "a\\1"}}`, "conditions.metadata.x.$regex: invalid regular expression: invalid escape sequence: `\\1`"},
		{`{"metadata.x": {"$contains": 5}}`, `conditions.metadata.x.$contains: must be a string`},
		{`{"metadata.x": {"$startswith": null}}`, `conditions.metadata.x.$startswith: must be a string`},
		{`{"metadata.x": {"$endswith": true}}`, `conditions.metadata.x.$endswith: must be a string`},
		{`{"metadata.x": {"$exists": 1}}`, `conditions.metadata.x.$exists: must be true or false`},
		{`{"severity": {"$gte": "hgh"}}`, `conditions.severity.$gte: unknown severity "hgh" (want critical, high, medium, low or info)`},
		{`{"severity": {"$gte": 3}}`, `conditions.severity.$gte: must be a severity (critical, high, medium, low or info)`},
		{`{"severity": ["critical", "hgh"]}`, `conditions.severity[1]: unknown severity "hgh" (want critical, high, medium, low or info)`},
		{`{"severity": "High"}`, `conditions.severity: unknown severity "High" (want critical, high, medium, low or info)`},
		{`{"severity": "error"}`, `conditions.severity: unknown severity "error" (want critical, high, medium, low or info)`},
		{`{"severity": 3}`, `conditions.severity: must be a severity (critical, high, medium, low or info) or null`},
		{`{"event_data.scoring.severity": {"$gt": "urgent"}}`, `conditions.event_data.scoring.severity.$gt: unknown severity "urgent" (want critical, high, medium, low or info)`},
		{`{"event_type": 5}`, `conditions.event_type: must be a string or null`},
		{`{"tags": [1]}`, `conditions.tags[0]: must be a string or null`},
		{`{"host": {"$gt": "a"}}`, `conditions.host.$gt: host is a string: $gt compares numbers, timestamps and severities`},
		{`{"tags": {"$lt": "a"}}`, `conditions.tags.$lt: tags is a list of strings: $lt compares numbers, timestamps and severities`},
		{`{"priority": "high"}`, `conditions.priority: must be a number or null`},
		{`{"priority": {"$gt": "1"}}`, `conditions.priority.$gt: must be a number`},
		{`{"occurrence_count": {"$regex": "1"}}`, `conditions.occurrence_count.$regex: occurrence_count is a number: $regex needs a string field`},
		{`{"occurred_at": {"$contains": "2026"}}`, `conditions.occurred_at.$contains: occurred_at is a timestamp: $contains needs a string field`},
		{`{"occurred_at": {"$gt": "yesterday"}}`, `conditions.occurred_at.$gt: must be an RFC 3339 timestamp`},
		{`{"occurred_at": "2026-01-02"}`, `conditions.occurred_at: must be an RFC 3339 timestamp or null`},
	}
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			m, err := Compile(json.RawMessage(c.cond))
			require.Nil(t, m)
			var ce *Error
			require.True(t, errors.As(err, &ce), "%T %v", err, err)
			require.Equal(t, c.err, err.Error())
			require.Equal(t, c.err, ce.Path+": "+ce.Msg)
			require.True(t, strings.HasPrefix(ce.Path, "conditions"), ce.Path)
		})
	}
}

func TestCompileBounds(t *testing.T) {
	nest := func(n int) string { // n nested $not objects around {}
		return strings.Repeat(`{"$not": `, n) + `{}` + strings.Repeat(`}`, n)
	}
	_, err := Compile(json.RawMessage(nest(MaxDepth - 1)))
	require.NoError(t, err, "the deepest allowed")
	_, err = Compile(json.RawMessage(nest(MaxDepth)))
	require.EqualError(t, err, "conditions"+strings.Repeat(".$not", MaxDepth)+": nested deeper than 16 levels")

	// Deep enough to crash a recursive parser: refused at once.
	_, err = Compile(json.RawMessage(strings.Repeat(`[`, 10000)))
	require.EqualError(t, err, "conditions"+strings.Repeat("[0]", MaxDepth)+": nested deeper than 16 levels")
	deep := strings.Repeat(`{"$or": [`, 5000) + "{}" + strings.Repeat(`]}`, 5000)
	_, err = Compile(json.RawMessage(deep))
	require.ErrorContains(t, err, ": nested deeper than 16 levels")

	list := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf("%q", fmt.Sprint("t", i))
		}
		return `{"event_type": [` + strings.Join(items, ",") + `]}`
	}
	_, err = Compile(json.RawMessage(list(MaxList)))
	require.NoError(t, err)
	_, err = Compile(json.RawMessage(list(MaxList + 1)))
	require.EqualError(t, err, "conditions.event_type: more than 256 items")

	// More values than MaxNodes, in lists each within MaxList.
	var ors []string
	for i := range 300 {
		ors = append(ors, fmt.Sprintf(`{"host": "h%d", "priority": %d, "title": "t"}`, i, i))
	}
	_, err = Compile(json.RawMessage(`{"$or": [` + strings.Join(ors[:250], ",") + `]}`))
	require.EqualError(t, err, "conditions.$or[249].priority: more than 1000 values in the document")

	_, err = Compile(json.RawMessage(`{"title": {"$regex": "` + strings.Repeat("a", MaxRegex) + `"}}`))
	require.NoError(t, err)
	_, err = Compile(json.RawMessage(`{"title": {"$regex": "` + strings.Repeat("a", MaxRegex+1) + `"}}`))
	require.EqualError(t, err, "conditions.title.$regex: regular expression longer than 1024 bytes")

	_, err = Compile(json.RawMessage(`{"title": "` + strings.Repeat("a", MaxBytes) + `"}`))
	require.EqualError(t, err, "conditions: larger than 65536 bytes")

	long := "metadata." + strings.Repeat("x", MaxFieldName)
	_, err = Compile(json.RawMessage(`{"` + long + `": 1}`))
	require.EqualError(t, err, "conditions."+long[:maxPathKey]+"...: field name longer than 256 bytes")

	// A regular expression RE2 refuses for its size.
	_, err = Compile(json.RawMessage(`{"title": {"$regex": "((a{1000}){1000}){1000}"}}`))
	require.ErrorContains(t, err, "conditions.title.$regex: invalid regular expression: ")
}

func TestKeys(t *testing.T) {
	cases := []struct {
		cond                 string
		types, sevs, sources []string
	}{
		{`{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}}`,
			[]string{"threshold_breach"}, []string{"critical", "high"}, nil},
		{`{}`, nil, nil, nil},
		{`{"metadata.x": 1}`, nil, nil, nil},
		{`{"source": "nagios", "event_type": {"$in": ["b", "a", "b"]}}`, []string{"a", "b"}, nil, []string{"nagios"}},
		{`{"source": {"$eq": "nagios"}}`, nil, nil, []string{"nagios"}},
		{`{"severity": {"$gte": "high"}}`, nil, []string{"critical", "high"}, nil},
		{`{"severity": {"$lt": "medium"}}`, nil, []string{"low", "info"}, nil},
		{`{"severity": {"$gt": "medium", "$lte": "high"}}`, nil, []string{"high"}, nil},
		{`{"severity": {"$gt": "critical"}}`, nil, []string{}, nil},
		{`{"severity": "low", "$and": [{"severity": {"$gte": "high"}}]}`, nil, []string{}, nil},
		{`{"event_type": ["a", "b"], "$and": [{"event_type": ["b", "c"]}]}`, []string{"b"}, nil, nil},
		{`{"$or": [{"event_type": "a"}, {"event_type": "b", "severity": "low"}]}`, []string{"a", "b"}, nil, nil},
		{`{"$or": [{"event_type": "a", "severity": "high"}, {"event_type": "b", "severity": "low"}]}`, []string{"a", "b"}, []string{"high", "low"}, nil},
		{`{"$or": [{"event_type": "a"}, {"host": "b"}]}`, nil, nil, nil},
		// Negations and nulls pin nothing.
		{`{"event_type": {"$ne": "a"}}`, nil, nil, nil},
		{`{"event_type": {"$nin": ["a"]}}`, nil, nil, nil},
		{`{"$not": {"event_type": "a"}}`, nil, nil, nil},
		{`{"event_type": {"$not": {"$eq": "a"}}}`, nil, nil, nil},
		{`{"event_type": null}`, nil, nil, nil},
		{`{"event_type": ["a", null]}`, nil, nil, nil},
		{`{"event_type": {"$regex": "^a$"}}`, nil, nil, nil},
		{`{"severity": {"$regex": "^hi"}}`, nil, nil, nil},
		{`{"event_data.scoring.severity": "high"}`, nil, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			types, sevs, sources := mustCompile(t, c.cond).Keys()
			require.Equal(t, c.types, types, "event types")
			require.Equal(t, c.sevs, sevs, "severities")
			require.Equal(t, c.sources, sources, "sources")
		})
	}
}
