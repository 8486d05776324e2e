package dbcheck

import (
	"errors"
	"net/url"
	"sort"
	"strings"
)

// redacted replaces a secret in the text of errors and logs.
const redacted = "xxxxx"

// redactor removes a database's DSN and password, in the spellings they
// could take in a driver's message (as written, URL-escaped), from text.
// Drivers mostly leave passwords out of their errors already; this makes
// sure of it, for every error that can reach a log or an event.
type redactor struct {
	secrets []string // longest first
}

func newRedactor(dsn, password string) redactor {
	set := map[string]bool{}
	for _, s := range []string{dsn, password, url.QueryEscape(password), url.PathEscape(password), url.UserPassword("", password).String()[1:]} {
		if s != "" && s != ":" {
			set[s] = true
		}
	}
	r := redactor{}
	for s := range set {
		r.secrets = append(r.secrets, s)
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// text returns s with every secret replaced.
func (r redactor) text(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}

// err returns an error whose text is err's, redacted. It does not wrap
// err (whose text holds the secret); classify err before redacting it.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(r.text(err.Error()))
}
