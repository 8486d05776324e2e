package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCanonicalParameters(t *testing.T) {
	type step struct {
		Name    string            `json:"name"`
		Token   string            `json:"approval_token"`
		Headers map[string]string `json:"headers"`
	}
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, `{}`},
		{"null", json.RawMessage(`null`), `{}`},
		{"sorted and compact", json.RawMessage(` { "b" : 2, "a" : [ 1 , 2 ] } `), `{"a":[1,2],"b":2}`},
		{"numbers as written", json.RawMessage(`{"x":1.50,"y":1e3,"z":-0,"big":123456789012345678901234567890}`),
			`{"big":123456789012345678901234567890,"x":1.50,"y":1e3,"z":-0}`},
		{"no HTML escapes", map[string]any{"cmd": "a<b && c>d"}, `{"cmd":"a<b && c>d"}`},
		{"invalid UTF-8 replaced", json.RawMessage("{\"s\":\"a\xffb\"}"), `{"s":"a` + "\uFFFD" + `b"}`},
		{"duplicate names: the last", json.RawMessage(`{"a":1,"a":2}`), `{"a":2}`},
		{"top-level secrets", map[string]any{"password": "hunter2", "user": "ops", "API_KEY": "k", "passwd": 1, "note": "a key"},
			`{"API_KEY":"[redacted]","note":"a key","passwd":"[redacted]","password":"[redacted]","user":"ops"}`},
		{"nested", map[string]any{"executor": map[string]any{"type": "http", "headers": map[string]any{
			"Authorization": "Bearer abc", "X-Auth-Token": "t", "Accept": "json", "Cookie": "c", "Set-Cookie": "c"}}},
			`{"executor":{"headers":{"Accept":"json","Authorization":"[redacted]","Cookie":"[redacted]","Set-Cookie":"[redacted]","X-Auth-Token":"[redacted]"},"type":"http"}}`},
		{"objects in arrays", map[string]any{"steps": []any{
			map[string]any{"name": "a", "secret": "s"},
			[]any{map[string]any{"client_credentials": "c", "id": 1}},
			"password",
		}}, `{"steps":[{"name":"a","secret":"[redacted]"},[{"client_credentials":"[redacted]","id":1}],"password"]}`},
		{"a whole object under a secret name", map[string]any{"ssh_key": map[string]any{"path": "/k", "pem": "..."}, "keyboard": []any{1}},
			`{"keyboard":"[redacted]","ssh_key":"[redacted]"}`},
		{"struct", step{Name: "restart", Token: "tok", Headers: map[string]string{"authorization": "x"}},
			`{"approval_token":"[redacted]","headers":{"authorization":"[redacted]"},"name":"restart"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalParameters(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
			again, err := CanonicalParameters(got)
			require.NoError(t, err)
			require.Equal(t, string(got), string(again), "canonical and redacted already")
		})
	}

	for name, in := range map[string]any{
		"an array":          []int{1},
		"a string":          "x",
		"a number":          json.RawMessage(`1`),
		"not JSON":          json.RawMessage(`{"a":`),
		"two values":        json.RawMessage(`{} {}`),
		"trailing garbage":  json.RawMessage(`{}x`),
		"not encodable":     map[string]any{"f": func() {}},
		"too large":         map[string]any{"s": strings.Repeat("x", MaxParameters)},
		"much too large":    json.RawMessage(`{"s":"` + strings.Repeat("x", 5*MaxParameters) + `"}`),
		"redaction too big": map[string]any{"s": strings.Repeat("x", MaxParameters-20), "key": 1},
	} {
		t.Run("refused/"+name, func(t *testing.T) {
			_, err := CanonicalParameters(in)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestIsSecretName(t *testing.T) {
	for _, n := range []string{"token", "approval_token", "TOKEN", "Secret", "client_secret", "password", "db_passwd",
		"key", "api_key", "KeyFile", "Authorization", "proxy-authorization", "cookie", "Set-Cookie", "credentials"} {
		require.True(t, IsSecretName(n), n)
	}
	for _, n := range []string{"", "host", "argv", "user", "comment", "pass", "auth", "session_id", "tok"} {
		require.False(t, IsSecretName(n), n)
	}
}

// TestCanonical checks the encoding against its definition, written out
// here by hand, and a known hash, so that a change of either is seen.
func TestCanonical(t *testing.T) {
	r := Record{
		Seq: 12, Time: time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.FixedZone("CEST", 7200)),
		Actor: "key-ops", Action: ActionApproval, Subject: "approval:3",
		Parameters: json.RawMessage(`{"comment":"go"}`), KeyID: "00112233aabbccdd", PrevHash: Genesis,
	}
	var want []byte
	for _, f := range []string{"reflex-audit-v1", "12", "2026-05-01T10:00:00.123456Z", "00112233aabbccdd", "key-ops",
		"approval", "approval:3", `{"comment":"go"}`, Genesis} {
		want = binary.BigEndian.AppendUint64(want, uint64(len(f)))
		want = append(want, f...)
	}
	require.Equal(t, want, r.Canonical())

	k, err := NewKey([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	require.Equal(t, "ebc88c5b91f333cc18e70cafbd6d6cfe751b081f53d66037fbfaf087daab3fac", k.sum(r))
	require.Equal(t, "33b24c661158ed84", k.ID())

	// (Both values computed independently: Python's hmac over the fields above.)

	// Moving bytes between neighbouring fields changes the encoding.
	moved := r
	moved.Actor, moved.Action = "key-opsapproval", ""
	require.NotEqual(t, r.Canonical(), moved.Canonical())
	moved = r
	moved.Subject, moved.Parameters = `approval:3{"comment":"go"}`, nil
	require.NotEqual(t, r.Canonical(), moved.Canonical())
}

func TestCanonicalInjectiveOnSeeds(t *testing.T) {
	seeds := canonicalSeeds()
	seen := map[string]int{}
	for i, r := range seeds {
		c := string(r.Canonical())
		if j, dup := seen[c]; dup {
			t.Fatalf("records %d and %d encode alike: %+v %+v", j, i, seeds[j], r)
		}
		seen[c] = i
	}
}

// canonicalSeeds are distinct records, many of them alike but for bytes
// moved between fields.
func canonicalSeeds() []Record {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	base := Record{Seq: 1, Time: at, Actor: "system", Action: ActionDecision, Subject: "decision:1",
		Parameters: json.RawMessage(`{}`), KeyID: "k", PrevHash: Genesis}
	var out []Record
	add := func(f func(r *Record)) {
		r := base
		f(&r)
		out = append(out, r)
	}
	add(func(*Record) {})
	add(func(r *Record) { r.Seq = 11 })
	add(func(r *Record) { r.Seq = 0 })
	add(func(r *Record) { r.Seq = -1 })
	add(func(r *Record) { r.Time = at.Add(time.Microsecond) })
	add(func(r *Record) { r.Actor, r.Action = "systemdecision", "" })
	add(func(r *Record) { r.Actor, r.Action = "syste", "mdecision" })
	add(func(r *Record) { r.Subject, r.Parameters = "decision:1{}", nil })
	add(func(r *Record) { r.Subject, r.Parameters = "", json.RawMessage(`decision:1{}`) })
	add(func(r *Record) { r.KeyID, r.Actor = "ksystem", "" })
	add(func(r *Record) { r.Parameters, r.PrevHash = json.RawMessage(`{}`+Genesis), "" })
	add(func(r *Record) { r.Actor = "system\x00" })
	add(func(r *Record) { r.Actor = "\x00\x00\x00\x00\x00\x00\x00\x06system" })
	add(func(r *Record) { r.Hash = "ignored" }) // Hash is not part of the encoding
	return out[:len(out)-1]
}

func TestCleanText(t *testing.T) {
	require.Equal(t, "ab", cleanText("a\x00b", 10))
	require.Equal(t, "a\uFFFDb", cleanText("a\xffb", 10))
	require.Equal(t, "\u00e9\u00e9", cleanText("\u00e9\u00e9\u00e9", 2))
	require.Equal(t, "abc", cleanText("abc", 3))
}

func TestCleanTime(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	require.Equal(t, time.Date(2026, 5, 1, 11, 0, 0, 123456000, time.UTC), cleanTime(at))
	require.Equal(t, minTime, cleanTime(time.Time{}.Add(-time.Hour)))
	require.Equal(t, maxTime, cleanTime(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)))
}

func TestValidAction(t *testing.T) {
	for _, a := range Actions {
		require.True(t, validAction(a), a)
		require.True(t, a.Known())
	}
	require.True(t, validAction("custom_thing2"))
	require.False(t, Action("custom_thing2").Known())
	for _, a := range []Action{"", "Decision", "2fa", "_x", "a-b", "a b", Action(strings.Repeat("a", MaxAction+1))} {
		require.False(t, validAction(a), a)
	}
	require.True(t, bytes.Equal([]byte(Genesis), bytes.Repeat([]byte("0"), 64)))
}
