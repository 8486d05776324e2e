package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/store"
)

// NotificationStore is the part of store.Store the notification routes
// read and write. It must be safe for concurrent use.
type NotificationStore interface {
	PutPolicy(ctx context.Context, p store.StoredPolicy) error
	Policy(ctx context.Context) (store.StoredPolicy, error)
	CreateSilence(ctx context.Context, s notify.Silence) (notify.Silence, error)
	Silences(ctx context.Context, q store.SilenceQuery) ([]notify.Silence, error)
	ExpireSilence(ctx context.Context, id int64, at time.Time) error
	Notifications(ctx context.Context, q store.NotificationQuery) ([]store.NotificationRecord, error)
}

var _ NotificationStore = store.Store(nil)

// NotificationOptions configure the notification routes of the Event
// Processing Service (EventsOptions.Notifications). Without a Store the
// routes are not served (404).
type NotificationOptions struct {
	// Store keeps the policy, the silences and the records.
	Store NotificationStore
	// SetPolicy, when set, is called with a policy once it is stored (the
	// server gives it to its notification router).
	SetPolicy func(*notify.Policy)
	// SilencesChanged, when set, is called after a silence is created or
	// expired (the server drops its cache of silences).
	SilencesChanged func()
}

// Bounds of the notification routes.
const (
	DefaultNotificationLimit = 100
	MaxNotificationLimit     = 1000
	maxSilenceList           = 10_000
)

// SilenceRequest is the body of POST /api/v1/silences. StartsAt defaults
// to now.
type SilenceRequest struct {
	Matchers  map[string]any `json:"matchers"`
	StartsAt  *time.Time     `json:"starts_at"`
	EndsAt    *time.Time     `json:"ends_at"`
	CreatedBy string         `json:"created_by"`
	Comment   string         `json:"comment"`
}

// SilenceInfo is a silence as the API answers it, with its status at the
// time of the answer: pending (starts later), active or expired.
type SilenceInfo struct {
	notify.Silence
	Status string `json:"status"`
}

// SilenceList is the answer of GET /api/v1/silences.
type SilenceList struct {
	Silences []SilenceInfo `json:"silences"`
	Count    int           `json:"count"`
}

// NotificationList is the answer of GET /api/v1/notifications.
type NotificationList struct {
	Notifications []store.NotificationRecord `json:"notifications"`
	Count         int                        `json:"count"`
}

// Silence statuses.
const (
	SilencePending = "pending"
	SilenceActive  = "active"
	SilenceExpired = "expired"
)

func silenceStatus(s notify.Silence, now time.Time) string {
	switch {
	case !now.Before(s.EndsAt):
		return SilenceExpired
	case now.Before(s.StartsAt):
		return SilencePending
	}
	return SilenceActive
}

type notificationsAPI struct {
	*eventsAPI
	opts NotificationOptions
}

// notificationRoutes adds the routes of the policy, the silences and the
// notification records to mux, when o has a Store.
func (s *eventsAPI) notificationRoutes(mux *http.ServeMux, o NotificationOptions) {
	if o.Store == nil {
		return
	}
	n := &notificationsAPI{eventsAPI: s, opts: o}
	mux.Handle("PUT /api/v1/notifications/policy", s.with(auth.ScopeRulesWrite, n.putPolicy))
	mux.Handle("GET /api/v1/notifications/policy", s.with(auth.ScopeEventsRead, n.getPolicy))
	mux.Handle("GET /api/v1/notifications", s.with(auth.ScopeEventsRead, n.listNotifications))
	mux.Handle("POST /api/v1/silences", s.with(auth.ScopeRulesWrite, n.createSilence))
	mux.Handle("GET /api/v1/silences", s.with(auth.ScopeEventsRead, n.listSilences))
	mux.Handle("DELETE /api/v1/silences/{id}", s.with(auth.ScopeRulesWrite, n.expireSilence))
}

// putPolicy serves PUT /api/v1/notifications/policy: JSON, or YAML with
// Content-Type application/yaml. It answers the policy as stored, redacted.
func (n *notificationsAPI) putPolicy(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	ct := r.Header.Get("Content-Type")
	if _, err := notify.ParsePolicy([]byte("{}"), ct); errors.Is(err, notify.ErrContentType) {
		writeError(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported media type %q: want application/json or application/yaml", clip(ct, 100)), "Content-Type")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, notify.MaxPolicyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", notify.MaxPolicyBytes), "")
		case isReadTimeout(err):
			writeError(w, http.StatusRequestTimeout, readTimeoutMsg, "")
		default:
			n.unavailable(w, r, err, "read policy")
		}
		return
	}
	p, err := notify.ParsePolicy(body, ct)
	if err != nil {
		var fe *notify.FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe.Error(), fe.Path)
			return
		}
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	doc, media := p.Source()
	if err := n.opts.Store.PutPolicy(r.Context(), store.StoredPolicy{Document: doc, MediaType: media, UpdatedAt: n.now()}); err != nil {
		n.unavailable(w, r, err, "store policy")
		return
	}
	if n.opts.SetPolicy != nil {
		n.opts.SetPolicy(p)
	}
	writeJSON(w, http.StatusOK, p.Redacted())
}

