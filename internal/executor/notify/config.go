package notifyexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/reflex-ops/reflex/internal/executor"
)

// Type is the executor type this package runs: {"type": "notification", ...}.
const Type = "notification"

// Defaults and bounds of a Config.
const (
	// DefaultTimeout bounds the sending to all channels when the
	// definition sets no timeout and the step none either.
	DefaultTimeout = 30 * time.Second
	// MaxTimeout is the longest timeout a definition may set.
	MaxTimeout = 10 * time.Minute
	// MaxChannels bounds the channels of one definition.
	MaxChannels = 16
	// MaxChannelName bounds a channel's name.
	MaxChannelName = 200

	maxTitleTemplate = 4 << 10  // the title as written
	maxTitle         = 8 << 10  // the title once rendered
	maxTextTemplate  = 64 << 10 // the text as written
	maxText          = 64 << 10 // the text once rendered
)

// Config is a notification step as an action definition writes it, once
// Parse has applied the defaults. A Config that Validate accepts can be
// given to New.
type Config struct {
	// Channels are the names of the notification policy's receivers to
	// send to ("oncall-slack"), each once, at most MaxChannels.
	Channels []string
	// Title is a template (see executor.Render) of the notification's
	// title: "{{.event.title}}". Required.
	Title string
	// Text is an optional template of the message below the title.
	Text string
	// Timeout bounds the sending to all channels: DefaultTimeout when
	// absent, at most MaxTimeout. A step's own timeout (Request.Timeout)
	// takes precedence.
	Timeout time.Duration
}

// Parse decodes spec (its Type must be "notification") strictly: every
// key other than "type" must be one of channels, title, text, timeout (a
// duration such as "30s"), once, with a value of its type (a JSON null
// is not a value); then it applies the defaults and validates. Errors
// wrap executor.ErrInvalid and name the key.
func Parse(spec executor.Spec) (Config, error) {
	if spec.Type != Type {
		return Config{}, invalid("executor type %s is not %q", executor.Quote(spec.Type), Type)
	}
	fields, err := executor.Object(spec.Config)
	if err != nil {
		return Config{}, invalid("%v", err)
	}
	c := Config{Timeout: DefaultTimeout}
	for _, f := range fields {
		var err error
		switch f.Key {
		case "type":
			// Read by executor.ParseSpec.
		case "channels":
			c.Channels, err = decodeStrings(f.Val)
		case "title":
			err = executor.DecodeString(f.Val, &c.Title)
		case "text":
			err = executor.DecodeString(f.Val, &c.Text)
		case "timeout":
			c.Timeout, err = decodeDuration(f.Val)
		default:
			return Config{}, invalid("unknown key %s (want channels, title, text, timeout)", executor.Quote(f.Key))
		}
		if err != nil {
			return Config{}, invalid("%s: %v", f.Key, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks a Config as a whole: one to MaxChannels channels, each
// a name without control characters or surrounding blanks and at most
// MaxChannelName bytes, none twice; a title, and a text, whose templates
// parse; the timeout above 0 and at most MaxTimeout. Whether a channel
// is a receiver of the notification policy is checked when the step
// runs: the policy may change in between. Errors wrap
// executor.ErrInvalid and name the field.
func (c Config) Validate() error {
	switch {
	case len(c.Channels) == 0:
		return invalid("channels: at least one receiver of the notification policy is required")
	case len(c.Channels) > MaxChannels:
		return invalid("channels: %d channels, at most %d", len(c.Channels), MaxChannels)
	}
	seen := make(map[string]bool, len(c.Channels))
	for i, ch := range c.Channels {
		switch {
		case ch == "":
			return invalid("channels: item %d is empty", i)
		case len(ch) > MaxChannelName:
			return invalid("channels: item %d is longer than %d bytes", i, MaxChannelName)
		case strings.TrimSpace(ch) != ch || strings.IndexFunc(ch, unicode.IsControl) >= 0:
			return invalid("channels: item %d %s: a receiver name has no surrounding blanks or control characters", i, executor.Quote(ch))
		case seen[ch]:
			return invalid("channels: %s appears more than once", executor.Quote(ch))
		}
		seen[ch] = true
	}
	switch {
	case strings.TrimSpace(c.Title) == "":
		return invalid(`title is required (for example "{{.event.title}}")`)
	case len(c.Title) > maxTitleTemplate:
		return invalid("title: longer than %d bytes", maxTitleTemplate)
	case len(c.Text) > maxTextTemplate:
		return invalid("text: longer than %d bytes", maxTextTemplate)
	}
	if err := checkTemplate(c.Title); err != nil {
		return invalid("title: %v", err)
	}
	if err := checkTemplate(c.Text); err != nil {
		return invalid("text: %v", err)
	}
	if c.Timeout <= 0 || c.Timeout > MaxTimeout {
		return invalid("timeout %s: want above 0 and at most %s", c.Timeout, MaxTimeout)
	}
	return nil
}

// checkTemplate checks that tmpl parses, with text/template's error
// (the position and the action), not executor.Check's, which quotes the
// whole template.
func checkTemplate(tmpl string) error {
	if err := executor.Check(tmpl); err != nil {
		return cause(err)
	}
	return nil
}

// cause returns the innermost error of executor.Check's and
// executor.Render's.
func cause(err error) error {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := m.Unwrap(); len(errs) > 0 {
			return errs[len(errs)-1]
		}
	}
	return errors.New("template does not parse")
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("notifyexec: %w: %s", executor.ErrInvalid, fmt.Sprintf(format, args...))
}

func decodeStrings(v json.RawMessage) ([]string, error) {
	var raw []json.RawMessage
	if executor.IsNull(v) || json.Unmarshal(v, &raw) != nil {
		return nil, errors.New("want a list of strings")
	}
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		var s string
		if err := executor.DecodeString(r, &s); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func decodeDuration(v json.RawMessage) (time.Duration, error) {
	var s string
	if err := executor.DecodeString(v, &s); err != nil {
		return 0, errors.New(`want a duration such as "30s"`)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf(`%s: want a positive duration such as "30s"`, executor.Quote(s))
	}
	return d, nil
}
