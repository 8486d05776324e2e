package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/store"
)

// Limits of an asset.
const (
	maxHostLen     = 255
	maxAssetText   = 255
	maxAssetList   = 100
	maxAssetTagLen = 50 // the seed's tags are VARCHAR(50)
)

// Criticalities lists the criticality values an asset may have ("" too).
var Criticalities = []string{"critical", "high", "medium", "low"}

// AssetList is the answer of GET /api/v1/assets.
type AssetList struct {
	Assets []store.Asset `json:"assets"`
	Count  int           `json:"count"`
}

// listAssets serves GET /api/v1/assets.
func (s *eventsAPI) listAssets(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if fe := noParams(r); fe != nil {
		writeFieldError(w, fe)
		return
	}
	assets, err := s.store.Assets(r.Context())
	if err != nil {
		s.unavailable(w, r, err, "list assets")
		return
	}
	if assets == nil {
		assets = []store.Asset{}
	}
	writeJSON(w, http.StatusOK, AssetList{Assets: assets, Count: len(assets)})
}

// getAsset serves GET /api/v1/assets/{host}.
func (s *eventsAPI) getAsset(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	host, fe := pathHost(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	a, err := s.store.Asset(r.Context(), host)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no asset for host "+quote(host), "")
		return
	}
	if err != nil {
		s.unavailable(w, r, err, "read asset")
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// putAsset serves PUT /api/v1/assets/{host}: create or replace. It answers
// 201 when the asset is new, 200 when it replaced one, with the stored
// asset.
func (s *eventsAPI) putAsset(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	host, fe := pathHost(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	var a store.Asset
	if fe := decodeJSON(w, r, &a, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	if a.Host != "" && strings.ToLower(a.Host) != host {
		writeFieldError(w, badField("host", "%s differs from the host in the path, %s", quote(a.Host), quote(host)))
		return
	}
	a.Host = host
	if fe := normalizeAsset(&a); fe != nil {
		writeFieldError(w, fe)
		return
	}
	a.UpdatedAt = s.now().UTC()

	// Serialize writes so that the cache ends with what the store holds.
	s.assetMu.Lock()
	defer s.assetMu.Unlock()
	status := http.StatusOK
	if _, err := s.store.Asset(r.Context(), host); errors.Is(err, store.ErrNotFound) {
		status = http.StatusCreated
	} else if err != nil {
		s.unavailable(w, r, err, "read asset")
		return
	}
	if err := s.store.PutAsset(r.Context(), a); err != nil {
		s.unavailable(w, r, err, "write asset")
		return
	}
	if s.assets != nil {
		s.assets.Set(a)
	}
	writeJSON(w, status, a)
}

// deleteAsset serves DELETE /api/v1/assets/{host}.
func (s *eventsAPI) deleteAsset(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	host, fe := pathHost(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	s.assetMu.Lock()
	defer s.assetMu.Unlock()
	err := s.store.DeleteAsset(r.Context(), host)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no asset for host "+quote(host), "")
		return
	}
	if err != nil {
		s.unavailable(w, r, err, "delete asset")
		return
	}
	if s.assets != nil {
		s.assets.Delete(host)
	}
	w.WriteHeader(http.StatusNoContent)
}

// pathHost returns the {host} of the path, lowercased: event hosts are
// lowercased by the normalizer, so asset hosts are too, at every entry
// (CaseHost and casehost are one asset).
func pathHost(r *http.Request) (string, *fieldError) {
	host := r.PathValue("host")
	if fe := checkHost("host", host); fe != nil {
		return "", fe
	}
	return strings.ToLower(host), nil
}

// checkText rejects control characters (NUL among them: PostgreSQL text
// cannot hold it) in an asset's free-text field.
func checkText(field, s string) *fieldError {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return badField(field, "must not contain control characters (such as NUL)")
	}
	return nil
}

// checkHost validates a host name: 1 to 255 bytes of printable UTF-8
// without spaces or slashes.
func checkHost(field, h string) *fieldError {
	if h == "" {
		return badField(field, "must not be empty")
	}
	if len(h) > maxHostLen {
		return badField(field, "longer than %d bytes", maxHostLen)
	}
	if !utf8.ValidString(h) {
		return badField(field, "not valid UTF-8")
	}
	for _, r := range h {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' {
			return badField(field, "must not contain spaces, slashes or control characters")
		}
	}
	return nil
}

// normalizeAsset validates a and normalizes it in place: criticality in
// lower case, text trimmed, dependencies and tags deduplicated.
func normalizeAsset(a *store.Asset) *fieldError {
	a.Criticality = strings.ToLower(strings.TrimSpace(a.Criticality))
	if a.Criticality != "" && !slices.Contains(Criticalities, a.Criticality) {
		return badField("criticality", "unknown %q: want critical, high, medium, low or empty", clip(a.Criticality, 40))
	}
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"environment", &a.Environment},
		{"owner", &a.Owner},
		{"team", &a.Team},
		{"service", &a.Service},
	} {
		*f.v = strings.TrimSpace(*f.v)
		if len(*f.v) > maxAssetText || !utf8.ValidString(*f.v) {
			return badField(f.name, "must be valid UTF-8 of at most %d bytes", maxAssetText)
		}
		if fe := checkText(f.name, *f.v); fe != nil {
			return fe
		}
	}
	if len(a.Dependencies) > maxAssetList {
		return badField("dependencies", "at most %d hosts", maxAssetList)
	}
	deps := make([]string, 0, len(a.Dependencies))
	for _, d := range a.Dependencies {
		if fe := checkHost("dependencies", d); fe != nil {
			return fe
		}
		d = strings.ToLower(d)
		if d == a.Host {
			return badField("dependencies", "a host cannot depend on itself")
		}
		if !slices.Contains(deps, d) {
			deps = append(deps, d)
		}
	}
	a.Dependencies = deps
	if len(a.Tags) > maxAssetList {
		return badField("tags", "at most %d tags", maxAssetList)
	}
	tags := make([]string, 0, len(a.Tags))
	for _, t := range a.Tags {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > maxAssetTagLen || !utf8.ValidString(t) {
			return badField("tags", "each tag must be 1 to %d bytes of UTF-8", maxAssetTagLen)
		}
		if fe := checkText("tags", t); fe != nil {
			return fe
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	a.Tags = tags
	if len(a.Dependencies) == 0 {
		a.Dependencies = nil
	}
	if len(a.Tags) == 0 {
		a.Tags = nil
	}
	return nil
}

// quote quotes a client-supplied string for a message, clipped.
func quote(s string) string {
	return strconv.Quote(clip(s, 100))
}
