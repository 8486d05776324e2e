package enrich

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

func TestLoadFile(t *testing.T) {
	assets, err := LoadFile(filepath.Join("testdata", "assets.yaml"))
	require.NoError(t, err)
	require.Equal(t, []store.Asset{
		{
			Host: "web-server-01", Environment: "production", Criticality: "high",
			Owner: "alice@example.com", Team: "web", Service: "nginx",
			Dependencies: []string{"db-01", "cache-01"}, Tags: []string{"frontend", "pci"},
		},
		{Host: "db-01", Environment: "production", Criticality: "critical", Team: "data", Service: "postgresql"},
		{Host: "dev-box"},
	}, assets)

	_, err = LoadFile(filepath.Join("testdata", "missing.yaml"))
	require.ErrorContains(t, err, "enrich: read asset file")
}

func TestParseAssets(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    int    // number of assets when no error
		wantErr string // substring of the error
		field   string // FieldError.Field when the error is a FieldError
	}{
		{name: "empty file", yaml: "", want: 0},
		{name: "comment only", yaml: "# nothing\n", want: 0},
		{name: "null list", yaml: "assets:\n", want: 0},
		{name: "one asset", yaml: "assets:\n  - host: a\n", want: 1},
		{name: "flow style", yaml: "assets: [{host: a, dependencies: [b]}, {host: b}]", want: 2},
		{name: "empty criticality", yaml: "assets:\n  - host: a\n    criticality: ''\n", want: 1},
		{name: "top level not a mapping", yaml: "- host: a\n", wantErr: "want a mapping with an \"assets\" list"},
		{name: "unknown top level key", yaml: "assets: []\nhosts: []\n", wantErr: `unknown key "hosts"`},
		{name: "assets not a list", yaml: "assets: {host: a}\n", wantErr: `"assets" must be a list`},
		{name: "entry not a mapping", yaml: "assets:\n  - a\n", wantErr: "want a mapping", field: "assets[0]"},
		{name: "unknown field", yaml: "assets:\n  - host: a\n  - host: b\n    datacenter: x\n", wantErr: "unknown field", field: "assets[1].datacenter"},
		{name: "missing host", yaml: "assets:\n  - team: web\n", wantErr: "required", field: "assets[0].host"},
		{name: "blank host", yaml: "assets:\n  - host: '  '\n", wantErr: "required", field: "assets[0].host"},
		{name: "bad criticality", yaml: "assets:\n  - host: a\n    criticality: urgent\n", wantErr: `"urgent" is not one of critical, high, medium, low`, field: "assets[0].criticality"},
		{name: "duplicate host", yaml: "assets:\n  - host: a\n  - host: A\n", wantErr: "listed twice (also assets[0])", field: "assets[1].host"},
		{name: "duplicate field", yaml: "assets:\n  - host: a\n    host: b\n", wantErr: "given twice", field: "assets[0].host"},
		{name: "dependencies not a list", yaml: "assets:\n  - host: a\n    dependencies: b\n", wantErr: "want a list of strings", field: "assets[0].dependencies"},
		{name: "host not a string", yaml: "assets:\n  - host: [a]\n", wantErr: "want a string", field: "assets[0].host"},
		{name: "self dependency", yaml: "assets:\n  - host: a\n    dependencies: [b, A]\n", wantErr: "cannot depend on itself", field: "assets[0].dependencies[1]"},
		{name: "empty dependency", yaml: "assets:\n  - host: a\n    dependencies: ['']\n", wantErr: "empty host name", field: "assets[0].dependencies[0]"},
		{name: "long tag", yaml: "assets:\n  - host: a\n    tags: [" + strings.Repeat("x", 51) + "]\n", wantErr: "longer than 50", field: "assets[0].tags[0]"},
		{name: "host with space", yaml: "assets:\n  - host: a b\n", wantErr: "contains a space", field: "assets[0].host"},
		{name: "mixed-case hosts are one", yaml: "assets:\n  - host: CaseHost\n  - host: casehost\n", wantErr: `host "casehost" is listed twice`, field: "assets[1].host"},
		{name: "NUL in owner", yaml: "assets:\n  - host: a\n    owner: \"al\\0ice\"\n", wantErr: "control character", field: "assets[0].owner"},
		{name: "escape in host", yaml: "assets:\n  - host: \"a\\x1b\"\n", wantErr: "control character", field: "assets[0].host"},
		{name: "NUL in tag", yaml: "assets:\n  - host: a\n    tags: [\"t\\0\"]\n", wantErr: "control character", field: "assets[0].tags[0]"},
		{name: "NUL in dependency", yaml: "assets:\n  - host: a\n    dependencies: [\"b\\0\"]\n", wantErr: "control character", field: "assets[0].dependencies[0]"},
		{name: "two documents", yaml: "assets: []\n---\nassets: []\n", wantErr: "want one YAML document"},
		{name: "not yaml", yaml: "assets: [\n", wantErr: "enrich: asset file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAssets([]byte(tt.yaml))
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Len(t, got, tt.want)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			if tt.field != "" {
				var fe *FieldError
				require.True(t, errors.As(err, &fe), "want a *FieldError, got %T: %v", err, err)
				require.Equal(t, tt.field, fe.Field)
				require.Positive(t, fe.Line)
				require.ErrorIs(t, err, ErrInvalidAsset)
			}
		})
	}
}

func TestParseAssetsErrorLine(t *testing.T) {
	_, err := ParseAssets([]byte("assets:\n  - host: a\n  - host: b\n    criticality: urgent\n"))
	require.EqualError(t, err, `enrich: invalid asset: assets[1].criticality (line 4): "urgent" is not one of critical, high, medium, low (or empty)`)
}

func TestValidateAsset(t *testing.T) {
	a := store.Asset{Host: " DB-01 ", Criticality: " Critical", Dependencies: []string{" Storage-01"}, Tags: []string{" x "}}
	require.NoError(t, ValidateAsset(&a))
	require.Equal(t, store.Asset{Host: "db-01", Criticality: "critical", Dependencies: []string{"storage-01"}, Tags: []string{"x"}}, a)

	err := ValidateAsset(&store.Asset{Host: "a", Service: strings.Repeat("s", 101)})
	require.EqualError(t, err, "enrich: invalid asset: service: longer than 100 characters")
}

func FuzzParseAssets(f *testing.F) {
	f.Add([]byte("assets:\n  - host: a\n    dependencies: [b]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		assets, err := ParseAssets(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, a := range assets {
			if a.Host == "" || a.Host != strings.ToLower(a.Host) {
				t.Fatalf("bad host %q", a.Host)
			}
			if a.Criticality != "" && !validCriticality(a.Criticality) {
				t.Fatalf("bad criticality %q", a.Criticality)
			}
			if seen[a.Host] {
				t.Fatalf("duplicate host %q", a.Host)
			}
			seen[a.Host] = true
		}
	})
}
