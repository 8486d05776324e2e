package snmp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gosnmp/gosnmp"
	"gopkg.in/yaml.v3"

	"github.com/reflex-ops/reflex/internal/event"
)

// DefaultCommunity is the community a listener without a configuration
// file accepts for v1 and v2c.
const DefaultCommunity = "public"

// FileConfig is the YAML of --snmp-config. Unknown keys are errors.
//
//	communities: [public, ops-ro]     # v1/v2c allow-list; absent: [public]; [] refuses v1/v2c
//	engine_id: 80001f8880...          # optional, hex: this receiver's engine ID (for v3 informs)
//	default_severity: medium          # optional: traps neither table names
//	users:                            # SNMPv3 USM users
//	  - name: monitor
//	    auth_protocol: SHA            # MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
//	    auth_passphrase_file: /etc/reflex/snmp-monitor-auth
//	    priv_protocol: AES            # none, DES, AES, AES-192, AES-256, AES-192-C, AES-256-C
//	    priv_passphrase_env: REFLEX_SNMP_MONITOR_PRIV
//	    engine_id: 8000000001020304   # optional, hex: accept this user's traps from this engine only
//	oids:                             # names and severities over the built-in table
//	  1.3.6.1.4.1.9999.0.1: {name: fanFailure, severity: high}
type FileConfig struct {
	Communities     *[]string         `yaml:"communities"`
	EngineID        string            `yaml:"engine_id"`
	DefaultSeverity string            `yaml:"default_severity"`
	Users           []UserConfig      `yaml:"users"`
	OIDs            map[string]OIDDef `yaml:"oids"`
}

// UserConfig is one SNMPv3 user. Each passphrase comes from a file (its
// first line) or an environment variable, never from the YAML itself.
type UserConfig struct {
	Name               string `yaml:"name"`
	AuthProtocol       string `yaml:"auth_protocol"`
	AuthPassphraseFile string `yaml:"auth_passphrase_file"`
	AuthPassphraseEnv  string `yaml:"auth_passphrase_env"`
	PrivProtocol       string `yaml:"priv_protocol"`
	PrivPassphraseFile string `yaml:"priv_passphrase_file"`
	PrivPassphraseEnv  string `yaml:"priv_passphrase_env"`
	EngineID           string `yaml:"engine_id"`
}

// OIDDef names an OID and, for a trap OID, gives its severity; either may
// be empty.
type OIDDef struct {
	Name     string `yaml:"name"`
	Severity string `yaml:"severity"`
}

// User is a v3 user ready to authenticate: secrets read, protocols
// parsed. Its String never shows the passphrases.
type User struct {
	Name     string
	Auth     gosnmp.SnmpV3AuthProtocol
	Priv     gosnmp.SnmpV3PrivProtocol
	authPass string
	privPass string
	// EngineID, when set, is the only authoritative engine (the trap
	// sender's) this user's traps are accepted from.
	EngineID string
}

// String names the user and its protocols, not its passphrases.
func (u User) String() string { return fmt.Sprintf("%s (%s, %s)", u.Name, u.Auth, u.Priv) }

// Settings is what a listener is configured with, once loaded.
type Settings struct {
	// Communities is the v1/v2c allow-list; empty refuses v1 and v2c.
	Communities []string
	// Users are the v3 users; none refuses v3.
	Users []User
	// EngineID is this receiver's authoritative engine ID (v3 informs).
	EngineID string
	// Table names OIDs and gives trap severities: the built-in table with
	// the file's oids over it.
	Table *Table
}

// DefaultSettings are the settings without a configuration file: the
// community public, no v3 user, the built-in table.
func DefaultSettings() Settings {
	return Settings{Communities: []string{DefaultCommunity}, Table: NewTable(nil, "")}
}

// ErrConfig wraps every error of a configuration file.
var ErrConfig = errors.New("snmp: config")

