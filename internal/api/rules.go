package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/rules/cond"
	"github.com/reflex-ops/reflex/internal/store"
)

// RuleStore is the part of store.Store the rule API reads and writes
// (store.RuleStore). It must be safe for concurrent use.
type RuleStore = store.RuleStore

// Defaults and bounds of a trigger rule and a response template.
const (
	DefaultMaxTriggersPerHour = 10
	DefaultMinCount           = 1
	DefaultMaxExecutionTime   = 30 // minutes
	maxRuleNameLen            = 200
	maxRuleDescription        = 4096
	maxWindowMinutes          = 7 * 24 * 60
	maxMinCount               = 100000
	maxTriggersPerHour        = 100000
	maxGroupBy                = 8
	maxExecutionMinutes       = 24 * 60
	maxActions                = 64
	maxScriptLen              = 200
	maxChannels               = 32
)

// DefaultGroupBy is a rule's group_by when the request gives none.
var DefaultGroupBy = []string{"source_host"}

// Template types and action types.
var (
	TemplateTypes = []string{"investigation", "remediation", "escalation"}
	ActionTypes   = []string{"diagnostic", "remediation", "notification"}
)

// TriggerRuleRequest is the body of POST and PUT /api/v1/rules/triggers:
// the seed's payload with reflex's optional fields. Absent fields take
// their defaults (a PUT replaces the whole rule).
type TriggerRuleRequest struct {
	Name               string          `json:"name"`
	Description        string          `json:"description"`
	Conditions         json.RawMessage `json:"conditions"`
	SeverityThreshold  string          `json:"severity_threshold"`
	TimeWindowMinutes  *int            `json:"time_window_minutes"`
	MinCount           *int            `json:"min_count"`
	GroupBy            []string        `json:"group_by"`
	MaxTriggersPerHour *int            `json:"max_triggers_per_hour"`
	Active             *bool           `json:"active"`
}

// TriggerRuleList is the answer of GET /api/v1/rules/triggers.
type TriggerRuleList struct {
	Triggers []store.TriggerRule `json:"triggers"`
	Count    int                 `json:"count"`
}

// Action is one step of a response template (see actions.Step).
type Action = actions.Step

// ResponseTemplateRequest is the body of POST and PUT
// /api/v1/rules/responses: the seed's payload.
type ResponseTemplateRequest struct {
	Name                    string   `json:"name"`
	Type                    string   `json:"type"`
	TriggerRuleID           *int64   `json:"trigger_rule_id"`
	Actions                 []Action `json:"actions"`
	ApprovalRequired        bool     `json:"approval_required"`
	RollbackSupported       bool     `json:"rollback_supported"`
	MaxExecutionTimeMinutes *int     `json:"max_execution_time_minutes"`
	Active                  *bool    `json:"active"`
}

// ResponseTemplate is a response template as the API answers it: the
// stored template with its definition's actions in the request's shape.
type ResponseTemplate struct {
	ID                      int64     `json:"id"`
	Name                    string    `json:"name"`
	Type                    string    `json:"type"`
	TriggerRuleID           int64     `json:"trigger_rule_id"`
	Actions                 []Action  `json:"actions"`
	ApprovalRequired        bool      `json:"approval_required"`
	RollbackSupported       bool      `json:"rollback_supported"`
	MaxExecutionTimeMinutes int       `json:"max_execution_time_minutes"`
	Active                  bool      `json:"active"`
	CreatedAt               time.Time `json:"created_at"`
}

// ResponseTemplateList is the answer of GET /api/v1/rules/responses.
type ResponseTemplateList struct {
	Responses []ResponseTemplate `json:"responses"`
	Count     int                `json:"count"`
}

// definition is the stored response_definition of a template.
type definition struct {
	Actions []Action `json:"actions"`
}

// RuleExecutionList is the answer of GET /api/v1/rules/executions.
type RuleExecutionList struct {
	Executions []store.RuleExecution `json:"executions"`
}

