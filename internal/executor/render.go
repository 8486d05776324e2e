package executor

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"text/template"
)

// Render renders one templated parameter (Go text/template syntax:
// "{{.event.source_host}}", "{{.steps.diagnose.stdout}}") from data, as
// one value: the caller uses the result as exactly one argument, header
// value or body, never splitting or re-parsing it. A key that data does
// not have is an error (missingkey=error), not "<no value>": a step must
// not run with a parameter silently empty. Only the functions listed in
// Funcs are available. A string without "{{" is returned as it is.
func Render(tmpl string, data map[string]any) (string, error) {
	if !strings.Contains(tmpl, "{{") {
		return tmpl, nil
	}
	t, err := parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("%w: template %q: %w", ErrRefused, tmpl, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%w: template %q: %w", ErrRefused, tmpl, err)
	}
	return b.String(), nil
}

// Check parses a templated parameter without rendering it, for the
// validation of a definition.
func Check(tmpl string) error {
	if !strings.Contains(tmpl, "{{") {
		return nil
	}
	if _, err := parse(tmpl); err != nil {
		return fmt.Errorf("%w: template %q: %w", ErrInvalid, tmpl, err)
	}
	return nil
}

// Funcs are the functions a template may call, beyond text/template's
// builtins: none that reach outside the data.
var Funcs = template.FuncMap{
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"trim":  strings.TrimSpace,
	// pathescape escapes a value for one segment of a URL's path
	// (urlquery, a builtin, for a query).
	"pathescape": url.PathEscape,
	"default": func(def string, v any) any {
		if v == nil || v == "" {
			return def
		}
		return v
	},
}

var (
	parsedMu sync.Mutex
	parsed   = map[string]*template.Template{}
)

// parse parses tmpl once; definitions are few and rendered often.
func parse(tmpl string) (*template.Template, error) {
	parsedMu.Lock()
	defer parsedMu.Unlock()
	if t, ok := parsed[tmpl]; ok {
		return t, nil
	}
	t, err := template.New("param").Option("missingkey=error").Funcs(Funcs).Parse(tmpl)
	if err != nil {
		return nil, err
	}
	if len(parsed) >= 4096 { // bounded: definitions change rarely
		clear(parsed)
	}
	parsed[tmpl] = t
	return t, nil
}

// Dash says what a process executor does with a rendered parameter that
// begins with "-" (which the program would take for an option).
type Dash string

const (
	// DashRefuse refuses the run (ErrRefused): the default.
	DashRefuse Dash = "refuse"
	// DashSeparate passes the arguments after the program's fixed
	// arguments behind a "--", so that none is read as an option.
	DashSeparate Dash = "separate"
)

// ParseDash reads a definition's "dash_args" ("" is DashRefuse).
func ParseDash(s string) (Dash, error) {
	switch Dash(s) {
	case "", DashRefuse:
		return DashRefuse, nil
	case DashSeparate:
		return DashSeparate, nil
	}
	return "", fmt.Errorf("%w: dash_args %q: want %q or %q", ErrInvalid, s, DashRefuse, DashSeparate)
}

// Limited is an io.Writer that keeps the first Max bytes written to it
// and counts the rest; it never fails, so that a process writing more
// than the bound is not stopped by a broken pipe. Safe for concurrent
// writes (stdout and stderr of one process).
type Limited struct {
	Max int

	mu        sync.Mutex
	buf       []byte
	truncated bool
}

// Write keeps what fits and drops the rest.
func (l *Limited) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room := l.Max - len(l.buf)
	if room < len(p) {
		l.truncated = true
		if room > 0 {
			l.buf = append(l.buf, p[:room]...)
		}
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// Bytes returns what was kept and whether anything was dropped.
func (l *Limited) Bytes() ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.buf...), l.truncated
}
