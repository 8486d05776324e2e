package validate

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/store"
)

func st(status, validation string) store.StepState {
	return store.StepState{Status: status, Validation: validation}
}

func TestOutcome(t *testing.T) {
	ok := st(store.StepSucceeded, "")
	passed := st(store.StepSucceeded, "passed: exit_code: exit status 0")
	invalid := st(store.StepSucceeded, "failed: output_matches: output (6 bytes) does not match \"OK\"")
	waiting := st(store.StepSucceeded, "pending: no_new_event_minutes: due at 2026-03-02T10:15:00Z")
	quietOK := st(store.StepSucceeded, QuietSummary(true, "no new event"))
	quietBad := st(store.StepSucceeded, QuietSummary(false, "new event 9"))
	failed := st(store.StepFailed, "")
	skipped := st(store.StepSkipped, "")

	successful, failedO, partial := string(learning.Successful), string(learning.Failed), string(learning.PartiallySuccessful)
	for _, tc := range []struct {
		name  string
		steps []store.StepState
		want  string
	}{
		{"nothing", nil, ""},
		{"all succeeded", []store.StepState{ok, passed}, successful},
		{"all failed", []store.StepState{failed, failed}, failedO},
		{"some", []store.StepState{ok, failed}, partial},
		{"a failed validation is a failure", []store.StepState{ok, invalid}, partial},
		{"only a failed validation", []store.StepState{invalid}, failedO},
		{"skipped steps are left out", []store.StepState{ok, skipped}, successful},
		{"failed then skipped", []store.StepState{failed, skipped, skipped}, failedO},
		{"pending in an ended execution did not run", []store.StepState{ok, st(store.StepPending, "")}, successful},
		{"all skipped: nothing ran", []store.StepState{skipped}, ""},
		{"a running step: not ended", []store.StepState{ok, st(store.StepRunning, "")}, ""},
		{"waiting for approval: not ended", []store.StepState{ok, st(store.StepWaitingApproval, "")}, ""},
		{"a quiet check pending: not known yet", []store.StepState{ok, waiting}, ""},
		{"quiet check passed", []store.StepState{ok, quietOK}, successful},
		{"quiet check failed", []store.StepState{ok, quietBad}, partial},
		{"rolled back: the work is undone", []store.StepState{st(store.StepRolledBack, ""), failed}, failedO},
		{"unknown counts as not succeeded", []store.StepState{ok, st(store.StepUnknown, "")}, partial},
		{"cancelled counts as not succeeded", []store.StepState{st(store.StepCancelled, "")}, failedO},
		{"an unknown status counts as not succeeded", []store.StepState{ok, st("exploded", "")}, partial},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Outcome(tc.steps))
		})
	}
}