// routeRules registers the rule API on mux.
func (s *eventsAPI) routeRules(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/rules/triggers", s.with(auth.ScopeRulesWrite, s.createTrigger))
	mux.Handle("GET /api/v1/rules/triggers", s.with(auth.ScopeEventsRead, s.listTriggers))
	mux.Handle("GET /api/v1/rules/triggers/{id}", s.with(auth.ScopeEventsRead, s.getTrigger))
	mux.Handle("PUT /api/v1/rules/triggers/{id}", s.with(auth.ScopeRulesWrite, s.updateTrigger))
	mux.Handle("DELETE /api/v1/rules/triggers/{id}", s.with(auth.ScopeRulesWrite, s.deleteTrigger))
	mux.Handle("POST /api/v1/rules/triggers/{id}/test", s.with(auth.ScopeEventsRead, s.testTrigger))

	mux.Handle("POST /api/v1/rules/responses", s.with(auth.ScopeRulesWrite, s.createResponse))
	mux.Handle("GET /api/v1/rules/responses", s.with(auth.ScopeEventsRead, s.listResponses))
	mux.Handle("GET /api/v1/rules/responses/{id}", s.with(auth.ScopeEventsRead, s.getResponse))
	mux.Handle("PUT /api/v1/rules/responses/{id}", s.with(auth.ScopeRulesWrite, s.updateResponse))
	mux.Handle("DELETE /api/v1/rules/responses/{id}", s.with(auth.ScopeRulesWrite, s.deleteResponse))

	mux.Handle("GET /api/v1/rules/executions", s.with(auth.ScopeEventsRead, s.listExecutions))
	mux.Handle("GET /api/v1/rules/executions/{id}", s.with(auth.ScopeEventsRead, s.getExecution))
}

// ruleID reads the {id} path segment: a positive integer.
func ruleID(r *http.Request, what string) (int64, *fieldError) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badField("id", "must be a positive integer %s id, got %q", what, clip(s, 40))
	}
	return id, nil
}

// checkName validates the name of a rule or a template.
func checkName(name string) *fieldError {
	switch {
	case strings.TrimSpace(name) == "":
		return badField("name", "required")
	case name != strings.TrimSpace(name):
		return badField("name", "must not begin or end with space")
	case !utf8.ValidString(name):
		return badField("name", "not valid UTF-8")
	case utf8.RuneCountInString(name) > maxRuleNameLen:
		return badField("name", "longer than %d characters", maxRuleNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return badField("name", "must not contain control characters")
	}
	return nil
}

// checkCount validates an optional number between lo and hi and returns
// it, or def when absent.
func checkCount(field string, v *int, def, lo, hi int) (int, *fieldError) {
	if v == nil {
		return def, nil
	}
	switch {
	case *v < 0:
		return 0, badField(field, "must not be negative")
	case *v < lo:
		return 0, badField(field, "must be at least %d", lo)
	case *v > hi:
		return 0, badField(field, "must be at most %d", hi)
	}
	return *v, nil
}

// condError turns an error of cond.Compile into a 400 naming the place.
func condError(err error) *fieldError {
	var ce *cond.Error
	if errors.As(err, &ce) {
		return badField(ce.Path, "%s", ce.Msg)
	}
	return badField("conditions", "%v", err)
}

// triggerRule validates a request and makes the rule it describes,
// with its compiled matcher.
func triggerRule(req TriggerRuleRequest) (store.TriggerRule, *cond.Matcher, *fieldError) {
	var r store.TriggerRule
	if fe := checkName(req.Name); fe != nil {
		return r, nil, fe
	}
	if len(req.Description) > maxRuleDescription {
		return r, nil, badField("description", "longer than %d bytes", maxRuleDescription)
	}
	if req.Conditions == nil {
		return r, nil, badField("conditions", "required")
	}
	m, err := cond.Compile(req.Conditions)
	if err != nil {
		return r, nil, condError(err)
	}
	if req.SeverityThreshold != "" {
		sev := event.Severity(strings.ToLower(strings.TrimSpace(req.SeverityThreshold)))
		if !sev.Valid() {
			return r, nil, badField("severity_threshold", "unknown severity %q (want critical, high, medium, low or info)", clip(req.SeverityThreshold, 40))
		}
		r.SeverityThreshold = string(sev)
	}
	var fe *fieldError
	if r.TimeWindowMinutes, fe = checkCount("time_window_minutes", req.TimeWindowMinutes, 0, 0, maxWindowMinutes); fe != nil {
		return r, nil, fe
	}
	if r.MinCount, fe = checkCount("min_count", req.MinCount, DefaultMinCount, 1, maxMinCount); fe != nil {
		return r, nil, fe
	}
	if r.MinCount > 1 && r.TimeWindowMinutes == 0 {
		return r, nil, badField("time_window_minutes", "must be at least 1 when min_count is above 1")
	}
	if r.MaxTriggersPerHour, fe = checkCount("max_triggers_per_hour", req.MaxTriggersPerHour, DefaultMaxTriggersPerHour, 1, maxTriggersPerHour); fe != nil {
		return r, nil, fe
	}
	r.GroupBy = slices.Clone(DefaultGroupBy)
	if req.GroupBy != nil {
		if r.GroupBy, fe = groupBy(req.GroupBy); fe != nil {
			return r, nil, fe
		}
	}
	r.Name, r.Description, r.Active = req.Name, req.Description, true
	if req.Active != nil {
		r.Active = *req.Active
	}
	r.Conditions = req.Conditions
	return r, m, nil
}

// groupBy validates the fields of a group_by: each must be a field the
// conditions can address (checked by the condition compiler itself), once.
func groupBy(fields []string) ([]string, *fieldError) {
	if len(fields) > maxGroupBy {
		return nil, badField("group_by", "more than %d fields", maxGroupBy)
	}
	out := make([]string, 0, len(fields))
	for i, f := range fields {
		place := fmt.Sprintf("group_by[%d]", i)
		if f == "" {
			return nil, badField(place, "must not be empty")
		}
		probe, _ := json.Marshal(map[string]any{f: map[string]bool{"$exists": true}})
		if _, err := cond.Compile(probe); err != nil {
			var ce *cond.Error
			if errors.As(err, &ce) {
				return nil, badField(place, "%s", ce.Msg)
			}
			return nil, badField(place, "%v", err)
		}
		if slices.Contains(out, f) {
			return nil, badField(place, "%q is listed twice", clip(f, 60))
		}
		out = append(out, f)
	}
	return out, nil
}

// ruleStoreError answers a failed rule store call: 404, 409 or 503.
func (s *eventsAPI) ruleStoreError(w http.ResponseWriter, r *http.Request, err error, what, notFound, conflict string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, notFound, "")
	case errors.Is(err, store.ErrConflict):
		field := ""
		if strings.HasPrefix(conflict, "name: ") {
			field = "name"
		}
		writeError(w, http.StatusConflict, conflict, field)
	default:
		s.unavailable(w, r, err, what)
	}
}

