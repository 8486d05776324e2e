package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/store"
)

// KeyRequest is the body of POST /api/v1/keys.
type KeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// KeyInfo describes a stored API key; it never holds the secret or its
// hash.
type KeyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// CreatedKey is the answer of POST /api/v1/keys: the key's description and,
// this one time only, the key itself.
type CreatedKey struct {
	KeyInfo
	Key string `json:"key"`
}

// KeyList is the answer of GET /api/v1/keys.
type KeyList struct {
	Keys  []KeyInfo `json:"keys"`
	Count int       `json:"count"`
}

func keyInfo(k store.APIKey) KeyInfo {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return KeyInfo{ID: k.ID, Name: k.Name, Scopes: scopes, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// createKey serves POST /api/v1/keys.
func (s *eventsAPI) createKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req KeyRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	plain, k, err := s.auth.CreateKey(r.Context(), req.Name, req.Scopes)
	switch {
	case errors.Is(err, auth.ErrInvalidName):
		writeFieldError(w, badField("name", "%s", trimPrefixes(err.Error(), "auth: invalid key name: ", "auth: ")))
		return
	case errors.Is(err, auth.ErrInvalidScope):
		writeFieldError(w, badField("scopes", "%s", trimPrefixes(err.Error(), "auth: ")))
		return
	case err != nil:
		s.unavailable(w, r, err, "create key")
		return
	}
	writeJSON(w, http.StatusCreated, CreatedKey{KeyInfo: keyInfo(k), Key: plain})
}

// listKeys serves GET /api/v1/keys.
func (s *eventsAPI) listKeys(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	keys, err := s.auth.Keys(r.Context())
	if err != nil {
		s.unavailable(w, r, err, "list keys")
		return
	}
	out := KeyList{Keys: make([]KeyInfo, 0, len(keys)), Count: len(keys)}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyInfo(k))
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeKey serves DELETE /api/v1/keys/{id}. Revoking a revoked key
// succeeds again.
func (s *eventsAPI) revokeKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id := r.PathValue("id")
	err := s.auth.RevokeKey(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no API key with id "+quote(id), "")
		return
	}
	if err != nil {
		s.unavailable(w, r, err, "revoke key")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
