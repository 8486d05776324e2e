package calendar

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustParse(t *testing.T, spec, tz string, holidays ...string) *Calendar {
	t.Helper()
	c, err := Parse(spec, tz, holidays)
	require.NoError(t, err)
	return c
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ spec, tz, holiday, want string }{
		{"Mon-Fri", "", "", "want days, a space"},
		{"Mon-Fry 09:00-18:00", "", "", "unknown day"},
		{"Mon 9:00-18:00", "", "", "HH:MM"},
		{"Mon 09:00-25:00", "", "", "HH:MM"},
		{"Mon 18:00-09:00", "", "", "after the start"},
		{"Mon 09:00", "", "", "HH:MM-HH:MM"},
		{"Mon-Fri 09:00-18:00", "Mars/Olympus", "", "time zone"},
		{"Mon-Fri 09:00-18:00", "", "25/12/2026", "holiday"},
	} {
		t.Run(c.spec+c.tz+c.holiday, func(t *testing.T) {
			_, err := Parse(c.spec, c.tz, []string{c.holiday})
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestInsideAndNextChange(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		require.NoError(t, err)
		return v
	}
	// 2026-12-04 is a Friday; 2026-12-25 a Friday and a holiday.
	cal := mustParse(t, "Mon-Fri 09:00-12:30, Mon-Fri 13:30-18:00, Sat 10:00-14:00", "Europe/Paris", "2026-12-25")
	for _, c := range []struct {
		now    string
		inside bool
		next   string
	}{
		{"2026-12-04 08:59", false, "2026-12-04 09:00"},
		{"2026-12-04 09:00", true, "2026-12-04 12:30"},
		{"2026-12-04 12:45", false, "2026-12-04 13:30"},
		{"2026-12-04 18:00", false, "2026-12-05 10:00"}, // Saturday morning
		{"2026-12-05 15:00", false, "2026-12-07 09:00"}, // Monday
		{"2026-12-24 17:00", true, "2026-12-24 18:00"},
		{"2026-12-24 18:30", false, "2026-12-26 10:00"}, // the holiday is skipped
		{"2026-12-25 10:00", false, "2026-12-26 10:00"},
	} {
		t.Run(c.now, func(t *testing.T) {
			now := at(c.now)
			require.Equal(t, c.inside, cal.Inside(now))
			next, ok := cal.NextChange(now)
			require.True(t, ok)
			require.True(t, at(c.next).Equal(next), "next %v, want %s", next.In(paris), c.next)
		})
	}
	require.True(t, cal.Holiday(at("2026-12-25 23:59")))
	require.False(t, cal.Holiday(at("2026-12-26 00:00")))
	// In UTC, 08:30 is 09:30 in Paris (winter time).
	require.True(t, cal.Inside(time.Date(2026, 12, 4, 8, 30, 0, 0, time.UTC)))
}

func TestDaylightSaving(t *testing.T) {
	cal := mustParse(t, "Sun 01:00-04:00", "Europe/Paris")
	// 2026-03-29: clocks go from 02:00 to 03:00 in Paris; the span lasts
	// two hours that day.
	start := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC) // 01:00 Paris (CET)
	require.True(t, cal.Inside(start))
	end, ok := cal.NextChange(start)
	require.True(t, ok)
	require.Equal(t, 2*time.Hour, end.Sub(start))
}

func TestEdges(t *testing.T) {
	empty := mustParse(t, "", "")
	require.False(t, empty.Inside(time.Now()))
	_, ok := empty.NextChange(time.Now())
	require.False(t, ok, "no business hours: no change")

	always := mustParse(t, "Mon-Sun 00:00-24:00", "UTC")
	require.True(t, always.Inside(time.Now()))
	_, ok = always.NextChange(time.Now())
	require.False(t, ok)

	// A wrapping range and a span to midnight joined with the next day's.
	cal := mustParse(t, "Fri-Mon 00:00-24:00", "UTC")
	fri := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	require.True(t, cal.Inside(fri))
	next, ok := cal.NextChange(fri)
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), next, "Tuesday midnight")
	require.False(t, cal.Inside(time.Date(2026, 12, 9, 12, 0, 0, 0, time.UTC)))
	require.Equal(t, "Fri-Mon 00:00-24:00", cal.String())
}

// FuzzParse: any spec either fails to parse or gives a calendar whose
// next change, when there is one, is later and flips Inside.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"Mon-Fri 09:00-18:00", "Sat 10:00-14:00, Sun 00:00-24:00", "Fri-Mon 22:00-23:59", "Mon 9-5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := Parse(spec, "Europe/Paris", nil)
		if err != nil {
			return
		}
		now := time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC)
		if next, ok := c.NextChange(now); ok {
			require.True(t, next.After(now))
			require.NotEqual(t, c.Inside(now), c.Inside(next))
		}
	})
}
