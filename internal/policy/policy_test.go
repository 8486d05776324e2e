package policy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
)

func TestDefault(t *testing.T) {
	p := Default()
	require.NoError(t, p.Validate())
	require.Equal(t, RiskRule{Unattended: true, MinConfidence: 0.8}, p.RiskLevels["low"])
	require.Equal(t, RiskRule{Unattended: true, MinConfidence: 0.8}, p.RiskLevels["medium"])
	require.False(t, p.RiskLevels["high"].Unattended)
	require.False(t, p.RiskLevels["critical"].Unattended)
	require.True(t, p.RiskLevels["critical"].TwoPerson)
	require.Nil(t, p.Hours)
	require.True(t, p.HoldDuringMaintenance)
	require.True(t, p.HoldDuringChangeFreeze)
	require.Equal(t, time.Hour, time.Duration(p.ApprovalTTL))

	// The full example of the docs is the default.
	data, err := os.ReadFile("testdata/policy.yaml")
	require.NoError(t, err)
	got, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, p, got)
}

func TestParse(t *testing.T) {
	t.Run("empty is the default", func(t *testing.T) {
		for _, in := range []string{"", "  \n", "# nothing\n", "{}"} {
			p, err := Parse([]byte(in))
			require.NoError(t, err, "%q", in)
			require.Equal(t, Default(), p, "%q", in)
		}
	})
	t.Run("fields merge over the defaults", func(t *testing.T) {
		p, err := Parse([]byte("risk_levels:\n  low: {min_confidence: 0.6}\n  critical: {two_person: false}\napproval_ttl: 30m\nhold_during_maintenance: false\n"))
		require.NoError(t, err)
		require.Equal(t, RiskRule{Unattended: true, MinConfidence: 0.6}, p.RiskLevels["low"], "unattended keeps its default")
		require.Equal(t, RiskRule{MinConfidence: 0.95}, p.RiskLevels["critical"])
		require.Equal(t, Default().RiskLevels["medium"], p.RiskLevels["medium"])
		require.Equal(t, 30*time.Minute, time.Duration(p.ApprovalTTL))
		require.False(t, p.HoldDuringMaintenance)
		require.True(t, p.HoldDuringChangeFreeze)
	})
	t.Run("high runs unattended only when said so", func(t *testing.T) {
		p, err := Parse([]byte("risk_levels:\n  high: {min_confidence: 0.5}\n"))
		require.NoError(t, err)
		require.False(t, p.RiskLevels["high"].Unattended)
		p, err = Parse([]byte(`{"risk_levels": {"high": {"unattended": true}}}`))
		require.NoError(t, err)
		require.True(t, p.RiskLevels["high"].Unattended)
		require.Equal(t, DefaultHighMinConfidence, p.RiskLevels["high"].MinConfidence)
		require.False(t, p.RiskLevels["critical"].Unattended)
	})
	t.Run("hours", func(t *testing.T) {
		p, err := Parse([]byte("automation_hours:\n  days: [mon-fri]\n  from: \"08:00\"\n  to: \"18:00\"\n  time_zone: Europe/Paris\n"))
		require.NoError(t, err)
		require.Equal(t, &Hours{Days: []string{"mon-fri"}, From: "08:00", To: "18:00", TimeZone: "Europe/Paris"}, p.Hours)
	})

	bad := []struct {
		name, in, want string
	}{
		{"unknown key", "risk_level: {}\n", "risk_level"},
		{"unknown key json", `{"hold_during_maintenance": true, "oops": 1}`, "oops"},
		{"unknown rule key", "risk_levels:\n  low: {unatended: true}\n", "unatended"},
		{"unknown rule key json", `{"risk_levels": {"low": {"unatended": true}}}`, "unatended"},
		{"unknown hours key", "automation_hours: {from: \"08:00\", to: \"09:00\", zone: UTC}\n", "zone"},
		{"unknown level", "risk_levels:\n  urgent: {unattended: true}\n", "risk_levels.urgent"},
		{"confidence above 1", "risk_levels:\n  low: {min_confidence: 1.5}\n", "risk_levels.low.min_confidence"},
		{"negative confidence", `{"risk_levels": {"medium": {"min_confidence": -0.1}}}`, "risk_levels.medium.min_confidence"},
		{"confidence type", `{"risk_levels": {"medium": {"min_confidence": "high"}}}`, "min_confidence"},
		{"bool type", `{"hold_during_maintenance": "yes please"}`, "hold_during_maintenance"},
		{"ttl", "approval_ttl: soon\n", "soon"},
		{"ttl zero", "approval_ttl: 0s\n", "approval_ttl"},
		{"ttl too long", "approval_ttl: 200h\n", "approval_ttl"},
		{"hours from", "automation_hours: {from: \"8:00\", to: \"18:00\"}\n", "automation_hours.from"},
		{"hours to", "automation_hours: {from: \"08:00\", to: \"25:00\"}\n", "automation_hours.to"},
		{"hours missing to", "automation_hours: {from: \"08:00\"}\n", "automation_hours.to"},
		{"hours equal", "automation_hours: {from: \"08:00\", to: \"08:00\"}\n", "automation_hours.to"},
		{"hours day", "automation_hours: {days: [mon, funday], from: \"08:00\", to: \"18:00\"}\n", "automation_hours.days[1]"},
		{"hours zone", "automation_hours: {from: \"08:00\", to: \"18:00\", time_zone: Mars/Olympus}\n", "automation_hours.time_zone"},
		{"two documents", "approval_ttl: 1h\n---\napproval_ttl: 2h\n", "more than one"},
		{"json trailing", `{"approval_ttl": "1h"} {}`, "after"},
		{"not a mapping", "- a\n- b\n", "want a mapping"},
		{"duplicate key", "approval_ttl: 1h\napproval_ttl: 2h\n", "approval_ttl"},
		{"yaml type names the field", "risk_levels:\n  low: {min_confidence: high}\n", "risk_levels.min_confidence"},
		{"yaml bool", "hold_during_change_freeze: yes\n", "hold_during_change_freeze"},
		{"ttl number", `{"approval_ttl": 5}`, "approval_ttl of type duration"},
		{"non-string key", "1: 2\n", "keys"},
		{"syntax", "risk_levels: [\n", "policy: parse"},
		{"too big", "#" + strings.Repeat("x", MaxPolicySize), "bytes"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "rawPolicy")
			require.NotContains(t, err.Error(), "rawRule")
		})
	}
}

