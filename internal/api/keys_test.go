package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)

	// Create.
	w := e.do(req{method: http.MethodPost, path: "/api/v1/keys", key: "admin",
		body: `{"name":"grafana","scopes":["events:read","events:write"]}`, ctype: "application/json"})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var created CreatedKey
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &created))
	require.Regexp(t, regexp.MustCompile(`^rfx_[0-9a-f]{12}_[0-9a-f]{64}$`), created.Key)
	require.Equal(t, created.Key[4:16], created.ID)
	require.Equal(t, "grafana", created.Name)
	require.Equal(t, []string{"events:write", "events:read"}, created.Scopes)
	require.Equal(t, testNow, created.CreatedAt)
	require.Nil(t, created.RevokedAt)

	// The new key works with its scopes, and only them.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/events", key: "token:" + created.Key})
	require.Equal(t, http.StatusOK, w.Code)
	w = e.do(req{method: http.MethodGet, path: "/api/v1/keys", key: "token:" + created.Key})
	requireError(t, w, http.StatusForbidden, "", "admin")

	// Listed without secret or hash.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/keys", key: "admin"})
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), created.Key[17:])
	require.NotContains(t, w.Body.String(), "hash")
	require.NotContains(t, w.Body.String(), `"key"`)
	var list KeyList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Equal(t, 5, list.Count) // the four of newEnv and this one
	require.Equal(t, created.KeyInfo, list.Keys[4])

	// Revoke: the key stops working at once; revoking again is fine.
	w = e.do(req{method: http.MethodDelete, path: "/api/v1/keys/" + created.ID, key: "admin"})
	require.Equal(t, http.StatusNoContent, w.Code)
	w = e.do(req{method: http.MethodGet, path: "/api/v1/events", key: "token:" + created.Key})
	requireError(t, w, http.StatusUnauthorized, "", "revoked")
	w = e.do(req{method: http.MethodDelete, path: "/api/v1/keys/" + created.ID, key: "admin"})
	require.Equal(t, http.StatusNoContent, w.Code)

	w = e.do(req{method: http.MethodGet, path: "/api/v1/keys", key: "admin"})
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.NotNil(t, list.Keys[4].RevokedAt)
	require.Equal(t, testNow, *list.Keys[4].RevokedAt)

	requireError(t, e.do(req{method: http.MethodDelete, path: "/api/v1/keys/ffffffffffff", key: "admin"}), http.StatusNotFound, "", "ffffffffffff")
}

func TestAdminTokenManagesKeys(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: http.MethodPost, path: "/api/v1/keys", key: "token:" + adminToken,
		body: `{"name":"ops","scopes":["admin"]}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
}

func TestCreateKeyInvalid(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ctype  string
		status int
		field  string
	}{
		{name: "no name", body: `{"scopes":["admin"]}`, field: "name"},
		{name: "blank name", body: `{"name":"  ","scopes":["admin"]}`, field: "name"},
		{name: "no scopes", body: `{"name":"x"}`, field: "scopes"},
		{name: "empty scopes", body: `{"name":"x","scopes":[]}`, field: "scopes"},
		{name: "unknown scope", body: `{"name":"x","scopes":["events:delete"]}`, field: "scopes"},
		{name: "scope not a string", body: `{"name":"x","scopes":[1]}`, field: "scopes"},
		{name: "scopes not a list", body: `{"name":"x","scopes":"admin"}`, field: "scopes"},
		{name: "unknown field", body: `{"name":"x","scopes":["admin"],"expires":"never"}`, field: "expires"},
		{name: "not json", body: `name=x`},
		{name: "form", body: `name=x`, ctype: "application/x-www-form-urlencoded", status: http.StatusUnsupportedMediaType, field: "Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			status := tt.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			w := e.do(req{method: http.MethodPost, path: "/api/v1/keys", key: "admin", body: tt.body, ctype: tt.ctype})
			requireError(t, w, status, tt.field, tt.field)
			require.Len(t, e.store.keys, 4, "nothing stored")
		})
	}
}