// getPolicy serves GET /api/v1/notifications/policy: the stored policy,
// redacted (no secret, URLs as scheme://host/<secret>).
func (n *notificationsAPI) getPolicy(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	sp, err := n.opts.Store.Policy(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no notification policy is set", "")
		return
	}
	if err != nil {
		n.unavailable(w, r, err, "read policy")
		return
	}
	p, err := notify.ParsePolicy(sp.Document, sp.MediaType)
	if err != nil {
		// The error names the place and never a secret.
		n.logger.LogAttrs(r.Context(), slog.LevelError, "api: the stored notification policy does not parse", slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "the stored notification policy does not parse: "+err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, p.Redacted())
}

// createSilence serves POST /api/v1/silences.
func (n *notificationsAPI) createSilence(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var req SilenceRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	now := n.now()
	sil := notify.Silence{Matchers: req.Matchers, CreatedBy: strings.TrimSpace(req.CreatedBy), Comment: req.Comment}
	if req.StartsAt != nil {
		sil.StartsAt = req.StartsAt.UTC()
	} else {
		sil.StartsAt = now.UTC()
	}
	if req.EndsAt != nil {
		sil.EndsAt = req.EndsAt.UTC()
	}
	if sil.CreatedBy == "" {
		sil.CreatedBy = p.Name
	}
	if err := sil.Validate(); err != nil {
		var fe *notify.FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe.Error(), fe.Path)
			return
		}
		writeError(w, http.StatusBadRequest, err.Error(), "matchers")
		return
	}
	if !sil.EndsAt.After(now) {
		writeFieldError(w, badField("ends_at", "is in the past: a silence must end after now"))
		return
	}
	stored, err := n.opts.Store.CreateSilence(r.Context(), sil)
	if err != nil {
		n.unavailable(w, r, err, "create silence")
		return
	}
	if n.opts.SilencesChanged != nil {
		n.opts.SilencesChanged()
	}
	writeJSON(w, http.StatusCreated, SilenceInfo{Silence: stored, Status: silenceStatus(stored, now)})
}

// listSilences serves GET /api/v1/silences?status=active|pending|expired.
func (n *notificationsAPI) listSilences(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"status"})
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	now := n.now()
	q := store.SilenceQuery{Limit: maxSilenceList}
	status := v.Get("status")
	switch status {
	case "":
	case SilenceActive, SilencePending:
		q.EndsAfter = now
	case SilenceExpired:
		q.EndedBy = now
	default:
		writeFieldError(w, badField("status", "%q is not active, pending or expired", clip(status, 40)))
		return
	}
	list, err := n.opts.Store.Silences(r.Context(), q)
	if err != nil {
		n.unavailable(w, r, err, "list silences")
		return
	}
	out := SilenceList{Silences: make([]SilenceInfo, 0, len(list))}
	for _, s := range list {
		st := silenceStatus(s, now)
		if status != "" && st != status {
			continue
		}
		out.Silences = append(out.Silences, SilenceInfo{Silence: s, Status: st})
	}
	out.Count = len(out.Silences)
	writeJSON(w, http.StatusOK, out)
}

// expireSilence serves DELETE /api/v1/silences/{id}: the silence ends now
// (it stays listed, expired). Expiring an expired silence succeeds again.
func (n *notificationsAPI) expireSilence(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeFieldError(w, badField("id", "must be a positive integer silence id, got %q", clip(raw, 40)))
		return
	}
	err = n.opts.Store.ExpireSilence(r.Context(), id, n.now())
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no silence with id %d", id), "")
		return
	}
	if err != nil {
		n.unavailable(w, r, err, "expire silence")
		return
	}
	if n.opts.SilencesChanged != nil {
		n.opts.SilencesChanged()
	}
	w.WriteHeader(http.StatusNoContent)
}

// listNotifications serves GET /api/v1/notifications?receiver=&status=&since=&limit=.
func (n *notificationsAPI) listNotifications(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"receiver", "status", "since", "limit"})
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	q := store.NotificationQuery{Receiver: v.Get("receiver"), Status: v.Get("status"), Limit: DefaultNotificationLimit}
	switch q.Status {
	case "", notify.StatusSent, notify.StatusFailed, notify.StatusRefused, notify.StatusSilenced:
	default:
		writeFieldError(w, badField("status", "%q is not sent, failed, refused or silenced", clip(q.Status, 40)))
		return
	}
	if s := v.Get("since"); s != "" {
		if q.Since, fe = parseTime("since", s); fe != nil {
			writeFieldError(w, fe)
			return
		}
	}
	if s := v.Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l < 1 || l > MaxNotificationLimit {
			writeFieldError(w, badField("limit", "must be an integer from 1 to %d", MaxNotificationLimit))
			return
		}
		q.Limit = l
	}
	list, err := n.opts.Store.Notifications(r.Context(), q)
	if err != nil {
		n.unavailable(w, r, err, "list notifications")
		return
	}
	writeJSON(w, http.StatusOK, NotificationList{Notifications: list, Count: len(list)})
}