func TestValidate(t *testing.T) {
	p := Default()
	delete(p.RiskLevels, "high")
	require.ErrorContains(t, p.Validate(), "risk_levels.high: missing")

	p = Default()
	p.RiskLevels["extreme"] = RiskRule{}
	require.ErrorContains(t, p.Validate(), "risk_levels.extreme")

	p = Default()
	p.ApprovalTTL = 0
	require.ErrorContains(t, p.Validate(), "approval_ttl")
}

func TestRoundTrip(t *testing.T) {
	p := Default()
	p.Hours = &Hours{Days: []string{"mon-fri", "sun"}, From: "22:00", To: "06:00", TimeZone: "America/New_York"}
	p.RiskLevels["high"] = RiskRule{Unattended: true, MinConfidence: 0.97}
	p.ApprovalTTL = Duration(90 * time.Minute)

	j, err := json.Marshal(p)
	require.NoError(t, err)
	require.Contains(t, string(j), `"approval_ttl":"1h30m0s"`)
	got, err := Parse(j)
	require.NoError(t, err)
	require.Equal(t, p, got)

	y, err := yaml.Marshal(p)
	require.NoError(t, err)
	require.Contains(t, string(y), "approval_ttl: 1h30m0s")
	got, err = Parse(y)
	require.NoError(t, err)
	require.Equal(t, p, got)
}

