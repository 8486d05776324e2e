package validate

import (
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/store"
)

// Outcome folds the steps of an ended execution into its outcome, the
// value of decision_log.decision_outcome: learning.Successful when every
// step that ran succeeded, learning.Failed when none did,
// learning.PartiallySuccessful when some did.
//
// A step succeeded when its status is succeeded and its validation (see
// Verdict.Summary) did not fail. Steps that did not run (skipped, or
// still pending in an execution that ended) are left out. Steps that
// failed, were cancelled, whose outcome is unknown (the server died
// while they ran), or that were rolled back (their work undone, so a
// rolled-back execution is failed) count as not succeeded.
//
// It returns "" while the outcome is not known yet: a step is running or
// waits for approval, or a succeeded step's quiet check is pending; and
// when no step ran at all. Call it again when that changes.
func Outcome(steps []store.StepState) string {
	ran, ok := 0, 0
	for _, s := range steps {
		switch s.Status {
		case store.StepSkipped, store.StepPending:
			continue
		case store.StepRunning, store.StepWaitingApproval:
			return ""
		case store.StepSucceeded:
			switch ValidationState(s.Validation) {
			case ValidationPending:
				return ""
			case ValidationFailed:
			default:
				ok++
			}
		}
		ran++
	}
	switch {
	case ran == 0:
		return ""
	case ok == ran:
		return string(learning.Successful)
	case ok == 0:
		return string(learning.Failed)
	}
	return string(learning.PartiallySuccessful)
}