// createdBy names the principal for a rule's created_by.
func createdBy(p auth.Principal) string {
	if p.KeyID != "" {
		return p.KeyID
	}
	return p.Name
}

// createTrigger serves POST /api/v1/rules/triggers.
func (s *eventsAPI) createTrigger(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req TriggerRuleRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	rule, _, fe := triggerRule(req)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	rule.CreatedBy = createdBy(p)
	rule.CreatedAt = s.now().UTC()
	stored, err := s.rules.CreateTriggerRule(r.Context(), rule)
	if err != nil {
		s.ruleStoreError(w, r, err, "create trigger rule", "", "name: a trigger rule named "+quote(rule.Name)+" exists")
		return
	}
	writeJSON(w, http.StatusCreated, stored)
}

// parseActive reads the optional active=true|false of a list.
func parseActive(r *http.Request) (*bool, *fieldError) {
	v, fe := queryValues(r)
	if fe != nil {
		return nil, fe
	}
	if fe := checkParams(v, []string{"active"}); fe != nil {
		return nil, fe
	}
	if _, ok := v["active"]; !ok {
		return nil, nil
	}
	b, err := strconv.ParseBool(v.Get("active"))
	if err != nil {
		return nil, badField("active", "must be true or false")
	}
	return &b, nil
}