func TestHours(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	// 2026-03-02 is a Monday.
	at := func(day, h, m int) time.Time { return time.Date(2026, 3, day, h, m, 0, 0, paris) }
	cases := []struct {
		name  string
		h     Hours
		t     time.Time
		fside bool
	}{
		{"weekday inside", Hours{Days: []string{"Mon-Fri"}, From: "08:00", To: "18:00", TimeZone: "Europe/Paris"}, at(2, 8, 0), true},
		{"weekday end excluded", Hours{Days: []string{"mon-fri"}, From: "08:00", To: "18:00", TimeZone: "Europe/Paris"}, at(2, 18, 0), false},
		{"before", Hours{Days: []string{"mon-fri"}, From: "08:00", To: "18:00", TimeZone: "Europe/Paris"}, at(2, 7, 59), false},
		{"saturday", Hours{Days: []string{"mon-fri"}, From: "08:00", To: "18:00", TimeZone: "Europe/Paris"}, at(7, 12, 0), false},
		{"zone matters", Hours{Days: []string{"mon-fri"}, From: "08:00", To: "18:00"}, at(2, 8, 30), false}, // 07:30 UTC
		{"every day", Hours{From: "00:00", To: "24:00"}, at(7, 23, 59), true},
		{"overnight late", Hours{Days: []string{"fri"}, From: "22:00", To: "06:00", TimeZone: "Europe/Paris"}, at(6, 23, 0), true},
		{"overnight next morning", Hours{Days: []string{"fri"}, From: "22:00", To: "06:00", TimeZone: "Europe/Paris"}, at(7, 5, 59), true},
		{"overnight not thursday night", Hours{Days: []string{"fri"}, From: "22:00", To: "06:00", TimeZone: "Europe/Paris"}, at(6, 3, 0), false},
		{"wrapping range", Hours{Days: []string{"sat-mon"}, From: "10:00", To: "11:00", TimeZone: "Europe/Paris"}, at(8, 10, 30), true},
		{"wrapping range excludes", Hours{Days: []string{"sat-mon"}, From: "10:00", To: "11:00", TimeZone: "Europe/Paris"}, at(4, 10, 30), false},
		{"invalid is never inside", Hours{From: "x", To: "24:00"}, at(2, 12, 0), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.fside, tc.h.Inside(tc.t))
		})
	}
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) // a Monday, noon UTC
	officeHours := &Hours{Days: []string{"mon-fri"}, From: "08:00", To: "18:00"}
	nightOnly := &Hours{From: "22:00", To: "06:00"}
	step := func(level string, approval bool) store.Step {
		return store.Step{Name: "restart", Type: "remediation", ActionName: "restart_service", RiskLevel: level, ApprovalRequired: approval}
	}
	explicitHigh := Default()
	explicitHigh.RiskLevels["high"] = RiskRule{Unattended: true, MinConfidence: 0.9}
	noHolds := Default()
	noHolds.HoldDuringMaintenance, noHolds.HoldDuringChangeFreeze = false, false
	withHours := func(h *Hours) Policy { p := Default(); p.Hours = h; return p }

	cases := []struct {
		name                          string
		p                             Policy
		r                             Request
		allow, hold, approval, twoPer bool
		reasons                       []string
	}{
		{"low confident runs", Default(), Request{Step: step("low", false), Confidence: 0.85}, true, false, false, false, nil},
		{"medium at threshold runs", Default(), Request{Step: step("medium", false), Confidence: 0.8}, true, false, false, false, nil},
		{"empty level is medium", Default(), Request{Step: step("", false), Confidence: 0.9}, true, false, false, false, nil},
		{"low unsure needs approval", Default(), Request{Step: step("low", false), Confidence: 0.79}, false, false, true, false,
			[]string{"confidence 0.79 is below the policy's minimum 0.80 for risk level low"}},
		{"NaN confidence needs approval", Default(), Request{Step: step("low", false), Confidence: nanf()}, false, false, true, false, nil},
		{"high never unattended", Default(), Request{Step: step("high", false), Confidence: 1}, false, false, true, false,
			[]string{"policy: risk level high never runs unattended"}},
		{"high explicit unattended", explicitHigh, Request{Step: step("high", false), Confidence: 0.95}, true, false, false, false, nil},
		{"high explicit below its minimum", explicitHigh, Request{Step: step("high", false), Confidence: 0.85}, false, false, true, false, nil},
		{"critical two people", Default(), Request{Step: step("critical", false), Confidence: 1}, false, false, true, true,
			[]string{"policy: risk level critical never runs unattended", "policy: risk level critical needs a second person to approve"}},
		{"unknown level strictest", Default(), Request{Step: step("extreme", false), Confidence: 1}, false, false, true, true, nil},
		{"step requires approval", Default(), Request{Step: store.Step{Name: "kill", RiskLevel: "low", ApprovalRequired: true, ApprovalReason: "the template says so"}, Confidence: 1}, false, false, true, false,
			[]string{"step kill needs approval: the template says so"}},
		{"approved step runs", Default(), Request{Step: step("low", true), Confidence: 1, Approved: true}, true, false, true, false, nil},
		{"approved critical runs", Default(), Request{Step: step("critical", false), Confidence: 0.1, Approved: true}, true, false, true, true, nil},
		{"impact requires approval", Default(), Request{Step: step("low", false), Confidence: 1, ImpactRequiresApproval: true, ImpactReason: "db-01 is critical"}, false, false, true, false,
			[]string{"blast radius: db-01 is critical"}},
		{"paused holds", Default(), Request{Step: step("low", false), Confidence: 1, Paused: true, PausedReason: "paused by alice"}, false, true, false, false,
			[]string{"automation is paused: paused by alice"}},
		{"paused holds approved", Default(), Request{Step: step("high", false), Confidence: 1, Paused: true, Approved: true}, false, true, true, false, nil},
		{"maintenance holds", Default(), Request{Step: step("low", false), Confidence: 1, Conditions: Conditions{Maintenance: true, MaintenanceReason: "window 3"}}, false, true, false, false,
			[]string{"the host is in maintenance: window 3"}},
		{"maintenance holds approved", Default(), Request{Step: step("high", false), Confidence: 1, Approved: true, Conditions: Conditions{Maintenance: true}}, false, true, true, false, nil},
		{"freeze holds", Default(), Request{Step: step("low", false), Confidence: 1, Conditions: Conditions{ChangeFreeze: true, ChangeFreezeReason: "window 4 (change freeze)"}}, false, true, false, false,
			[]string{"the host is in a change freeze: window 4 (change freeze)"}},
		{"holds off", noHolds, Request{Step: step("low", false), Confidence: 1, Conditions: Conditions{Maintenance: true, ChangeFreeze: true}}, true, false, false, false, nil},
		{"inside hours", withHours(officeHours), Request{Step: step("low", false), Confidence: 1}, true, false, false, false, nil},
		{"outside hours holds", withHours(nightOnly), Request{Step: step("low", false), Confidence: 1}, false, true, false, false,
			[]string{"outside the automation hours (every day 22:00-06:00 UTC)"}},
		{"outside hours approved runs", withHours(nightOnly), Request{Step: step("high", false), Confidence: 1, Approved: true}, true, false, true, false, nil},
		{"outside hours, waiting for approval anyway", withHours(nightOnly), Request{Step: step("high", false), Confidence: 1}, false, false, true, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Now = now
			v := tc.p.Evaluate(tc.r)
			require.Equal(t, tc.allow, v.Allow, "allow; reasons %q", v.Reasons)
			require.Equal(t, tc.hold, v.Hold, "hold; reasons %q", v.Reasons)
			require.Equal(t, tc.approval, v.NeedsApproval, "needs approval; reasons %q", v.Reasons)
			require.Equal(t, tc.twoPer, v.TwoPerson, "two person")
			if !v.Allow {
				require.NotEmpty(t, v.Reasons, "a refusal says why")
			}
			if tc.reasons != nil {
				require.Equal(t, tc.reasons, v.Reasons)
			}
		})
	}
}

