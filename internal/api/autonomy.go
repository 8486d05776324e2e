package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/approval"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/autonomous"
	"github.com/reflex-ops/reflex/internal/orchestrator"
	"github.com/reflex-ops/reflex/internal/store"
)

// Bounds of the autonomous API's bodies and streams.
const (
	maxAutonomousBody = 64 << 10
	// streamHeartbeat is how often an execution's event stream sends a
	// comment while nothing changes, so that proxies keep it open.
	streamHeartbeat = 15 * time.Second
	// maxStream bounds how long one stream is served.
	maxStream = 24 * time.Hour
	// defaultPerformanceWindow is the window of GET /metrics.
	defaultPerformanceWindow = 7 * 24 * time.Hour
)

// DecisionList is the answer of GET /api/v1/autonomous/decisions.
type DecisionList struct {
	Decisions []store.Decision `json:"decisions"`
	Count     int              `json:"count"`
}

// AnalyzeAnswer is the answer of POST /api/v1/autonomous/analyze: the
// decision, and whether it was made before (the incident's).
type AnalyzeAnswer struct {
	store.Decision
	Existing bool `json:"existing,omitempty"`
}

// ExecuteAnswer is the answer of POST /api/v1/autonomous/execute.
type ExecuteAnswer struct {
	ExecutionID int64  `json:"execution_id"`
	Status      string `json:"status"`
	DryRun      bool   `json:"dry_run"`
	// Execution is the execution as it stands (for a dry run: its
	// walked plan).
	Execution store.Execution `json:"execution"`
}

// ApprovalList is the answer of GET /api/v1/autonomous/approvals.
type ApprovalList struct {
	Approvals []store.Approval `json:"approvals"`
	Count     int              `json:"count"`
}

// ApprovalAnswer is the answer of approve: the token (shown once) and the
// approval.
type ApprovalAnswer struct {
	ApprovalToken string         `json:"approval_token,omitempty"`
	Approval      store.Approval `json:"approval"`
}

// ApprovalDecision is the body of approve and reject.
type ApprovalDecision struct {
	Comment string `json:"comment"`
}

// PauseRequest is the body of POST /pause.
type PauseRequest struct {
	Reason string `json:"reason"`
}

func (s *autonomousAPI) serviceRoutes(mux *http.ServeMux, svc *autonomous.Service) {
	if svc == nil {
		return
	}
	a := &serviceAPI{autonomousAPI: s, svc: svc}
	mux.Handle("POST /api/v1/autonomous/analyze", s.with(auth.ScopeActionsApprove, a.analyze))
	mux.Handle("POST /api/v1/autonomous/execute", s.with(auth.ScopeActionsApprove, a.execute))
	mux.Handle("GET /api/v1/autonomous/decisions", s.with(auth.ScopeEventsRead, a.decisions))
	mux.Handle("GET /api/v1/autonomous/decisions/{id}", s.with(auth.ScopeEventsRead, a.decision))
	mux.Handle("POST /api/v1/autonomous/feedback", s.with(auth.ScopeActionsApprove, a.feedback))
	mux.Handle("GET /api/v1/autonomous/approvals", s.with(auth.ScopeEventsRead, a.approvals))
	mux.Handle("POST /api/v1/autonomous/approvals/{id}/approve", s.with(auth.ScopeActionsApprove, a.approve))
	mux.Handle("POST /api/v1/autonomous/approvals/{id}/reject", s.with(auth.ScopeActionsApprove, a.reject))
	mux.Handle("GET /api/v1/autonomous/executions/{id}", s.with(auth.ScopeEventsRead, a.execution))
	mux.Handle("GET /api/v1/autonomous/executions/{id}/stream", s.with(auth.ScopeEventsRead, a.stream))
	mux.Handle("POST /api/v1/autonomous/executions/{id}/cancel", s.with(auth.ScopeActionsApprove, a.cancel))
	mux.Handle("POST /api/v1/autonomous/pause", s.with(auth.ScopeActionsApprove, a.pause))
	mux.Handle("POST /api/v1/autonomous/resume", s.with(auth.ScopeActionsApprove, a.resume))
	mux.Handle("GET /api/v1/autonomous/status", s.with(auth.ScopeEventsRead, a.status))
	mux.Handle("GET /api/v1/autonomous/metrics", s.with(auth.ScopeEventsRead, a.performance))
	mux.Handle("GET /api/v1/audit", s.with(auth.ScopeEventsRead, a.auditLog))
}

