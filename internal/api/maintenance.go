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

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
)

// MaintenanceStore is the part of store.Store the maintenance routes read
// and write. It must be safe for concurrent use.
type MaintenanceStore interface {
	CreateMaintenance(ctx context.Context, w maintenance.Window) (maintenance.Window, error)
	MaintenanceWindows(ctx context.Context, q store.MaintenanceQuery) ([]maintenance.Window, error)
	EndMaintenance(ctx context.Context, id int64, at time.Time) error
}

var _ MaintenanceStore = store.Store(nil)

// maxMaintenanceList bounds GET /api/v1/maintenance.
const maxMaintenanceList = 10_000

// MaintenanceRequest is the body of POST /api/v1/maintenance. Matchers map
// host, service, event_type or tags to a value, a list of values or
// {"regex": "..."}; StartsAt defaults to now; CreatedBy to the API key's
// name.
type MaintenanceRequest struct {
	Matchers  map[string]json.RawMessage `json:"matchers"`
	StartsAt  *time.Time                 `json:"starts_at"`
	EndsAt    *time.Time                 `json:"ends_at"`
	CreatedBy string                     `json:"created_by"`
	Comment   string                     `json:"comment"`
}

// Maintenance window statuses: upcoming (starts later), active, ended.
const (
	MaintenanceUpcoming = "upcoming"
	MaintenanceActive   = "active"
	MaintenanceEnded    = "ended"
)

// MaintenanceInfo is a window as the API answers it, with its status at
// the time of the answer.
type MaintenanceInfo struct {
	maintenance.Window
	Status string `json:"status"`
}

// MaintenanceList is the answer of GET /api/v1/maintenance.
type MaintenanceList struct {
	Windows []MaintenanceInfo `json:"windows"`
	Count   int               `json:"count"`
}

func maintenanceStatus(w maintenance.Window, now time.Time) string {
	switch {
	case !now.Before(w.EndsAt):
		return MaintenanceEnded
	case now.Before(w.StartsAt):
		return MaintenanceUpcoming
	}
	return MaintenanceActive
}

// maintenanceRoutes adds the maintenance routes to mux, when st is set.
func (s *eventsAPI) maintenanceRoutes(mux *http.ServeMux, st MaintenanceStore) {
	if st == nil {
		return
	}
	m := &maintenanceAPI{eventsAPI: s, store: st}
	mux.Handle("POST /api/v1/maintenance", s.with(auth.ScopeRulesWrite, m.create))
	mux.Handle("GET /api/v1/maintenance", s.with(auth.ScopeEventsRead, m.list))
	mux.Handle("DELETE /api/v1/maintenance/{id}", s.with(auth.ScopeRulesWrite, m.end))
}

type maintenanceAPI struct {
	*eventsAPI
	store MaintenanceStore
}

// create serves POST /api/v1/maintenance.
func (m *maintenanceAPI) create(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	var req MaintenanceRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	now := m.now()
	win := maintenance.Window{Matchers: maintenance.Matchers{}, CreatedBy: strings.TrimSpace(req.CreatedBy), Comment: req.Comment}
	for name, raw := range req.Matchers {
		var mt maintenance.Matcher
		if err := json.Unmarshal(raw, &mt); err != nil {
			writeFieldError(w, badField("matchers."+clip(name, 40), "%v", err))
			return
		}
		win.Matchers[name] = mt
	}
	win.StartsAt = now.UTC()
	if req.StartsAt != nil {
		win.StartsAt = req.StartsAt.UTC()
	}
	if req.EndsAt != nil {
		win.EndsAt = req.EndsAt.UTC()
	}
	if win.CreatedBy == "" {
		win.CreatedBy = p.Name
	}
	if err := win.Validate(); err != nil {
		var fe *maintenance.FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe.Error(), fe.Path)
			return
		}
		writeError(w, http.StatusBadRequest, err.Error(), "matchers")
		return
	}
	if !win.EndsAt.After(now) {
		writeFieldError(w, badField("ends_at", "is in the past: a maintenance window must end after now"))
		return
	}
	stored, err := m.store.CreateMaintenance(r.Context(), win)
	if err != nil {
		m.unavailable(w, r, err, "create maintenance window")
		return
	}
	writeJSON(w, http.StatusCreated, MaintenanceInfo{Window: stored, Status: maintenanceStatus(stored, now)})
}

// list serves GET /api/v1/maintenance?status=active|upcoming|ended|all;
// without status, the active and upcoming windows.
func (m *maintenanceAPI) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"status"})
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	now := m.now()
	q := store.MaintenanceQuery{Limit: maxMaintenanceList}
	status := strings.TrimSpace(v.Get("status"))
	switch status {
	case "":
		q.EndsAfter = now
	case MaintenanceActive:
		q.EndsAfter, q.StartsBy = now, now
	case MaintenanceUpcoming:
		q.StartsAfter = now
	case MaintenanceEnded:
		q.EndedBy = now
	case "all":
	default:
		writeFieldError(w, badField("status", "%q is not active, upcoming, ended or all", clip(status, 40)))
		return
	}
	list, err := m.store.MaintenanceWindows(r.Context(), q)
	if err != nil {
		m.unavailable(w, r, err, "list maintenance windows")
		return
	}
	out := MaintenanceList{Windows: make([]MaintenanceInfo, 0, len(list))}
	for _, win := range list {
		out.Windows = append(out.Windows, MaintenanceInfo{Window: win, Status: maintenanceStatus(win, now)})
	}
	out.Count = len(out.Windows)
	writeJSON(w, http.StatusOK, out)
}

// end serves DELETE /api/v1/maintenance/{id}: the window ends now (it
// stays listed, ended, until the retention prunes it). Ending an ended
// window succeeds again.
func (m *maintenanceAPI) end(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeFieldError(w, badField("id", "must be a positive integer maintenance window id, got %q", clip(raw, 40)))
		return
	}
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	err = m.store.EndMaintenance(r.Context(), id, m.now())
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no maintenance window with id %d", id), "")
		return
	}
	if err != nil {
		m.unavailable(w, r, err, "end maintenance window")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
