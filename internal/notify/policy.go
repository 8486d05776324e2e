package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Policy is a notification policy in Alertmanager's shape: the receivers
// and the routing tree that picks, for each alert, its receivers and how
// its group is timed. A Policy is immutable and safe for concurrent use.
//
// A Policy holds secrets (webhook secrets, passwords, routing keys, the
// tokens in webhook URLs). Its JSON form (MarshalJSON, and Redacted) shows
// none of them; Source returns the document as it was given, secrets
// included, for persistence only.
type Policy struct {
	doc      policyDoc
	root     *Route
	byName   map[string]int // receiver name -> index in doc.Receivers
	redacted bool

	source     []byte // the document as given
	sourceType string // MediaJSON or MediaYAML
}

// The media types Source reports.
const (
	MediaJSON = "application/json"
	MediaYAML = "application/yaml"
)

// ErrContentType is returned by ParsePolicy for a content type other than
// JSON and YAML (an HTTP 415).
var ErrContentType = errors.New("notify: a policy is application/json or application/yaml")

// SecretPlaceholder stands for a secret in a redacted policy. A policy
// that holds it where a secret goes is refused, so that a redacted policy
// read back and stored again does not replace the secrets with it.
const SecretPlaceholder = "<secret>"

// policyDoc is the document as given: what a route leaves unset stays
// unset (inheritance is resolved in Route).
type policyDoc struct {
	Receivers []Receiver `json:"receivers"`
	Route     routeDoc   `json:"route"`
}

type routeDoc struct {
	Receiver       string     `json:"receiver,omitempty"`
	GroupBy        *[]string  `json:"group_by,omitempty"` // nil: inherited; empty: one group
	GroupWait      *Duration  `json:"group_wait,omitempty"`
	GroupInterval  *Duration  `json:"group_interval,omitempty"`
	RepeatInterval *Duration  `json:"repeat_interval,omitempty"`
	Matchers       Matchers   `json:"matchers,omitempty"`
	Continue       bool       `json:"continue,omitempty"`
	Routes         []routeDoc `json:"routes,omitempty"`
}