func nanf() float64 {
	zero := 0.0
	return zero / zero
}

func TestEvaluateAllReasons(t *testing.T) {
	p := Default()
	v := p.Evaluate(Request{
		Step:       store.Step{ActionName: "failover", RiskLevel: "critical", ApprovalRequired: true},
		Confidence: 0.5, Paused: true, ImpactRequiresApproval: true, ImpactReason: "7 hosts depend on db-01",
		Conditions: Conditions{Maintenance: true, ChangeFreeze: true},
		Now:        time.Now(),
	})
	require.False(t, v.Allow)
	require.Equal(t, []string{
		"step failover needs approval: its action or template requires approval",
		"blast radius: 7 hosts depend on db-01",
		"policy: risk level critical never runs unattended",
		"policy: risk level critical needs a second person to approve",
		"automation is paused: the kill switch is on",
		"the host is in maintenance: a maintenance window covers it",
		"the host is in a change freeze: a change freeze covers it",
	}, v.Reasons)
}

func TestConditionsOf(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	w := func(id int64, comment string, end time.Time) maintenance.Window {
		return maintenance.Window{ID: id, Comment: comment, StartsAt: now.Add(-time.Hour), EndsAt: end}
	}
	c := contextual.Context{At: now, Maintenance: contextual.MaintenanceStatus{Active: true, Windows: []maintenance.Window{
		w(1, "kernel upgrade", now.Add(time.Hour)),
		w(2, "Change FREEZE for the release", now.Add(2*time.Hour)),
		w(3, "ended", now), // not active at now
	}}}
	got := ConditionsOf(c)
	require.True(t, got.Maintenance)
	require.Equal(t, "window 1 until 2026-03-02T13:00:00Z (kernel upgrade)", got.MaintenanceReason)
	require.True(t, got.ChangeFreeze)
	require.Equal(t, "window 2 until 2026-03-02T14:00:00Z (Change FREEZE for the release)", got.ChangeFreezeReason)

	require.Equal(t, Conditions{}, ConditionsOf(contextual.Context{At: now}))
	only := ConditionsOf(contextual.Context{At: now, Maintenance: contextual.MaintenanceStatus{Windows: []maintenance.Window{w(5, "code freeze", now.Add(time.Hour))}}})
	require.False(t, only.Maintenance)
	require.True(t, only.ChangeFreeze)
}