// listTriggers serves GET /api/v1/rules/triggers[?active=true|false].
func (s *eventsAPI) listTriggers(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	active, fe := parseActive(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	rules, err := s.rules.TriggerRules(r.Context(), active)
	if err != nil {
		s.unavailable(w, r, err, "list trigger rules")
		return
	}
	writeJSON(w, http.StatusOK, TriggerRuleList{Triggers: rules, Count: len(rules)})
}

// findTrigger reads the rule of the path, or answers the error and
// returns false.
func (s *eventsAPI) findTrigger(w http.ResponseWriter, r *http.Request) (store.TriggerRule, bool) {
	id, fe := ruleID(r, "trigger rule")
	if fe != nil {
		writeFieldError(w, fe)
		return store.TriggerRule{}, false
	}
	rule, err := s.rules.TriggerRule(r.Context(), id)
	if err != nil {
		s.ruleStoreError(w, r, err, "read trigger rule", fmt.Sprintf("no trigger rule %d", id), "")
		return rule, false
	}
	return rule, true
}

// getTrigger serves GET /api/v1/rules/triggers/{id}.
func (s *eventsAPI) getTrigger(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if rule, ok := s.findTrigger(w, r); ok {
		writeJSON(w, http.StatusOK, rule)
	}
}

// updateTrigger serves PUT /api/v1/rules/triggers/{id}: the body replaces
// the rule (absent fields take their defaults).
func (s *eventsAPI) updateTrigger(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := ruleID(r, "trigger rule")
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	var req TriggerRuleRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	rule, _, fe := triggerRule(req)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	rule.ID, rule.UpdatedAt = id, s.now().UTC()
	stored, err := s.rules.UpdateTriggerRule(r.Context(), rule)
	if err != nil {
		s.ruleStoreError(w, r, err, "update trigger rule", fmt.Sprintf("no trigger rule %d", id),
			"name: another trigger rule is named "+quote(rule.Name))
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

// deleteTrigger serves DELETE /api/v1/rules/triggers/{id}.
func (s *eventsAPI) deleteTrigger(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := ruleID(r, "trigger rule")
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	if err := s.rules.DeleteTriggerRule(r.Context(), id); err != nil {
		s.ruleStoreError(w, r, err, "delete trigger rule", fmt.Sprintf("no trigger rule %d", id),
			fmt.Sprintf("trigger rule %d is in use: response templates or executions refer to it; delete its templates, or deactivate it with \"active\": false", id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// responseTemplate validates a request and makes the template it
// describes. The trigger rule's existence is checked by the caller.
func responseTemplate(req ResponseTemplateRequest) (store.ResponseTemplate, *fieldError) {
	var t store.ResponseTemplate
	if fe := checkName(req.Name); fe != nil {
		return t, fe
	}
	if !slices.Contains(TemplateTypes, req.Type) {
		if req.Type == "" {
			return t, badField("type", "required (investigation, remediation or escalation)")
		}
		return t, badField("type", "unknown template type %q (want investigation, remediation or escalation)", clip(req.Type, 40))
	}
	if req.TriggerRuleID == nil {
		return t, badField("trigger_rule_id", "required")
	}
	if *req.TriggerRuleID <= 0 {
		return t, badField("trigger_rule_id", "must be a positive integer")
	}
	if err := actions.ValidateSteps(req.Actions); err != nil {
		var fe *actions.FieldError
		if errors.As(err, &fe) {
			return t, badField(fe.Field, "%s", fe.Msg)
		}
		return t, badField("actions", "%v", err)
	}
	var fe *fieldError
	if t.MaxExecutionTimeMinutes, fe = checkCount("max_execution_time_minutes", req.MaxExecutionTimeMinutes, DefaultMaxExecutionTime, 1, maxExecutionMinutes); fe != nil {
		return t, fe
	}
	def, err := json.Marshal(definition{Actions: req.Actions})
	if err != nil {
		return t, badField("actions", "%v", err)
	}
	t.Name, t.Type, t.TriggerRuleID, t.Definition = req.Name, req.Type, *req.TriggerRuleID, def
	t.ApprovalRequired, t.RollbackSupported, t.Active = req.ApprovalRequired, req.RollbackSupported, true
	if req.Active != nil {
		t.Active = *req.Active
	}
	return t, nil
}

// templateJSON is the API's form of a stored template.
func templateJSON(t store.ResponseTemplate) ResponseTemplate {
	var def definition
	_ = json.Unmarshal(t.Definition, &def) // written by responseTemplate; unreadable means no actions
	if def.Actions == nil {
		def.Actions = []Action{}
	}
	return ResponseTemplate{
		ID: t.ID, Name: t.Name, Type: t.Type, TriggerRuleID: t.TriggerRuleID, Actions: def.Actions,
		ApprovalRequired: t.ApprovalRequired, RollbackSupported: t.RollbackSupported,
		MaxExecutionTimeMinutes: t.MaxExecutionTimeMinutes, Active: t.Active,
		CreatedAt: t.CreatedAt,
	}
}

// noRule is the 400 of a template whose trigger rule does not exist.
func noRule(id int64) *fieldError {
	return badField("trigger_rule_id", "no trigger rule %d", id)
}

// createResponse serves POST /api/v1/rules/responses.
func (s *eventsAPI) createResponse(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req ResponseTemplateRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	t, fe := responseTemplate(req)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	t.CreatedAt = s.now().UTC()
	stored, err := s.rules.CreateResponseTemplate(r.Context(), t)
	if errors.Is(err, store.ErrNotFound) {
		writeFieldError(w, noRule(t.TriggerRuleID))
		return
	}
	if err != nil {
		s.ruleStoreError(w, r, err, "create response template", "", "name: a response template named "+quote(t.Name)+" exists")
		return
	}
	writeJSON(w, http.StatusCreated, templateJSON(stored))
}

// listResponses serves GET /api/v1/rules/responses[?active=true|false].
func (s *eventsAPI) listResponses(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	active, fe := parseActive(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	ts, err := s.rules.ResponseTemplates(r.Context(), active)
	if err != nil {
		s.unavailable(w, r, err, "list response templates")
		return
	}
	out := make([]ResponseTemplate, len(ts))
	for i, t := range ts {
		out[i] = templateJSON(t)
	}
	writeJSON(w, http.StatusOK, ResponseTemplateList{Responses: out, Count: len(out)})
}

// getResponse serves GET /api/v1/rules/responses/{id}.
func (s *eventsAPI) getResponse(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := ruleID(r, "response template")
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	t, err := s.rules.ResponseTemplate(r.Context(), id)
	if err != nil {
		s.ruleStoreError(w, r, err, "read response template", fmt.Sprintf("no response template %d", id), "")
		return
	}
	writeJSON(w, http.StatusOK, templateJSON(t))
}

// updateResponse serves PUT /api/v1/rules/responses/{id}.
func (s *eventsAPI) updateResponse(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := ruleID(r, "response template")
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	var req ResponseTemplateRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	t, fe := responseTemplate(req)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	t.ID = id
	stored, err := s.rules.UpdateResponseTemplate(r.Context(), t)
	if errors.Is(err, store.ErrNotFound) && strings.Contains(err.Error(), "no trigger rule") {
		writeFieldError(w, noRule(t.TriggerRuleID))
		return
	}
	if err != nil {
		s.ruleStoreError(w, r, err, "update response template", fmt.Sprintf("no response template %d", id),
			"name: another response template is named "+quote(t.Name))
		return
	}
	writeJSON(w, http.StatusOK, templateJSON(stored))
}

// deleteResponse serves DELETE /api/v1/rules/responses/{id}.
func (s *eventsAPI) deleteResponse(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := ruleID(r, "response template")
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	if err := s.rules.DeleteResponseTemplate(r.Context(), id); err != nil {
		s.ruleStoreError(w, r, err, "delete response template", fmt.Sprintf("no response template %d", id),
			fmt.Sprintf("response template %d is in use: executions refer to it; deactivate it with \"active\": false", id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listExecutions serves GET /api/v1/rules/executions?rule_id=&status=&since=&limit=.
func (s *eventsAPI) listExecutions(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"rule_id", "status", "since", "limit"})
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	var q store.RuleExecutionQuery
	if s := v.Get("rule_id"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			writeFieldError(w, badField("rule_id", "must be a positive integer, got %q", clip(s, 40)))
			return
		}
		q.RuleID = id
	}
	q.Status = v.Get("status")
	if q.Status != "" && !slices.Contains(ExecutionStatuses, q.Status) {
		writeFieldError(w, badField("status", "unknown status %q (want %s)", clip(q.Status, 40), strings.Join(ExecutionStatuses, ", ")))
		return
	}
	if s := v.Get("since"); s != "" {
		if q.Since, fe = parseTime("since", s); fe != nil {
			writeFieldError(w, fe)
			return
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxExecutionLimit {
			writeFieldError(w, badField("limit", "must be an integer from 1 to %d", store.MaxExecutionLimit))
			return
		}
		q.Limit = n
	}
	xs, err := s.rules.RuleExecutions(r.Context(), q)
	if err != nil {
		s.unavailable(w, r, err, "list rule executions")
		return
	}
	writeJSON(w, http.StatusOK, RuleExecutionList{Executions: xs})
}

// ExecutionStatuses are the statuses of a rule execution.
var ExecutionStatuses = []string{"pending", "running", "completed", "failed", "cancelled"}

// getExecution serves GET /api/v1/rules/executions/{id}.
func (s *eventsAPI) getExecution(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := ruleID(r, "rule execution")
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	x, err := s.rules.RuleExecution(r.Context(), id)
	if err != nil {
		s.ruleStoreError(w, r, err, "read rule execution", fmt.Sprintf("no rule execution %d", id), "")
		return
	}
	writeJSON(w, http.StatusOK, x)
}
