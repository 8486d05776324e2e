package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/store"
)

// ActionStore is the part of store.Store the action routes read and
// write. It must be safe for concurrent use.
type ActionStore interface {
	CreateAction(ctx context.Context, d actions.Definition) (actions.Definition, error)
	Action(ctx context.Context, id int64) (actions.Definition, error)
	Actions(ctx context.Context) ([]actions.Definition, error)
	UpdateAction(ctx context.Context, d actions.Definition) (actions.Definition, error)
	DeleteAction(ctx context.Context, id int64) error
}

var _ ActionStore = store.Store(nil)

// maxActionBody bounds a definition's body.
const maxActionBody = 256 << 10

// ActionList is the answer of GET /api/v1/autonomous/actions.
type ActionList struct {
	Actions []actions.Definition `json:"actions"`
	Count   int                  `json:"count"`
}

// actionRoutes adds the action definition routes to mux, when st is set.
// Definitions decide what runs on the infrastructure: writing them takes
// the admin scope; reading them events:read.
func (s *autonomousAPI) actionRoutes(mux *http.ServeMux, st ActionStore, vs actions.Validators) {
	if st == nil {
		return
	}
	a := &actionAPI{autonomousAPI: s, store: st, validators: vs}
	mux.Handle("POST /api/v1/autonomous/actions", s.with(auth.ScopeAdmin, a.create))
	mux.Handle("GET /api/v1/autonomous/actions", s.with(auth.ScopeEventsRead, a.list))
	mux.Handle("GET /api/v1/autonomous/actions/{id}", s.with(auth.ScopeEventsRead, a.get))
	mux.Handle("PUT /api/v1/autonomous/actions/{id}", s.with(auth.ScopeAdmin, a.put))
	mux.Handle("DELETE /api/v1/autonomous/actions/{id}", s.with(auth.ScopeAdmin, a.delete))
}

type actionAPI struct {
	*autonomousAPI
	store      ActionStore
	validators actions.Validators
}

// definition reads and validates the body: a definition as
// actions.DecodeJSON reads it. It answers the error itself.
func (a *actionAPI) definition(w http.ResponseWriter, r *http.Request) (actions.Definition, bool) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return actions.Definition{}, false
	}
	var raw json.RawMessage
	if fe := decodeJSON(w, r, &raw, maxActionBody); fe != nil {
		writeFieldError(w, fe)
		return actions.Definition{}, false
	}
	d, err := actions.DecodeJSON(raw)
	if err == nil {
		err = d.Validate(a.validators)
	}
	if err != nil {
		var fe *actions.FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe.Error(), fe.Field)
			return d, false
		}
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "actions: invalid definition: "), "")
		return d, false
	}
	return d, true
}

// create serves POST /api/v1/autonomous/actions: 201 with the definition
// as stored, 409 when its name is taken.
func (a *actionAPI) create(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	d, ok := a.definition(w, r)
	if !ok {
		return
	}
	if !a.record(w, r, p, "create", d) {
		return
	}
	stored, err := a.store.CreateAction(r.Context(), d)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, fmt.Sprintf("an action named %q exists (PUT /api/v1/autonomous/actions/{id} changes it)", d.Name), "action_name")
		return
	}
	if err != nil {
		a.unavailable(w, r, err, "create action")
		return
	}
	writeJSON(w, http.StatusCreated, stored)
}

// list serves GET /api/v1/autonomous/actions: every definition by name.
func (a *actionAPI) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	list, err := a.store.Actions(r.Context())
	if err != nil {
		a.unavailable(w, r, err, "list actions")
		return
	}
	if list == nil {
		list = []actions.Definition{}
	}
	writeJSON(w, http.StatusOK, ActionList{Actions: list, Count: len(list)})
}

// get serves GET /api/v1/autonomous/actions/{id}.
func (a *actionAPI) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, ok := idOnly(w, r, "action")
	if !ok {
		return
	}
	d, err := a.store.Action(r.Context(), id)
	if a.notFound(w, r, id, err, "read action") {
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// put serves PUT /api/v1/autonomous/actions/{id}: the definition is
// replaced by the body (fields left out take their defaults, as in a
// create).
func (a *actionAPI) put(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id, fe := pathIDOf(r, "action")
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	d, ok := a.definition(w, r)
	if !ok {
		return
	}
	d.ID = id
	if !a.record(w, r, p, "update", d) {
		return
	}
	stored, err := a.store.UpdateAction(r.Context(), d)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, fmt.Sprintf("another action is named %q", d.Name), "action_name")
		return
	}
	if a.notFound(w, r, id, err, "update action") {
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

// delete serves DELETE /api/v1/autonomous/actions/{id}: 204, or 409 while
// another definition names it as its rollback action.
func (a *actionAPI) delete(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id, ok := idOnly(w, r, "action")
	if !ok {
		return
	}
	if !a.record(w, r, p, "delete", actions.Definition{ID: id}) {
		return
	}
	err := a.store.DeleteAction(r.Context(), id)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, trimPrefixes(err.Error(), "sqlite: ", "postgres: "), "")
		return
	}
	if a.notFound(w, r, id, err, "delete action") {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// record audits a change of a definition before it is made; when the
// audit log cannot take it, it answers 503 and the change is refused.
func (a *actionAPI) record(w http.ResponseWriter, r *http.Request, p auth.Principal, op string, d actions.Definition) bool {
	if a.audit == nil {
		return true
	}
	subj := "action:" + d.Name
	if d.ID != 0 {
		subj = "action:" + strconv.FormatInt(d.ID, 10)
	}
	if _, err := a.audit.Append(r.Context(), audit.Entry{Actor: actor(p), Action: audit.ActionActionDefinition, Subject: subj,
		Parameters: map[string]any{"operation": op, "definition": d}}); err != nil {
		a.unavailable(w, r, err, "audit the action definition change")
		return false
	}
	return true
}

// notFound answers err when it is one (404 for an unknown id, 503 for
// another failure) and reports whether it answered.
func (a *actionAPI) notFound(w http.ResponseWriter, r *http.Request, id int64, err error, what string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no action with id %d", id), "")
	default:
		a.unavailable(w, r, err, what)
	}
	return true
}
