package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzCanonicalParameters: for any input, CanonicalParameters returns a
// JSON object in which every secret-named member is redacted, or an
// ErrInvalid; its output is a fixed point (canonical and redacted
// already).
func FuzzCanonicalParameters(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `{"a":1}`, ` {"b" : [1, {"password": "x"}], "a": "<&>"} `,
		`{"Token":{"nested":{"secret":1}},"list":[{"Cookie":"c"},[{"apiKey":2}]]}`,
		`{"n":1.50e+3,"big":123456789012345678901234567890,"neg":-0}`,
		`{"a":1,"a":2}`, "{\"s\":\"\xff\\u0000\"}", `{"x":"\u2028"}`, `[1]`, `"s"`, `{`, `{} {}`,
		`{"authorization":"Bearer x","headers":{"X-Api-Key":"k"},"credentials":[1,2]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := CanonicalParameters(json.RawMessage(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if len(out) > MaxParameters || !utf8.Valid(out) {
			t.Fatalf("output too large or not UTF-8: %q", out)
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		if err := d.Decode(&m); err != nil || m == nil {
			t.Fatalf("output is not a JSON object: %q: %v", out, err)
		}
		checkRedacted(t, m)
		again, err := CanonicalParameters(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q then %q (%v)", out, again, err)
		}
	})
}

// checkRedacted fails unless every member of v whose name is a secret's
// holds Redacted.
func checkRedacted(t *testing.T, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if IsSecretName(k) {
				if e != Redacted {
					t.Fatalf("member %q kept its value %v", k, e)
				}
				continue
			}
			checkRedacted(t, e)
		}
	case []any:
		for _, e := range x {
			checkRedacted(t, e)
		}
	}
}

// FuzzCanonical: the encoding never panics, is injective when bytes move
// between neighbouring fields, and the hash follows it; cleanText gives
// storable text within its bound.
func FuzzCanonical(f *testing.F) {
	for _, s := range canonicalSeeds() {
		f.Add(s.Seq, s.Actor, s.Subject, string(s.Parameters), uint8(3))
	}
	f.Add(int64(-1), "", "", "", uint8(0))
	f.Add(int64(1<<62), "\x00\x00\x00\x00\x00\x00\x00\x01", "\xff\xfe", `{"a":"b"}`, uint8(255))
	k, err := NewKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, seq int64, actor, subject, params string, cut uint8) {
		r := Record{Seq: seq, Time: at, Actor: actor, Action: ActionDecision, Subject: subject,
			Parameters: json.RawMessage(params), KeyID: k.ID(), PrevHash: Genesis}
		c := r.Canonical()
		if !bytes.Equal(c, r.Canonical()) {
			t.Fatal("not deterministic")
		}
		r.Hash = k.sum(r)
		if !k.authentic(r) {
			t.Fatal("a record does not authenticate with its own hash")
		}
		// Move the first n bytes of subject to the end of actor, and of
		// params to the end of subject.
		if n := int(cut) % (len(subject) + 1); n > 0 {
			moved := r
			moved.Actor, moved.Subject = actor+subject[:n], subject[n:]
			if bytes.Equal(c, moved.Canonical()) || k.authentic(moved) {
				t.Fatalf("moving %d bytes from subject to actor is not seen", n)
			}
		}
		if n := int(cut) % (len(params) + 1); n > 0 {
			moved := r
			moved.Subject, moved.Parameters = subject+params[:n], json.RawMessage(params[n:])
			if bytes.Equal(c, moved.Canonical()) || k.authentic(moved) {
				t.Fatalf("moving %d bytes from parameters to subject is not seen", n)
			}
		}
		other := r
		other.Seq = seq + 1
		if k.authentic(other) {
			t.Fatal("a renumbered record authenticates")
		}

		for _, s := range []string{actor, subject, params} {
			ct := cleanText(s, 50)
			if !utf8.ValidString(ct) || bytes.IndexByte([]byte(ct), 0) >= 0 || utf8.RuneCountInString(ct) > 50 {
				t.Fatalf("cleanText(%q) = %q", s, ct)
			}
			if cleanText(ct, 50) != ct {
				t.Fatalf("cleanText not idempotent on %q", s)
			}
		}
	})
}