type serviceAPI struct {
	*autonomousAPI
	svc *autonomous.Service
}

// actor names the principal in decisions and the audit log: the key's id,
// or the admin token's name.
func actor(p auth.Principal) string {
	if p.KeyID != "" {
		return p.KeyID
	}
	return p.Name
}

// fail answers an error of the service with its status.
func (a *serviceAPI) fail(w http.ResponseWriter, r *http.Request, err error, what string) {
	msg := func() string { return trimPrefixes(err.Error(), "autonomous: ", "approval: ", "orchestrator: ") }
	switch {
	case errors.Is(err, autonomous.ErrInvalid), errors.Is(err, approval.ErrInvalid):
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(msg(), "invalid request: "), "")
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, what+": not found", "")
	case errors.Is(err, autonomous.ErrApprovalRequired), errors.Is(err, approval.ErrSelfApproval),
		errors.Is(err, approval.ErrTokenUnknown), errors.Is(err, approval.ErrTokenMismatch), errors.Is(err, approval.ErrTokenExpired):
		writeError(w, http.StatusForbidden, msg(), "")
	case errors.Is(err, autonomous.ErrPaused), errors.Is(err, approval.ErrTokenUsed), errors.Is(err, approval.ErrNotPending),
		errors.Is(err, approval.ErrExpired), errors.Is(err, orchestrator.ErrNotWaiting), errors.Is(err, orchestrator.ErrEnded):
		writeError(w, http.StatusConflict, msg(), "")
	case errors.Is(err, orchestrator.ErrBusy):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, msg(), "")
	default:
		a.unavailable(w, r, err, what)
	}
}

// analyze serves POST /api/v1/autonomous/analyze: 201 with a new
// decision, 200 with the incident's existing one.
func (a *serviceAPI) analyze(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req autonomous.AnalyzeRequest
	if !jsonBody(w, r, &req) {
		return
	}
	d, existing, err := a.svc.Analyze(r.Context(), req, actor(p))
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("event %d", req.EventID))
		return
	}
	status := http.StatusCreated
	if existing {
		status = http.StatusOK
	}
	writeJSON(w, status, AnalyzeAnswer{Decision: d, Existing: existing})
}

// execute serves POST /api/v1/autonomous/execute: 202 with the
// execution's id.
func (a *serviceAPI) execute(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req autonomous.ExecuteRequest
	if !jsonBody(w, r, &req) {
		return
	}
	x, err := a.svc.Execute(r.Context(), req, actor(p))
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("decision %d", req.DecisionID))
		return
	}
	writeJSON(w, http.StatusAccepted, ExecuteAnswer{ExecutionID: x.ID, Status: x.Status, DryRun: x.DryRun, Execution: x})
}

// decisions serves GET /api/v1/autonomous/decisions?event_id=&timerange=.
func (a *serviceAPI) decisions(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"event_id", "incident_id", "timerange", "since", "until", "limit"})
	}
	var q store.DecisionQuery
	if fe == nil {
		q.EventID, fe = optionalID(v.Get("event_id"), "event_id")
	}
	if fe == nil {
		q.IncidentID, fe = optionalID(v.Get("incident_id"), "incident_id")
	}
	if fe == nil && (v.Has("timerange") || v.Has("since")) {
		_, q.Since, _, fe = parseRange(v, a.now(), true)
	}
	if fe == nil {
		q.Limit, fe = parseLimit(v, store.DefaultDecisionLimit, store.MaxDecisionLimit)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	ds, err := a.svc.Decisions(r.Context(), q)
	if err != nil {
		a.fail(w, r, err, "decisions")
		return
	}
	if ds == nil {
		ds = []store.Decision{}
	}
	writeJSON(w, http.StatusOK, DecisionList{Decisions: ds, Count: len(ds)})
}