// LoadConfig reads the --snmp-config file at path ("" gives
// DefaultSettings), with getenv for the passphrases named by *_env keys.
func LoadConfig(path string, getenv func(string) string) (Settings, error) {
	if path == "" {
		return DefaultSettings(), nil
	}
	data, err := os.ReadFile(path) //nolint:gosec // the operator's own file
	if err != nil {
		return Settings{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return ParseConfig(data, getenv)
}

// ParseConfig decodes and checks a configuration file's YAML.
func ParseConfig(data []byte, getenv func(string) string) (Settings, error) {
	var fc FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return Settings{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return fc.Settings(getenv)
}

// Settings checks the file's fields and reads the users' secrets.
func (fc FileConfig) Settings(getenv func(string) string) (Settings, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	s := Settings{Communities: []string{DefaultCommunity}}
	if fc.Communities != nil {
		s.Communities = nil
		for i, c := range *fc.Communities {
			if c == "" || len(c) > 127 {
				bad("communities[%d]: must be 1 to 127 bytes", i)
				continue
			}
			s.Communities = append(s.Communities, c)
		}
	}
	if fc.EngineID != "" {
		id, err := engineID(fc.EngineID)
		if err != nil {
			bad("engine_id: %v", err)
		}
		s.EngineID = id
	}
	if fc.DefaultSeverity != "" {
		if _, err := event.ParseSeverity(fc.DefaultSeverity); err != nil {
			bad("default_severity: %q is not a severity", fc.DefaultSeverity)
		}
	}
	seen := map[string]bool{}
	for i, uc := range fc.Users {
		u, err := uc.user(getenv)
		if err != nil {
			bad("users[%d]: %v", i, err)
			continue
		}
		if seen[u.Name] {
			bad("users[%d]: user %q is defined twice", i, u.Name)
			continue
		}
		seen[u.Name] = true
		s.Users = append(s.Users, u)
	}
	user := map[string]OIDDef{}
	for oid, def := range fc.OIDs {
		o, ok := cleanOID(oid)
		if !ok {
			bad("oids: %q is not a numeric OID", oid)
			continue
		}
		if def.Severity != "" {
			if _, err := event.ParseSeverity(def.Severity); err != nil {
				bad("oids: %s: %q is not a severity", oid, def.Severity)
				continue
			}
		}
		if def.Name == "" && def.Severity == "" {
			bad("oids: %s: give a name or a severity", oid)
			continue
		}
		user[o] = def
	}
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	var def event.Severity
	if fc.DefaultSeverity != "" {
		def, _ = event.ParseSeverity(fc.DefaultSeverity)
	}
	s.Table = NewTable(user, def)
	return s, nil
}

// user checks a user's fields and reads its passphrases.
func (uc UserConfig) user(getenv func(string) string) (User, error) {
	u := User{Name: uc.Name}
	if uc.Name == "" || len(uc.Name) > 32 {
		return User{}, errors.New("name: must be 1 to 32 bytes")
	}
	var ok bool
	if u.Auth, ok = authProtocols[normProto(uc.AuthProtocol)]; !ok {
		return User{}, fmt.Errorf("user %s: auth_protocol %q: want MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512", uc.Name, uc.AuthProtocol)
	}
	pp := normProto(uc.PrivProtocol)
	if pp == "" {
		pp = "NONE"
	}
	if u.Priv, ok = privProtocols[pp]; !ok {
		return User{}, fmt.Errorf("user %s: priv_protocol %q: want none, DES, AES, AES-192, AES-256, AES-192-C or AES-256-C", uc.Name, uc.PrivProtocol)
	}
	var err error
	if u.authPass, err = secret(uc.AuthPassphraseFile, uc.AuthPassphraseEnv, getenv); err != nil {
		return User{}, fmt.Errorf("user %s: auth passphrase: %w", uc.Name, err)
	}
	if len(u.authPass) < 8 {
		return User{}, fmt.Errorf("user %s: auth passphrase: at least 8 characters (RFC 3414)", uc.Name)
	}
	if u.Priv != gosnmp.NoPriv {
		if u.privPass, err = secret(uc.PrivPassphraseFile, uc.PrivPassphraseEnv, getenv); err != nil {
			return User{}, fmt.Errorf("user %s: priv passphrase: %w", uc.Name, err)
		}
		if len(u.privPass) < 8 {
			return User{}, fmt.Errorf("user %s: priv passphrase: at least 8 characters (RFC 3414)", uc.Name)
		}
	} else if uc.PrivPassphraseFile != "" || uc.PrivPassphraseEnv != "" {
		return User{}, fmt.Errorf("user %s: a priv passphrase without a priv_protocol", uc.Name)
	}
	if uc.EngineID != "" {
		if u.EngineID, err = engineID(uc.EngineID); err != nil {
			return User{}, fmt.Errorf("user %s: engine_id: %w", uc.Name, err)
		}
	}
	return u, nil
}

// secret reads a passphrase from a file (its first line) or from the
// environment variable env: exactly one of them.
func secret(file, env string, getenv func(string) string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", errors.New("give a file or an environment variable, not both")
	case file != "":
		data, err := os.ReadFile(file) //nolint:gosec // the operator's own file
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(data), "\n")
		return strings.TrimRight(line, "\r"), nil
	case env != "":
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", env)
		}
		return v, nil
	}
	return "", errors.New("missing: give a *_passphrase_file or a *_passphrase_env")
}

// engineID decodes an engine ID written in hex (with an optional 0x and
// colons or spaces): 5 to 32 octets (RFC 3411).
func engineID(s string) (string, error) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	s = strings.NewReplacer(":", "", " ", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%q is not hex", s)
	}
	if len(b) < 5 || len(b) > 32 {
		return "", fmt.Errorf("%d octets, want 5 to 32", len(b))
	}
	return string(b), nil
}

func normProto(s string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToUpper(strings.TrimSpace(s)))
}

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
	"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA1": gosnmp.SHA,
	"SHA224": gosnmp.SHA224, "SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
	"NONE": gosnmp.NoPriv, "DES": gosnmp.DES, "AES": gosnmp.AES, "AES128": gosnmp.AES,
	"AES192": gosnmp.AES192, "AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
}
