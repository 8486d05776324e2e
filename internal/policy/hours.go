package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/calendar"
)

// Hours is when unattended automation may run: on Days, from From to To
// local to TimeZone. A From later than To spans midnight (22:00 to 06:00
// runs from 22:00 on each day of Days to 06:00 the next morning).
type Hours struct {
	// Days are days (mon) or ranges of days (mon-fri, fri-mon wraps),
	// case-insensitive; empty: every day.
	Days []string `json:"days,omitempty" yaml:"days,omitempty"`
	// From and To are HH:MM (To may be 24:00). Required.
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
	// TimeZone is an IANA name such as Europe/Paris; "": UTC.
	TimeZone string `json:"time_zone,omitempty" yaml:"time_zone,omitempty"`
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// maxDays bounds Hours.Days.
const maxDays = 7

// days returns the set of days of h.Days.
func (h Hours) days() ([7]bool, error) {
	var set [7]bool
	if len(h.Days) == 0 {
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	if len(h.Days) > maxDays {
		return set, bad("automation_hours.days", "more than %d entries", maxDays)
	}
	for i, d := range h.Days {
		from, to, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(d)), "-")
		first, ok1 := weekdays[from]
		last, ok2 := first, true
		if isRange {
			last, ok2 = weekdays[to]
		}
		if !ok1 || !ok2 {
			return set, bad(fmt.Sprintf("automation_hours.days[%d]", i), "%q: want a day (mon ... sun) or a range (mon-fri)", clip(d))
		}
		for w := first; ; w = (w + 1) % 7 {
			set[w] = true
			if w == last {
				break
			}
		}
	}
	return set, nil
}

// calendar compiles h into a calendar of the hours automation may run.
func (h Hours) calendar() (*calendar.Calendar, error) {
	days, err := h.days()
	if err != nil {
		return nil, err
	}
	from, err := hhmm(h.From)
	if err != nil {
		return nil, bad("automation_hours.from", "%q: %v", clip(h.From), err)
	}
	to, err := hhmm(h.To)
	if err != nil {
		return nil, bad("automation_hours.to", "%q: %v", clip(h.To), err)
	}
	if from == to {
		return nil, bad("automation_hours.to", "equals from (for every hour use 00:00 to 24:00)")
	}
	if from == 24*60 {
		return nil, bad("automation_hours.from", "24:00 is only an end")
	}
	var spans []string
	for w, on := range days {
		if !on {
			continue
		}
		if from < to {
			spans = append(spans, fmt.Sprintf("%s %s-%s", dayNames[w], clock(from), clock(to)))
			continue
		}
		spans = append(spans, fmt.Sprintf("%s %s-24:00", dayNames[w], clock(from)))
		if to > 0 {
			spans = append(spans, fmt.Sprintf("%s 00:00-%s", dayNames[(w+1)%7], clock(to)))
		}
	}
	c, err := calendar.Parse(strings.Join(spans, ","), h.TimeZone, nil)
	if err != nil {
		return nil, bad("automation_hours.time_zone", "%q: %v", clip(h.TimeZone), err)
	}
	return c, nil
}

// Inside reports whether t is inside the automation hours. Hours that do
// not validate are never inside.
func (h Hours) Inside(t time.Time) bool {
	c, err := h.calendar()
	return err == nil && c.Inside(t)
}

// String describes the hours for a reason: "Mon-Fri 08:00-18:00 Europe/Paris".
func (h Hours) String() string {
	days := "every day"
	if len(h.Days) > 0 {
		days = strings.Join(h.Days, ",")
	}
	tz := h.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	return fmt.Sprintf("%s %s-%s %s", days, h.From, h.To, tz)
}

func hhmm(s string) (int, error) {
	hs, ms, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(hs) != 2 || len(ms) != 2 {
		return 0, errors.New("want HH:MM")
	}
	for _, c := range hs + ms {
		if c < '0' || c > '9' {
			return 0, errors.New("want HH:MM")
		}
	}
	hh := int(hs[0]-'0')*10 + int(hs[1]-'0')
	mm := int(ms[0]-'0')*10 + int(ms[1]-'0')
	if mm > 59 || hh*60+mm > 24*60 {
		return 0, errors.New("want HH:MM from 00:00 to 24:00")
	}
	return hh*60 + mm, nil
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