// ParsePolicy reads and validates a policy document. contentType is the
// HTTP Content-Type: application/json (or empty) for JSON;
// application/yaml, application/x-yaml or text/yaml for YAML; any other is
// ErrContentType. Decoding is strict: an unknown field is an error. Every
// other error is a *FieldError naming the place, such as
// `route.routes[0].receiver: unknown receiver "pagr"`, and holds no secret.
func ParsePolicy(data []byte, contentType string) (*Policy, error) {
	isYAML, media, err := policyFormat(contentType)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxPolicyBytes {
		return nil, &FieldError{Problem: fmt.Sprintf("the policy is larger than %d bytes", MaxPolicyBytes)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &FieldError{Problem: "the policy is empty"}
	}
	var tree *node
	if isYAML {
		tree, err = parseYAMLTree(data)
	} else {
		tree, err = parseJSONTree(data)
	}
	if err != nil {
		return nil, err
	}
	p, err := decodePolicy(tree, isYAML)
	if err != nil {
		return nil, err
	}
	p.source = bytes.Clone(data)
	p.sourceType = media
	return p, nil
}

// LoadPolicyFile reads the policy in the file at path: JSON when its name
// ends in .json, YAML otherwise. Errors name the file.
func LoadPolicyFile(path string) (*Policy, error) {
	f, err := os.Open(path) //nolint:gosec // an operator's configuration file
	if err != nil {
		return nil, fmt.Errorf("notify: read policy: %w", err)
	}
	defer f.Close() //nolint:errcheck // read only
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("notify: read policy: %w", err)
	}
	media := MediaYAML
	if strings.EqualFold(filepath.Ext(path), ".json") {
		media = MediaJSON
	}
	p, err := ParsePolicy(data, media)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func policyFormat(contentType string) (isYAML bool, media string, err error) {
	if strings.TrimSpace(contentType) == "" {
		return false, MediaJSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, "", ErrContentType
	}
	switch mt {
	case "application/json":
		return false, MediaJSON, nil
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		return true, MediaYAML, nil
	}
	return false, "", ErrContentType
}

// Source returns the document p was read from, as given, secrets
// included, and its media type (MediaJSON or MediaYAML), for storing the
// policy and reading it again with ParsePolicy. Never answer it. A
// Redacted policy has no source (nil, "").
func (p *Policy) Source() (data []byte, mediaType string) {
	return bytes.Clone(p.source), p.sourceType
}

// Root returns the root of the routing tree.
func (p *Policy) Root() *Route { return p.root }

// Route returns the routes alert a goes to, each with its receiver and
// group settings: depth first from the root, the first matching child wins
// unless it has continue: true (then its later siblings are tried too),
// and a route none of whose children match is itself the match. The root
// matches every alert, so there is at least one route.
func (p *Policy) Route(a Alert) []*Route {
	if p == nil || p.root == nil {
		return nil
	}
	return p.root.match(&a)
}

// ReceiverNames returns the names of the receivers, in document order.
func (p *Policy) ReceiverNames() []string {
	names := make([]string, len(p.doc.Receivers))
	for i, r := range p.doc.Receivers {
		names[i] = r.Name
	}
	return names
}

// Receiver returns the receiver called name, secrets included (to build
// its Sender; never answer it or log it).
func (p *Policy) Receiver(name string) (Receiver, bool) {
	i, ok := p.byName[name]
	if !ok {
		return Receiver{}, false
	}
	return cloneReceiver(p.doc.Receivers[i]), true
}

// Redacted returns a copy of p for API answers: every secret is
// SecretPlaceholder and every URL shows only its scheme and host
// (https://hooks.slack.com/<secret>). The copy routes as p does and has
// no Source.
func (p *Policy) Redacted() *Policy {
	if p.redacted {
		return p
	}
	doc := policyDoc{Route: p.doc.Route, Receivers: make([]Receiver, len(p.doc.Receivers))}
	for i, r := range p.doc.Receivers {
		doc.Receivers[i] = redactReceiver(r)
	}
	return &Policy{doc: doc, root: p.root, byName: p.byName, redacted: true}
}

// MarshalJSON writes the policy as Redacted does: the document as given,
// in JSON, with no secret.
func (p Policy) MarshalJSON() ([]byte, error) {
	return p.marshal(true)
}

// marshal writes the document in JSON, with its secrets unless redact.
func (p *Policy) marshal(redact bool) ([]byte, error) {
	if redact && !p.redacted {
		p = p.Redacted()
	}
	return json.Marshal(p.doc)
}

func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return SecretPlaceholder
}

// redactURL keeps a URL's scheme and host: paths, queries and user info
// hold the tokens of Slack, Teams and many webhooks.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return SecretPlaceholder
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		out += "/" + SecretPlaceholder
	}
	return out
}

func redactReceiver(r Receiver) Receiver {
	out := cloneReceiver(r)
	if c := out.Webhook; c != nil {
		c.URL, c.Secret = redactURL(c.URL), redactSecret(c.Secret)
	}
	if c := out.Slack; c != nil {
		c.URL = redactURL(c.URL)
	}
	if c := out.Teams; c != nil {
		c.URL = redactURL(c.URL)
	}
	if c := out.Email; c != nil {
		c.Password = redactSecret(c.Password)
	}
	if c := out.PagerDuty; c != nil {
		c.RoutingKey, c.URL = redactSecret(c.RoutingKey), redactURL(c.URL)
	}
	return out
}

// receiverSecrets are the strings of r that must not appear in errors
// and logs.
func receiverSecrets(r Receiver) []string {
	var s []string
	add := func(v ...string) {
		for _, x := range v {
			if x != "" {
				s = append(s, x)
			}
		}
	}
	if c := r.Webhook; c != nil {
		add(c.Secret, c.URL)
	}
	if c := r.Slack; c != nil {
		add(c.URL)
	}
	if c := r.Teams; c != nil {
		add(c.URL)
	}
	if c := r.Email; c != nil {
		add(c.Password)
	}
	if c := r.PagerDuty; c != nil {
		add(c.RoutingKey, c.URL)
	}
	return s
}

func cloneReceiver(r Receiver) Receiver {
	out := Receiver{Name: r.Name}
	if r.Webhook != nil {
		c := *r.Webhook
		out.Webhook = &c
	}
	if r.Slack != nil {
		c := *r.Slack
		out.Slack = &c
	}
	if r.Teams != nil {
		c := *r.Teams
		out.Teams = &c
	}
	if r.Email != nil {
		c := *r.Email
		c.To = slices.Clone(c.To)
		if c.RequireTLS != nil {
			v := *c.RequireTLS
			c.RequireTLS = &v
		}
		out.Email = &c
	}
	if r.PagerDuty != nil {
		c := *r.PagerDuty
		out.PagerDuty = &c
	}
	return out
}