func optionalID(s, field string) (int64, *fieldError) {
	if s == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badField(field, "must be a positive integer")
	}
	return id, nil
}

// decision serves GET /api/v1/autonomous/decisions/{id}.
func (a *serviceAPI) decision(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, ok := idOnly(w, r, "decision")
	if !ok {
		return
	}
	d, err := a.svc.Decision(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("decision %d", id))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// feedback serves POST /api/v1/autonomous/feedback.
func (a *serviceAPI) feedback(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req autonomous.FeedbackRequest
	if !jsonBody(w, r, &req) {
		return
	}
	d, err := a.svc.Feedback(r.Context(), req, actor(p))
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("decision %d", req.DecisionID))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// approvals serves GET /api/v1/autonomous/approvals: those waiting.
func (a *serviceAPI) approvals(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	as, err := a.svc.Approvals(r.Context())
	if err != nil {
		a.fail(w, r, err, "approvals")
		return
	}
	if as == nil {
		as = []store.Approval{}
	}
	writeJSON(w, http.StatusOK, ApprovalList{Approvals: as, Count: len(as)})
}

// approve serves POST /api/v1/autonomous/approvals/{id}/approve.
func (a *serviceAPI) approve(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id, body, ok := a.approvalBody(w, r)
	if !ok {
		return
	}
	ap, token, err := a.svc.Approve(r.Context(), id, actor(p), body.Comment)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("approval %d", id))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ApprovalAnswer{ApprovalToken: token, Approval: ap})
}

// reject serves POST /api/v1/autonomous/approvals/{id}/reject.
func (a *serviceAPI) reject(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id, body, ok := a.approvalBody(w, r)
	if !ok {
		return
	}
	ap, err := a.svc.Reject(r.Context(), id, actor(p), body.Comment)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("approval %d", id))
		return
	}
	writeJSON(w, http.StatusOK, ApprovalAnswer{Approval: ap})
}

func (a *serviceAPI) approvalBody(w http.ResponseWriter, r *http.Request) (int64, ApprovalDecision, bool) {
	var body ApprovalDecision
	id, fe := pathIDOf(r, "approval")
	if fe == nil {
		fe = noParams(r)
	}
	if fe == nil && r.ContentLength != 0 {
		fe = decodeJSON(w, r, &body, maxAutonomousBody)
	}
	if fe == nil && len(body.Comment) > 4<<10 {
		fe = badField("comment", "at most 4096 bytes")
	}
	if fe != nil {
		writeFieldError(w, fe)
		return 0, body, false
	}
	return id, body, true
}

// execution serves GET /api/v1/autonomous/executions/{id}.
func (a *serviceAPI) execution(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, ok := idOnly(w, r, "execution")
	if !ok {
		return
	}
	x, err := a.svc.Execution(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("execution %d", id))
		return
	}
	writeJSON(w, http.StatusOK, x)
}

// cancel serves POST /api/v1/autonomous/executions/{id}/cancel: 200 with
// the execution, 409 when it has already ended.
func (a *serviceAPI) cancel(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id, ok := idOnly(w, r, "execution")
	if !ok {
		return
	}
	x, err := a.svc.Cancel(r.Context(), id, actor(p))
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("execution %d", id))
		return
	}
	writeJSON(w, http.StatusOK, x)
}

// jsonBody reads the JSON body of a request that takes no query
// parameters into dst; it answers the error itself.
func jsonBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	fe := noParams(r)
	if fe == nil {
		fe = decodeJSON(w, r, dst, maxAutonomousBody)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return false
	}
	return true
}

// idOnly reads the {id} of a request that takes no query parameters; it
// answers the error itself.
func idOnly(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	id, fe := pathIDOf(r, what)
	if fe == nil {
		fe = noParams(r)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return 0, false
	}
	return id, true
}

