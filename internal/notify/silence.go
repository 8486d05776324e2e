package notify

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Silence mutes the alerts its matchers select from StartsAt until
// EndsAt: such an alert still fires its rule and is recorded (status
// silenced), and it is not sent. Matchers map a label to a value or to a
// list of values (the value is one of them), as route matchers do: each
// value a string, or a list of strings, as JSON decodes them ([]any) or as
// Go spells them ([]string); numbers stand for their decimal text.
type Silence struct {
	ID        int64          `json:"id"`
	Matchers  map[string]any `json:"matchers"`
	StartsAt  time.Time      `json:"starts_at"`
	EndsAt    time.Time      `json:"ends_at"`
	CreatedBy string         `json:"created_by"`
	Comment   string         `json:"comment"`
}

// Bounds of a silence.
const (
	maxSilenceMatchers = 64
	maxSilenceText     = 4096 // created_by, comment
)

// Validate checks s as POST /api/v1/silences takes it: starts_at and
// ends_at set, ends_at after starts_at, at least one matcher, each of a
// known shape, and at least one that does not select every alert (a
// label matched only against "", which every alert without the label has).
// Its errors are *FieldError naming the field.
func (s *Silence) Validate() error {
	if s.StartsAt.IsZero() {
		return perr("starts_at", "required")
	}
	if s.EndsAt.IsZero() {
		return perr("ends_at", "required")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return perr("ends_at", "must be after starts_at")
	}
	if len(s.Matchers) == 0 {
		return perr("matchers", "at least one matcher is required")
	}
	if len(s.Matchers) > maxSilenceMatchers {
		return perr("matchers", "more than %d matchers", maxSilenceMatchers)
	}
	m, err := matchersFromAny(s.Matchers)
	if err != nil {
		var pe *FieldError
		if errors.As(err, &pe) {
			return &FieldError{Path: field("matchers", pe.Path), Problem: pe.Problem}
		}
		return fmt.Errorf("matchers: %w", err)
	}
	selective := false
	for _, values := range m {
		if slices.ContainsFunc(values, func(v string) bool { return v != "" }) {
			selective = true
			break
		}
	}
	if !selective {
		return perr("matchers", "every matcher matches the empty value, which would silence every alert")
	}
	if len(s.CreatedBy) > maxSilenceText {
		return perr("created_by", "longer than %d bytes", maxSilenceText)
	}
	if len(s.Comment) > maxSilenceText {
		return perr("comment", "longer than %d bytes", maxSilenceText)
	}
	return nil
}

// Active reports whether s mutes alerts at now: StartsAt <= now < EndsAt.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Matches reports whether s's matchers select a, whether or not s is
// active. A silence whose matchers are not of a known shape, or that has
// none, matches nothing.
func (s *Silence) Matches(a Alert) bool {
	if len(s.Matchers) == 0 {
		return false
	}
	m, err := matchersFromAny(s.Matchers)
	if err != nil {
		return false
	}
	return m.Matches(a)
}
