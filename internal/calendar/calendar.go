// Package calendar holds business hours: weekly spans of time in a time
// zone, with holidays, as --business-hours, --timezone and --holidays give
// them. The context analyzer answers from it whether an instant is inside
// business hours and when that next changes.
package calendar

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones also where the system has no zoneinfo (scratch images)
)

// horizon bounds the search of NextChange: a calendar whose state does not
// change within it (no spans, or every hour of the week) reports none.
const horizon = 400 * 24 * time.Hour

// maxSpans and maxHolidays bound a calendar.
const (
	maxSpans    = 64
	maxHolidays = 1000
)

// Calendar is a weekly calendar of business hours. It is immutable and
// safe for concurrent use.
type Calendar struct {
	spec     string
	loc      *time.Location
	days     [7][]span // by time.Weekday, sorted, merged
	holidays map[date]bool
}

// span is [start, end) in minutes after local midnight; end may be 1440.
type span struct{ start, end int }

type date struct {
	y int
	m time.Month
	d int
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Parse reads a calendar: spec is comma-separated spans "DAYS HH:MM-HH:MM"
// where DAYS is a day (Mon) or a range of days (Mon-Fri, Fri-Mon wraps),
// times are local to tz (an IANA name such as Europe/Paris; "" is UTC)
// and the end is after the start (24:00 is the end of the day); holidays
// are dates (2026-12-25), each outside business hours all day. An empty
// spec is a calendar with no business hours.
func Parse(spec, tz string, holidays []string) (*Calendar, error) {
	c := &Calendar{spec: strings.TrimSpace(spec), holidays: map[date]bool{}}
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("calendar: time zone %q: unknown (want an IANA name such as Europe/Paris)", tz)
	}
	c.loc = loc
	if c.spec != "" {
		parts := strings.Split(c.spec, ",")
		if len(parts) > maxSpans {
			return nil, fmt.Errorf("calendar: more than %d spans", maxSpans)
		}
		for _, part := range parts {
			if err := c.addSpan(strings.TrimSpace(part)); err != nil {
				return nil, err
			}
		}
		for d := range c.days {
			c.days[d] = merge(c.days[d])
		}
	}
	if len(holidays) > maxHolidays {
		return nil, fmt.Errorf("calendar: more than %d holidays", maxHolidays)
	}
	for _, h := range holidays {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, h)
		if err != nil {
			return nil, fmt.Errorf("calendar: holiday %q: want a date such as 2026-12-25", h)
		}
		c.holidays[date{t.Year(), t.Month(), t.Day()}] = true
	}
	return c, nil
}

func (c *Calendar) addSpan(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("calendar: span %q: %s (want e.g. Mon-Fri 09:00-18:00)", s, why)
	}
	daysPart, hoursPart, ok := strings.Cut(s, " ")
	if !ok {
		return bad("want days, a space, then hours")
	}
	hoursPart = strings.TrimSpace(hoursPart)
	from, to, ok := strings.Cut(daysPart, "-")
	first, ok1 := dayNames[strings.ToLower(from)]
	last := first
	ok2 := true
	if ok {
		last, ok2 = dayNames[strings.ToLower(to)]
	}
	if !ok1 || !ok2 {
		return bad("unknown day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun")
	}
	hs, he, ok := strings.Cut(hoursPart, "-")
	if !ok {
		return bad("want hours HH:MM-HH:MM")
	}
	start, err1 := minutes(hs)
	end, err2 := minutes(he)
	if err1 != nil || err2 != nil {
		return bad("hours must be HH:MM, 00:00 to 24:00")
	}
	if end <= start {
		return bad("the end must be after the start (split a night shift at midnight)")
	}
	for d := first; ; d = (d + 1) % 7 {
		c.days[d] = append(c.days[d], span{start, end})
		if d == last {
			break
		}
	}
	return nil
}

func minutes(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, errors.New("bad time")
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, errors.New("bad time")
	}
	return hh*60 + mm, nil
}

func merge(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var out []span
	for _, s := range spans {
		if n := len(out); n > 0 && s.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}

// String is the spec the calendar was parsed from.
func (c *Calendar) String() string { return c.spec }

// Location is the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Holiday reports whether t falls on a holiday (in the calendar's zone).
func (c *Calendar) Holiday(t time.Time) bool {
	lt := t.In(c.loc)
	return c.holidays[date{lt.Year(), lt.Month(), lt.Day()}]
}

// intervals are the business hours of the local day of y-m-d as instants,
// none on a holiday.
func (c *Calendar) intervals(y int, m time.Month, d int) [][2]time.Time {
	if c.holidays[date{y, m, d}] {
		return nil
	}
	wd := time.Date(y, m, d, 12, 0, 0, 0, c.loc).Weekday()
	var out [][2]time.Time
	for _, s := range c.days[wd] {
		out = append(out, [2]time.Time{
			time.Date(y, m, d, 0, s.start, 0, 0, c.loc),
			time.Date(y, m, d, 0, s.end, 0, 0, c.loc),
		})
	}
	return out
}

// Inside reports whether t is inside business hours.
func (c *Calendar) Inside(t time.Time) bool {
	lt := t.In(c.loc)
	// A span of the day before may reach past midnight only at 24:00, so
	// the local day is enough.
	for _, iv := range c.intervals(lt.Year(), lt.Month(), lt.Day()) {
		if !t.Before(iv[0]) && t.Before(iv[1]) {
			return true
		}
	}
	return false
}

// NextChange returns the first instant after t at which Inside changes,
// and false when it does not change within 400 days.
func (c *Calendar) NextChange(t time.Time) (time.Time, bool) {
	cur := c.Inside(t)
	lt := t.In(c.loc)
	y, m, d := lt.Year(), lt.Month(), lt.Day()
	for i := 0; i <= int(horizon/(24*time.Hour)); i++ {
		var bounds []time.Time
		for _, iv := range c.intervals(y, m, d+i) {
			bounds = append(bounds, iv[0], iv[1])
		}
		// Midnight: a holiday or a day without spans can end a span of
		// 24:00 the day before.
		bounds = append(bounds, time.Date(y, m, d+i, 0, 0, 0, 0, c.loc), time.Date(y, m, d+i+1, 0, 0, 0, 0, c.loc))
		slices.SortFunc(bounds, func(a, b time.Time) int { return a.Compare(b) })
		for _, b := range bounds {
			if b.After(t) && c.Inside(b) != cur {
				return b, true
			}
		}
	}
	return time.Time{}, false
}