// ended reports whether an execution's status is final. An execution
// waiting for approval (pending) is not.
func ended(status string) bool {
	switch status {
	case store.ExecCompleted, store.ExecFailed, store.ExecRolledBack, store.ExecRollbackFailed, store.ExecCancelled:
		return true
	}
	return false
}

// stream serves GET /api/v1/autonomous/executions/{id}/stream as
// Server-Sent Events: an "execution" event with the whole execution at
// once and at every change, until it ends (then an "end" event) or the
// client leaves.
func (a *serviceAPI) stream(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, ok := idOnly(w, r, "execution")
	if !ok {
		return
	}
	ch, cancel := a.svc.Subscribe(id)
	defer cancel()
	x, err := a.svc.Execution(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("execution %d", id))
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("execution", x) {
		return
	}
	ctx, stop := context.WithTimeout(r.Context(), maxStream)
	defer stop()
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	for !ended(x.Status) {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case nx, ok := <-ch:
			if !ok {
				// The feed ended: the store has the final state.
				if x, err = a.svc.Execution(ctx, id); err != nil || !send("execution", x) {
					return
				}
				if !ended(x.Status) {
					return
				}
				continue
			}
			x = nx
			if !send("execution", x) {
				return
			}
		}
	}
	send("end", map[string]any{"execution_id": x.ID, "status": x.Status})
}

// pause serves POST /api/v1/autonomous/pause: the kill switch.
func (a *serviceAPI) pause(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req PauseRequest
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	if r.ContentLength != 0 {
		if fe := decodeJSON(w, r, &req, maxAutonomousBody); fe != nil {
			writeFieldError(w, fe)
			return
		}
	}
	st, err := a.svc.Pause(r.Context(), actor(p), req.Reason)
	if err != nil {
		a.fail(w, r, err, "pause")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// resume serves POST /api/v1/autonomous/resume.
func (a *serviceAPI) resume(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	st, err := a.svc.Resume(r.Context(), actor(p))
	if err != nil {
		a.fail(w, r, err, "resume")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// status serves GET /api/v1/autonomous/status: the kill switch's state.
func (a *serviceAPI) status(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	writeJSON(w, http.StatusOK, a.svc.State())
}

// performance serves GET /api/v1/autonomous/metrics?timerange=7d.
func (a *serviceAPI) performance(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"timerange"})
	}
	window := defaultPerformanceWindow
	if fe == nil && v.Has("timerange") {
		d, err := parseTimerange(strings.TrimSpace(v.Get("timerange")))
		if err != nil {
			fe = badField("timerange", "%v", err)
		}
		window = d
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	p, err := a.svc.Performance(r.Context(), window)
	if err != nil {
		a.fail(w, r, err, "metrics")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// auditLog serves GET /api/v1/audit?actor=&action=&subject=&since=&until=&limit=&cursor=.
func (a *serviceAPI) auditLog(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"actor", "action", "subject", "since", "until", "limit", "cursor"})
	}
	var f audit.Filter
	if fe == nil {
		f.Actor, f.Action, f.Subject, f.Cursor = v.Get("actor"), audit.Action(v.Get("action")), v.Get("subject"), v.Get("cursor")
		if v.Has("since") {
			f.Since, fe = parseTime("since", v.Get("since"))
		}
	}
	if fe == nil && v.Has("until") {
		f.Until, fe = parseTime("until", v.Get("until"))
	}
	if fe == nil {
		f.Limit, fe = parseLimit(v, 100, 1000)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	page, err := a.svc.Audit().List(r.Context(), f)
	if err != nil {
		if errors.Is(err, audit.ErrBadFilter) {
			writeError(w, http.StatusBadRequest, trimPrefixes(err.Error(), "audit: "), "")
			return
		}
		a.fail(w, r, err, "audit log")
		return
	}
	writeJSON(w, http.StatusOK, page)
}
