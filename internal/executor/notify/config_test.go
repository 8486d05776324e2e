package notifyexec

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/executor"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, js string
		want     Config
		err      string
	}{
		{"example", `{"type":"notification","channels":["oncall-slack"],"title":"{{.event.title}}","text":"restart of {{.event.source_host}} failed"}`,
			Config{Channels: []string{"oncall-slack"}, Title: "{{.event.title}}", Text: "restart of {{.event.source_host}} failed", Timeout: DefaultTimeout}, ""},
		{"timeout", `{"type":"notification","channels":["a","b"],"title":"t","timeout":"5s"}`,
			Config{Channels: []string{"a", "b"}, Title: "t", Timeout: 5 * time.Second}, ""},
		{"unknown key", `{"type":"notification","channels":["a"],"title":"t","severity":"high"}`, Config{}, `unknown key "severity"`},
		{"keys are case-sensitive", `{"type":"notification","Channels":["a"],"title":"t"}`, Config{}, `unknown key "Channels"`},
		{"repeated key", `{"type":"notification","channels":["a"],"channels":["b"],"title":"t"}`, Config{}, "appears more than once"},
		{"no channels", `{"type":"notification","title":"t"}`, Config{}, "channels: at least one"},
		{"empty channels", `{"type":"notification","channels":[],"title":"t"}`, Config{}, "channels: at least one"},
		{"channel twice", `{"type":"notification","channels":["a","a"],"title":"t"}`, Config{}, `"a" appears more than once`},
		{"blank channel", `{"type":"notification","channels":[" a"],"title":"t"}`, Config{}, "surrounding blanks"},
		{"empty channel", `{"type":"notification","channels":[""],"title":"t"}`, Config{}, "item 0 is empty"},
		{"channel not a string", `{"type":"notification","channels":[1],"title":"t"}`, Config{}, "channels: item 0: want a string"},
		{"null", `{"type":"notification","channels":null,"title":"t"}`, Config{}, "want a list of strings"},
		{"no title", `{"type":"notification","channels":["a"]}`, Config{}, "title is required"},
		{"bad template", `{"type":"notification","channels":["a"],"title":"{{.event.title"}`, Config{}, "title: template"},
		{"bad text template", `{"type":"notification","channels":["a"],"title":"t","text":"{{if}}"}`, Config{}, "text: template"},
		{"long timeout", `{"type":"notification","channels":["a"],"title":"t","timeout":"11m"}`, Config{}, "at most 10m0s"},
		{"bad timeout", `{"type":"notification","channels":["a"],"title":"t","timeout":"soon"}`, Config{}, "want a positive duration"},
		{"trailing data", `{"type":"notification","channels":["a"],"title":"t"} {}`, Config{}, "data after the object"},
		{"too many channels", `{"type":"notification","channels":["` + strings.Repeat(`x","`, MaxChannels) + `y"],"title":"t"}`, Config{}, "at most 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(executor.Spec{Type: Type, Config: []byte(tc.js)})
			if tc.err != "" {
				require.ErrorIs(t, err, executor.ErrInvalid)
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, c)
		})
	}
}

func TestParseWrongType(t *testing.T) {
	_, err := Parse(executor.Spec{Type: "http", Config: []byte(`{"type":"http"}`)})
	require.ErrorIs(t, err, executor.ErrInvalid)
}