// decodePolicy decodes and validates the document tree.
func decodePolicy(tree *node, isYAML bool) (*Policy, error) {
	if tree.kind != kindMap {
		return nil, &FieldError{Problem: "the policy must be a mapping with receivers and route"}
	}
	d := docDecoder{yaml: isYAML}
	var doc policyDoc
	routeSet := false
	err := fields(tree, "", map[string]func(*node, string) error{
		"receivers": func(n *node, path string) error {
			if n.kind != kindList {
				return perr(path, "expected a list")
			}
			for i, v := range n.vals {
				r, err := d.receiver(v, index(path, i))
				if err != nil {
					return err
				}
				doc.Receivers = append(doc.Receivers, r)
			}
			return nil
		},
		"route": func(n *node, path string) error {
			routeSet = true
			return d.route(n, path, &doc.Route)
		},
	})
	if err != nil {
		return nil, err
	}
	p := &Policy{doc: doc, byName: make(map[string]int, len(doc.Receivers))}
	for i, r := range doc.Receivers {
		path := index("receivers", i)
		if err := validateReceiver(r, path); err != nil {
			return nil, err
		}
		if _, dup := p.byName[r.Name]; dup {
			return nil, perr(field(path, "name"), "duplicate receiver name %s", quoted(r.Name))
		}
		p.byName[r.Name] = i
	}
	if !routeSet {
		return nil, perr("route", "required")
	}
	p.root, err = p.resolve(&doc.Route, nil, "route")
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (d docDecoder) receiver(n *node, path string) (Receiver, error) {
	var r Receiver
	err := fields(n, path, map[string]func(*node, string) error{
		"name": d.strTo(&r.Name),
		"webhook": func(n *node, path string) error {
			r.Webhook = &WebhookConfig{}
			return fields(n, path, map[string]func(*node, string) error{
				"url":    d.strTo(&r.Webhook.URL),
				"secret": d.strTo(&r.Webhook.Secret),
			})
		},
		"slack": func(n *node, path string) error {
			r.Slack = &SlackConfig{}
			return fields(n, path, map[string]func(*node, string) error{
				"url": d.strTo(&r.Slack.URL),
			})
		},
		"teams": func(n *node, path string) error {
			r.Teams = &TeamsConfig{}
			return fields(n, path, map[string]func(*node, string) error{
				"url": d.strTo(&r.Teams.URL),
			})
		},
		"email": func(n *node, path string) error {
			c := &EmailConfig{}
			r.Email = c
			return fields(n, path, map[string]func(*node, string) error{
				"to": func(n *node, path string) (err error) {
					c.To, err = d.strList(n, path)
					return err
				},
				"from":          d.strTo(&c.From),
				"smarthost":     d.strTo(&c.Smarthost),
				"username":      d.strTo(&c.Username),
				"password":      d.strTo(&c.Password),
				"password_file": d.strTo(&c.PasswordFile),
				"require_tls": func(n *node, path string) error {
					v, err := boolean(n, path)
					c.RequireTLS = &v
					return err
				},
			})
		},
		"pagerduty": func(n *node, path string) error {
			r.PagerDuty = &PagerDutyConfig{}
			return fields(n, path, map[string]func(*node, string) error{
				"routing_key": d.strTo(&r.PagerDuty.RoutingKey),
				"url":         d.strTo(&r.PagerDuty.URL),
			})
		},
	})
	return r, err
}

func (d docDecoder) route(n *node, path string, r *routeDoc) error {
	return fields(n, path, map[string]func(*node, string) error{
		"receiver": d.strTo(&r.Receiver),
		"group_by": func(n *node, path string) error {
			if n.kind != kindList {
				return perr(path, "expected a list of label names")
			}
			v, err := d.strList(n, path)
			r.GroupBy = &v
			return err
		},
		"group_wait": func(n *node, path string) (err error) {
			r.GroupWait, err = d.duration(n, path)
			return err
		},
		"group_interval": func(n *node, path string) (err error) {
			r.GroupInterval, err = d.duration(n, path)
			return err
		},
		"repeat_interval": func(n *node, path string) (err error) {
			r.RepeatInterval, err = d.duration(n, path)
			return err
		},
		"matchers": func(n *node, path string) (err error) {
			r.Matchers, err = d.matchers(n, path)
			return err
		},
		"continue": func(n *node, path string) (err error) {
			r.Continue, err = boolean(n, path)
			return err
		},
		"routes": func(n *node, path string) error {
			if n.kind != kindList {
				return perr(path, "expected a list of routes")
			}
			r.Routes = make([]routeDoc, len(n.vals))
			for i, v := range n.vals {
				if err := d.route(v, index(path, i), &r.Routes[i]); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

func (d docDecoder) matchers(n *node, path string) (Matchers, error) {
	if n.kind != kindMap {
		return nil, perr(path, "expected a mapping of label names to a value or a list of values")
	}
	m := make(Matchers, len(n.keys))
	for i, name := range n.keys {
		p := field(path, name)
		if name == "" {
			return nil, perr(path, "empty label name")
		}
		if len(name) > maxLabelLen {
			return nil, perr(path, "label name longer than %d bytes", maxLabelLen)
		}
		v := n.vals[i]
		var values []string
		if v.kind == kindList {
			if len(v.vals) == 0 {
				return nil, perr(p, "empty list")
			}
			if len(v.vals) > maxMatcherValues {
				return nil, perr(p, "more than %d values", maxMatcherValues)
			}
			for j, e := range v.vals {
				s, err := matcherValue(e, index(p, j))
				if err != nil {
					return nil, err
				}
				values = append(values, s)
			}
		} else {
			s, err := matcherValue(v, p)
			if err != nil {
				return nil, err
			}
			values = []string{s}
		}
		for _, s := range values {
			if err := checkValue(s); err != nil {
				return nil, perr(p, "%s", err.Error())
			}
		}
		m[name] = values
	}
	return m, nil
}

func validateReceiver(r Receiver, path string) error {
	if r.Name == "" {
		return perr(field(path, "name"), "required")
	}
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"webhook", r.Webhook != nil}, {"slack", r.Slack != nil}, {"teams", r.Teams != nil},
		{"email", r.Email != nil}, {"pagerduty", r.PagerDuty != nil},
	} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		return perr(path, "no receiver type: one of webhook, slack, teams, email, pagerduty")
	case 1:
	default:
		return perr(path, "more than one receiver type (%s): one receiver has one", strings.Join(kinds, ", "))
	}
	switch {
	case r.Webhook != nil:
		p := field(path, "webhook")
		if err := validateURL(r.Webhook.URL, field(p, "url"), true); err != nil {
			return err
		}
		return validateSecret(r.Webhook.Secret, field(p, "secret"), false)
	case r.Slack != nil:
		return validateURL(r.Slack.URL, field(field(path, "slack"), "url"), true)
	case r.Teams != nil:
		return validateURL(r.Teams.URL, field(field(path, "teams"), "url"), true)
	case r.Email != nil:
		return validateEmail(r.Email, field(path, "email"))
	default:
		p := field(path, "pagerduty")
		if err := validateSecret(r.PagerDuty.RoutingKey, field(p, "routing_key"), true); err != nil {
			return err
		}
		return validateURL(r.PagerDuty.URL, field(p, "url"), false)
	}
}

func validateSecret(s, path string, required bool) error {
	if s == "" && required {
		return perr(path, "required")
	}
	if s == SecretPlaceholder {
		return perr(path, "%s is the placeholder of a redacted policy, not a secret: give the secret", SecretPlaceholder)
	}
	return nil
}

func validateURL(s, path string, required bool) error {
	if s == "" {
		if required {
			return perr(path, "required")
		}
		return nil
	}
	if strings.Contains(s, SecretPlaceholder) {
		return perr(path, "%s is the placeholder of a redacted policy: give the URL", SecretPlaceholder)
	}
	u, err := url.Parse(s)
	if err != nil {
		return perr(path, "not a valid URL") // url's error would quote the URL, a secret
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return perr(path, "no scheme: http or https")
	default:
		return perr(path, "scheme %s is not allowed: http or https", quoted(u.Scheme))
	}
	if u.Host == "" {
		return perr(path, "no host")
	}
	return nil
}

func validateEmail(c *EmailConfig, path string) error {
	if len(c.To) == 0 {
		return perr(field(path, "to"), "required")
	}
	for i, to := range c.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return perr(index(field(path, "to"), i), "not an email address")
		}
	}
	if c.From == "" {
		return perr(field(path, "from"), "required")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return perr(field(path, "from"), "not an email address")
	}
	if c.Smarthost == "" {
		return perr(field(path, "smarthost"), "required")
	}
	host, port, err := net.SplitHostPort(c.Smarthost)
	if err != nil || host == "" {
		return perr(field(path, "smarthost"), "expected host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return perr(field(path, "smarthost"), "bad port %s", quoted(port))
	}
	if err := validateSecret(c.Password, field(path, "password"), false); err != nil {
		return err
	}
	if c.Password != "" && c.PasswordFile != "" {
		return perr(path, "password and password_file are exclusive")
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Username == "" {
		return perr(field(path, "username"), "required with a password")
	}
	return nil
}

// Bounds of route settings: group_interval and repeat_interval of at least
// a second, so that no route makes the dispatcher spin.
const minInterval = time.Second

// resolve builds the Route of doc, inheriting from parent (nil for the
// root).
func (p *Policy) resolve(doc *routeDoc, parent *Route, path string) (*Route, error) {
	r := &Route{Path: path, Matchers: doc.Matchers, Continue: doc.Continue}
	if parent == nil {
		if doc.Receiver == "" {
			return nil, perr(field(path, "receiver"), "required")
		}
		if len(doc.Matchers) > 0 {
			return nil, perr(field(path, "matchers"), "not allowed on the root route, which takes every alert")
		}
		if doc.Continue {
			return nil, perr(field(path, "continue"), "not allowed on the root route")
		}
		r.Key = "{}"
		r.GroupWait, r.GroupInterval, r.RepeatInterval = DefaultGroupWait, DefaultGroupInterval, DefaultRepeatInterval
		r.GroupBy = []string{}
	} else {
		r.Key = parent.Key + "/" + doc.Matchers.String()
		r.Receiver = parent.Receiver
		r.GroupBy, r.GroupByAll = parent.GroupBy, parent.GroupByAll
		r.GroupWait, r.GroupInterval, r.RepeatInterval = parent.GroupWait, parent.GroupInterval, parent.RepeatInterval
	}
	if doc.Receiver != "" {
		if _, ok := p.byName[doc.Receiver]; !ok {
			return nil, perr(field(path, "receiver"), "unknown receiver %s", quoted(doc.Receiver))
		}
		r.Receiver = doc.Receiver
	}
	if doc.GroupBy != nil {
		var err error
		if r.GroupBy, r.GroupByAll, err = groupBy(*doc.GroupBy, field(path, "group_by")); err != nil {
			return nil, err
		}
	}
	if doc.GroupWait != nil {
		r.GroupWait = time.Duration(*doc.GroupWait)
	}
	if doc.GroupInterval != nil {
		if r.GroupInterval = time.Duration(*doc.GroupInterval); r.GroupInterval < minInterval {
			return nil, perr(field(path, "group_interval"), "must be at least %s", minInterval)
		}
	}
	if doc.RepeatInterval != nil {
		if r.RepeatInterval = time.Duration(*doc.RepeatInterval); r.RepeatInterval < minInterval {
			return nil, perr(field(path, "repeat_interval"), "must be at least %s", minInterval)
		}
	}
	for i := range doc.Routes {
		c, err := p.resolve(&doc.Routes[i], r, index(field(path, "routes"), i))
		if err != nil {
			return nil, err
		}
		r.Routes = append(r.Routes, c)
	}
	return r, nil
}

func groupBy(labels []string, path string) (names []string, all bool, err error) {
	seen := map[string]bool{}
	for i, l := range labels {
		switch {
		case l == "":
			return nil, false, perr(index(path, i), "empty label name")
		case l == "...":
			if len(labels) > 1 {
				return nil, false, perr(index(path, i), `"..." (every label) stands alone`)
			}
			return nil, true, nil
		case seen[l]:
			return nil, false, perr(index(path, i), "duplicate label %s", quoted(l))
		}
		seen[l] = true
	}
	names = slices.Clone(labels)
	slices.Sort(names)
	return names, false, nil
}
