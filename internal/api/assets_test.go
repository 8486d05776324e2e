package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

func TestAssetLifecycle(t *testing.T) {
	e := newEnv(t)
	body := `{"environment":"production","criticality":"Critical","owner":"alice","team":"web",
		"service":"nginx","dependencies":["db-01","lb-01","db-01"],"tags":["pci"," edge "]}`

	// Absent at first.
	requireError(t, e.do(req{method: http.MethodGet, path: "/api/v1/assets/web-server-01", key: "reader"}), http.StatusNotFound, "", "web-server-01")

	// Created.
	w := e.do(req{method: http.MethodPut, path: "/api/v1/assets/web-server-01", key: "admin", body: body, ctype: "application/json"})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var got store.Asset
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	want := store.Asset{Host: "web-server-01", Environment: "production", Criticality: "critical", Owner: "alice", Team: "web",
		Service: "nginx", Dependencies: []string{"db-01", "lb-01"}, Tags: []string{"pci", "edge"}, UpdatedAt: testNow}
	require.Equal(t, want, got)
	require.Equal(t, want, e.store.assets["web-server-01"])
	require.Equal(t, want, e.cache.assets["web-server-01"], "the cache is updated")

	// Read back, alone and in the list.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/assets/web-server-01", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, want, got)

	e.do(req{method: http.MethodPut, path: "/api/v1/assets/db-01", key: "admin", body: `{"criticality":"high"}`})
	w = e.do(req{method: http.MethodGet, path: "/api/v1/assets", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	var list AssetList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Equal(t, 2, list.Count)
	require.Equal(t, "db-01", list.Assets[0].Host)
	require.Equal(t, "web-server-01", list.Assets[1].Host)

	// Replaced: 200, the whole asset (not a merge).
	w = e.do(req{method: http.MethodPut, path: "/api/v1/assets/web-server-01", key: "admin",
		body: `{"host":"web-server-01","criticality":"low"}`, ctype: "application/json; charset=utf-8"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, store.Asset{Host: "web-server-01", Criticality: "low", UpdatedAt: testNow}, e.cache.assets["web-server-01"])

	// Deleted, then gone.
	w = e.do(req{method: http.MethodDelete, path: "/api/v1/assets/web-server-01", key: "admin"})
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Empty(t, w.Body.String())
	require.NotContains(t, e.cache.assets, "web-server-01")
	requireError(t, e.do(req{method: http.MethodDelete, path: "/api/v1/assets/web-server-01", key: "admin"}), http.StatusNotFound, "", "")
	requireError(t, e.do(req{method: http.MethodGet, path: "/api/v1/assets/web-server-01", key: "reader"}), http.StatusNotFound, "", "")

	require.Equal(t, []string{"set web-server-01", "set db-01", "set web-server-01", "delete web-server-01"}, e.cache.ops)
}

func TestAssetEmptyList(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: http.MethodGet, path: "/api/v1/assets", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"assets":[],"count":0}`, w.Body.String())
}

func TestPutAssetInvalid(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   string
		ctype  string
		status int
		field  string
	}{
		{name: "unknown field", body: `{"criticality":"high","owners":"bob"}`, field: "owners"},
		{name: "bad criticality", body: `{"criticality":"urgent"}`, field: "criticality"},
		{name: "host differs", body: `{"host":"other"}`, field: "host"},
		{name: "depends on itself", body: `{"dependencies":["web-01"]}`, field: "dependencies"},
		{name: "bad dependency", body: `{"dependencies":["has space"]}`, field: "dependencies"},
		{name: "empty tag", body: `{"tags":[""]}`, field: "tags"},
		{name: "long tag", body: `{"tags":["` + strings.Repeat("t", 51) + `"]}`, field: "tags"},
		{name: "long owner", body: `{"owner":"` + strings.Repeat("o", 256) + `"}`, field: "owner"},
		{name: "wrong type", body: `{"dependencies":"db-01"}`, field: "dependencies"},
		{name: "not an object", body: `["web-01"]`},
		{name: "not json", body: `criticality: high`},
		{name: "truncated", body: `{"criticality":"high"`},
		{name: "empty body", body: ``},
		{name: "two objects", body: `{} {}`},
		{name: "text content type", body: `{}`, ctype: "text/plain", status: http.StatusUnsupportedMediaType, field: "Content-Type"},
		{name: "too large", body: `{"owner":"` + strings.Repeat("o", maxJSONBodyBytes) + `"}`, status: http.StatusRequestEntityTooLarge},
		{name: "slash in host", path: "/api/v1/assets/a%2Fb", body: `{}`, field: "host"},
		{name: "long host", path: "/api/v1/assets/" + strings.Repeat("h", 256), body: `{}`, field: "host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			path := tt.path
			if path == "" {
				path = "/api/v1/assets/web-01"
			}
			status := tt.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			w := e.do(req{method: http.MethodPut, path: path, key: "admin", body: tt.body, ctype: tt.ctype})
			requireError(t, w, status, tt.field, tt.field)
			require.Empty(t, e.store.assets)
			require.Empty(t, e.cache.ops)
		})
	}
}

// TestAssetHostsAreLowercased is the regression test of issue 5 §1.7: event
// hosts are lowercased, asset hosts were not, so CaseHost and casehost
// became two assets and neither enriched CaseHost's events.
func TestAssetHostsAreLowercased(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: http.MethodPut, path: "/api/v1/assets/CaseHost", key: "admin", body: `{"host":"CASEHOST","dependencies":["DB-01","db-01"]}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	w = e.do(req{method: http.MethodPut, path: "/api/v1/assets/casehost", key: "admin", body: `{"criticality":"high","dependencies":["DB-01"]}`})
	require.Equal(t, http.StatusOK, w.Code, "the same asset: %s", w.Body.String())
	require.Len(t, e.store.assets, 1)
	want := store.Asset{Host: "casehost", Criticality: "high", Dependencies: []string{"db-01"}, UpdatedAt: testNow}
	require.Equal(t, want, e.store.assets["casehost"])
	require.Equal(t, want, e.cache.assets["casehost"])

	w = e.do(req{method: http.MethodGet, path: "/api/v1/assets/CASEHOST", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	w = e.do(req{method: http.MethodDelete, path: "/api/v1/assets/CaseHost", key: "admin"})
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Empty(t, e.cache.assets)
}

// TestAssetFieldsRejectControlCharacters is the regression test of issue 5
// §1.7: asset fields accepted NUL, which PostgreSQL cannot store.
func TestAssetFieldsRejectControlCharacters(t *testing.T) {
	e := newEnv(t)
	for field, body := range map[string]string{
		"owner":        `{"owner":"al\u0000ice"}`,
		"team":         `{"team":"a\u0007b"}`,
		"environment":  `{"environment":"prod\u001b[31m"}`,
		"service":      `{"service":"x\u007f"}`,
		"tags":         `{"tags":["ok","t\u0000"]}`,
		"dependencies": `{"dependencies":["db\u0000"]}`,
	} {
		w := e.do(req{method: http.MethodPut, path: "/api/v1/assets/web-01", key: "admin", body: body})
		requireError(t, w, http.StatusBadRequest, field, "control characters")
	}
	require.Empty(t, e.store.assets)
}
