package executor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestObject(t *testing.T) {
	fs, err := Object([]byte(`{"type": "http", "url": "x", "n": null}`))
	require.NoError(t, err)
	require.Len(t, fs, 3)
	require.Equal(t, "url", fs[1].Key)
	require.JSONEq(t, `"x"`, string(fs[1].Val))
	require.True(t, IsNull(fs[2].Val))

	var s string
	require.NoError(t, DecodeString(fs[1].Val, &s))
	require.Equal(t, "x", s)
	require.Error(t, DecodeString(fs[2].Val, &s), "null is not a string")

	for doc, msg := range map[string]string{
		`[1]`:                  "want a JSON object",
		`{"a": 1, "a": 2}`:     `key "a" appears more than once`,
		`{"a": 1} {}`:          "data after the object",
		`{"a": }`:              "not valid JSON",
		`{"URL": 1, "URL": 1}`: "appears more than once",
	} {
		_, err := Object([]byte(doc))
		require.ErrorContains(t, err, msg, doc)
	}
	require.Equal(t, `"a"`, Quote("a"))
	require.Equal(t, `"`+strings.Repeat("a", 64)+`..."`, Quote(strings.Repeat("a", 100)))
}
