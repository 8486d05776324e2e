package notify

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The secrets of testdata/policy.yaml.
var exampleSecrets = []string{"whsec-0123456789", "XXXXSLACKTOKEN", "pd-routing-key-0123456789", "services/T000"}

func loadExample(t *testing.T) *Policy {
	t.Helper()
	p, err := LoadPolicyFile(filepath.Join("testdata", "policy.yaml"))
	require.NoError(t, err)
	return p
}

func TestPolicyExample(t *testing.T) {
	p := loadExample(t)
	require.Equal(t, []string{"ops", "email", "slack", "pager"}, p.ReceiverNames())

	root := p.Root()
	require.Equal(t, "route", root.Path)
	require.Equal(t, "ops", root.Receiver)
	require.Equal(t, []string{"rule", "source_host"}, root.GroupBy)
	require.Equal(t, 30*time.Second, root.GroupWait)
	require.Equal(t, 5*time.Minute, root.GroupInterval)
	require.Equal(t, 4*time.Hour, root.RepeatInterval)

	require.Len(t, root.Routes, 1)
	child := root.Routes[0]
	require.Equal(t, "route.routes[0]", child.Path)
	require.Equal(t, `{}/{severity=["critical"]}`, child.Key)
	require.Equal(t, "pager", child.Receiver)
	// Inherited from the root.
	require.Equal(t, []string{"rule", "source_host"}, child.GroupBy)
	require.Equal(t, 30*time.Second, child.GroupWait)
	require.Equal(t, 5*time.Minute, child.GroupInterval)
	require.Equal(t, 4*time.Hour, child.RepeatInterval)

	crit := Alert{RuleName: "High CPU Alert", SourceHost: "db-01", Severity: "critical"}
	routes := p.Route(crit)
	require.Len(t, routes, 1)
	require.Equal(t, "pager", routes[0].Receiver)
	require.Equal(t, `{}/{severity=["critical"]}:{rule="High CPU Alert",source_host="db-01"}`, routes[0].groupKey(&crit))

	high := Alert{Labels: map[string]string{"rule": "High CPU Alert", "source_host": "db-02", "severity": "high"}}
	routes = p.Route(high)
	require.Len(t, routes, 1)
	require.Equal(t, "ops", routes[0].Receiver)
	require.Equal(t, `{}:{rule="High CPU Alert",source_host="db-02"}`, routes[0].groupKey(&high))

	r, ok := p.Receiver("email")
	require.True(t, ok)
	require.Equal(t, &EmailConfig{
		To: []string{"oncall@example.com"}, From: "reflex@example.com", Smarthost: "smtp.example:587",
		Username: "reflex", PasswordFile: "/etc/reflex/smtp-password",
	}, r.Email)
	r, ok = p.Receiver("ops")
	require.True(t, ok)
	require.Equal(t, "whsec-0123456789", r.Webhook.Secret, "Receiver gives the secret, to build the sender")
	_, ok = p.Receiver("nobody")
	require.False(t, ok)
}

func TestPolicyRedacted(t *testing.T) {
	p := loadExample(t)
	want := `{"receivers":[` +
		`{"name":"ops","webhook":{"url":"https://hooks.example/<secret>","secret":"<secret>"}},` +
		`{"name":"email","email":{"to":["oncall@example.com"],"from":"reflex@example.com","smarthost":"smtp.example:587","username":"reflex","password_file":"/etc/reflex/smtp-password"}},` +
		`{"name":"slack","slack":{"url":"https://hooks.slack.com/<secret>"}},` +
		`{"name":"pager","pagerduty":{"routing_key":"<secret>","url":"https://events.pagerduty.com/<secret>"}}],` +
		`"route":{"receiver":"ops","group_by":["rule","source_host"],"group_wait":"30s","group_interval":"5m","repeat_interval":"4h",` +
		`"routes":[{"matchers":{"severity":["critical"]}}]}}`
	// The child's receiver is pager: the document as given.
	want = strings.Replace(want, `"routes":[{"matchers"`, `"routes":[{"receiver":"pager","matchers"`, 1)

	for name, marshal := range map[string]func() ([]byte, error){
		"pointer":  func() ([]byte, error) { return json.Marshal(p) },
		"value":    func() ([]byte, error) { return json.Marshal(*p) },
		"redacted": func() ([]byte, error) { return json.Marshal(p.Redacted()) },
		"twice":    func() ([]byte, error) { return json.Marshal(p.Redacted().Redacted()) },
		"in a struct": func() ([]byte, error) {
			return json.Marshal(struct {
				Policy *Policy `json:"policy"`
			}{p})
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := marshal()
			require.NoError(t, err)
			if name == "in a struct" {
				require.JSONEq(t, `{"policy":`+want+`}`, string(got))
			} else {
				require.JSONEq(t, want, string(got))
			}
			for _, s := range exampleSecrets {
				require.NotContains(t, string(got), s)
			}
		})
	}

	// The redacted copy routes as the policy does, and has no source.
	red := p.Redacted()
	require.Same(t, p.Root(), red.Root())
	data, media := red.Source()
	require.Nil(t, data)
	require.Empty(t, media)
	// The policy itself keeps its secrets.
	r, _ := p.Receiver("pager")
	require.Equal(t, "pd-routing-key-0123456789", r.PagerDuty.RoutingKey)

	// Source is the document as given, secrets included, for storage.
	raw, err := os.ReadFile(filepath.Join("testdata", "policy.yaml"))
	require.NoError(t, err)
	data, media = p.Source()
	require.Equal(t, raw, data)
	require.Equal(t, MediaYAML, media)
	again, err := ParsePolicy(data, media)
	require.NoError(t, err)
	require.Equal(t, p.Root(), again.Root())

	// A redacted policy sent back is refused: it would store the
	// placeholder as the secret.
	redJSON, err := json.Marshal(p)
	require.NoError(t, err)
	_, err = ParsePolicy(redJSON, "application/json")
	require.EqualError(t, err, "receivers[0].webhook.url: <secret> is the placeholder of a redacted policy: give the URL")
}

func TestPolicyJSONAndYAMLAgree(t *testing.T) {
	yamlDoc := `
receivers:
  - {name: ops, webhook: {url: "http://hooks.example/x", secret: s3cr3t-value}}
  - {name: pager, pagerduty: {routing_key: "0123"}}
  - {name: chat, teams: {url: "https://teams.example/hook"}}
  - name: mail
    email: {to: a@example.com, from: b@example.com, smarthost: "smtp.example:25", username: u, password: pw-secret, require_tls: false}
route:
  receiver: ops
  group_by: ["..."]
  routes:
    - matchers: {severity: critical, rule_id: 42}
      receiver: pager
      continue: true
    - matchers: {severity: [critical, high]}
      receiver: chat
      group_by: []
      group_wait: 1m
      routes:
        - {matchers: {source_host: db-01}, receiver: mail, repeat_interval: 1d}
`
	jsonDoc := `{
	"receivers": [
		{"name": "ops", "webhook": {"url": "http://hooks.example/x", "secret": "s3cr3t-value"}},
		{"name": "pager", "pagerduty": {"routing_key": "0123"}},
		{"name": "chat", "teams": {"url": "https://teams.example/hook"}},
		{"name": "mail", "email": {"to": ["a@example.com"], "from": "b@example.com", "smarthost": "smtp.example:25",
			"username": "u", "password": "pw-secret", "require_tls": false}}
	],
	"route": {
		"receiver": "ops",
		"group_by": ["..."],
		"routes": [
			{"matchers": {"severity": "critical", "rule_id": 42}, "receiver": "pager", "continue": true},
			{"matchers": {"severity": ["critical", "high"]}, "receiver": "chat", "group_by": [], "group_wait": "1m",
			 "routes": [{"matchers": {"source_host": "db-01"}, "receiver": "mail", "repeat_interval": "1d"}]}
		]
	}
}`
	py, err := ParsePolicy([]byte(yamlDoc), "application/yaml; charset=utf-8")
	require.NoError(t, err)
	pj, err := ParsePolicy([]byte(jsonDoc), "application/json")
	require.NoError(t, err)
	require.Equal(t, py.Root(), pj.Root())
	a, err := py.marshal(false)
	require.NoError(t, err)
	b, err := pj.marshal(false)
	require.NoError(t, err)
	require.JSONEq(t, string(a), string(b))

	root := py.Root()
	require.True(t, root.GroupByAll)
	chat := root.Routes[1]
	require.False(t, chat.GroupByAll)
	require.Equal(t, []string{}, chat.GroupBy, "an explicit empty group_by: one group")
	require.Equal(t, time.Minute, chat.GroupWait)
	mail := chat.Routes[0]
	require.Equal(t, 24*time.Hour, mail.RepeatInterval)
	require.Equal(t, time.Minute, mail.GroupWait, "inherited from its parent, not the root")
	require.Equal(t, []string{}, mail.GroupBy)
	require.Equal(t, Matchers{"severity": {"critical"}, "rule_id": {"42"}}, root.Routes[0].Matchers)

	r, _ := py.Receiver("mail")
	require.NotNil(t, r.Email.RequireTLS)
	require.False(t, *r.Email.RequireTLS)
	red, err := json.Marshal(py)
	require.NoError(t, err)
	for _, s := range []string{"s3cr3t-value", "pw-secret", `"0123"`, "teams.example/hook", "example/x"} {
		require.NotContains(t, string(red), s)
	}
}

func TestParsePolicyContentTypes(t *testing.T) {
	doc := []byte(`{"receivers": [{"name": "a", "slack": {"url": "https://h.example/x"}}], "route": {"receiver": "a"}}`)
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8",
		"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"} {
		_, err := ParsePolicy(doc, ct)
		require.NoError(t, err, ct)
	}
	for _, ct := range []string{"text/plain", "application/xml", "garbage;;"} {
		_, err := ParsePolicy(doc, ct)
		require.ErrorIs(t, err, ErrContentType, ct)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	const recv = "receivers: [{name: ops, webhook: {url: 'https://h.example/x'}}]\n"
	tests := []struct {
		name, doc, want string
		json            bool
	}{
		{"unknown receiver", recv + "route: {receiver: ops, routes: [{receiver: pagr}]}",
			`route.routes[0].receiver: unknown receiver "pagr"`, false},
		{"unknown root receiver", recv + "route: {receiver: nobody}",
			`route.receiver: unknown receiver "nobody"`, false},
		{"nested unknown receiver", recv + "route: {receiver: ops, routes: [{receiver: ops}, {routes: [{receiver: x}]}]}",
			`route.routes[1].routes[0].receiver: unknown receiver "x"`, false},
		{"duplicate receiver", "receivers: [{name: ops, slack: {url: 'https://a.example'}}, {name: ops, teams: {url: 'https://b.example'}}]\nroute: {receiver: ops}",
			`receivers[1].name: duplicate receiver name "ops"`, false},
		{"no receiver type", "receivers: [{name: ops}]\nroute: {receiver: ops}",
			`receivers[0]: no receiver type: one of webhook, slack, teams, email, pagerduty`, false},
		{"null receiver type", "receivers: [{name: ops, webhook: null}]\nroute: {receiver: ops}",
			`receivers[0]: no receiver type: one of webhook, slack, teams, email, pagerduty`, false},
		{"two receiver types", "receivers: [{name: ops, webhook: {url: 'https://a.example'}, slack: {url: 'https://b.example'}}]\nroute: {receiver: ops}",
			`receivers[0]: more than one receiver type (webhook, slack): one receiver has one`, false},
		{"receiver without name", "receivers: [{slack: {url: 'https://a.example'}}]\nroute: {receiver: ops}",
			`receivers[0].name: required`, false},
		{"missing url", "receivers: [{name: ops, webhook: {secret: abc}}]\nroute: {receiver: ops}",
			`receivers[0].webhook.url: required`, false},
		{"missing slack url", "receivers: [{name: ops, slack: {}}]\nroute: {receiver: ops}",
			`receivers[0].slack.url: required`, false},
		{"bad scheme", "receivers: [{name: ops, webhook: {url: 'ftp://h.example/token-abc'}}]\nroute: {receiver: ops}",
			`receivers[0].webhook.url: scheme "ftp" is not allowed: http or https`, false},
		{"file scheme", "receivers: [{name: ops, teams: {url: 'file:///etc/passwd'}}]\nroute: {receiver: ops}",
			`receivers[0].teams.url: scheme "file" is not allowed: http or https`, false},
		{"no scheme", "receivers: [{name: ops, slack: {url: 'hooks.slack.com/services/T/B/token-abc'}}]\nroute: {receiver: ops}",
			`receivers[0].slack.url: no scheme: http or https`, false},
		{"no host", "receivers: [{name: ops, slack: {url: 'https:///token-abc'}}]\nroute: {receiver: ops}",
			`receivers[0].slack.url: no host`, false},
		{"unparsable url", "receivers: [{name: ops, slack: {url: 'https://h.example/%zz-token-abc'}}]\nroute: {receiver: ops}",
			`receivers[0].slack.url: not a valid URL`, false},
		{"bad pagerduty url", "receivers: [{name: p, pagerduty: {routing_key: k, url: 'gopher://x'}}]\nroute: {receiver: p}",
			`receivers[0].pagerduty.url: scheme "gopher" is not allowed: http or https`, false},
		{"missing routing key", "receivers: [{name: p, pagerduty: {url: 'https://events.example'}}]\nroute: {receiver: p}",
			`receivers[0].pagerduty.routing_key: required`, false},
		{"missing to", "receivers: [{name: m, email: {from: a@example.com, smarthost: 'h:25'}}]\nroute: {receiver: m}",
			`receivers[0].email.to: required`, false},
		{"bad to", "receivers: [{name: m, email: {to: [a@example.com, nobody], from: a@example.com, smarthost: 'h:25'}}]\nroute: {receiver: m}",
			`receivers[0].email.to[1]: not an email address`, false},
		{"missing from", "receivers: [{name: m, email: {to: [a@example.com], smarthost: 'h:25'}}]\nroute: {receiver: m}",
			`receivers[0].email.from: required`, false},
		{"missing smarthost", "receivers: [{name: m, email: {to: [a@example.com], from: b@example.com}}]\nroute: {receiver: m}",
			`receivers[0].email.smarthost: required`, false},
		{"smarthost without port", "receivers: [{name: m, email: {to: [a@example.com], from: b@example.com, smarthost: smtp.example}}]\nroute: {receiver: m}",
			`receivers[0].email.smarthost: expected host:port`, false},
		{"smarthost bad port", "receivers: [{name: m, email: {to: [a@example.com], from: b@example.com, smarthost: 'smtp.example:99999'}}]\nroute: {receiver: m}",
			`receivers[0].email.smarthost: bad port "99999"`, false},
		{"password and file", "receivers: [{name: m, email: {to: [a@example.com], from: b@example.com, smarthost: 'h:25', username: u, password: pw, password_file: /f}}]\nroute: {receiver: m}",
			`receivers[0].email: password and password_file are exclusive`, false},
		{"password without username", "receivers: [{name: m, email: {to: [a@example.com], from: b@example.com, smarthost: 'h:25', password: pw}}]\nroute: {receiver: m}",
			`receivers[0].email.username: required with a password`, false},
		{"placeholder secret", "receivers: [{name: ops, webhook: {url: 'https://h.example', secret: '<secret>'}}]\nroute: {receiver: ops}",
			`receivers[0].webhook.secret: <secret> is the placeholder of a redacted policy, not a secret: give the secret`, false},
		{"placeholder routing key", "receivers: [{name: p, pagerduty: {routing_key: '<secret>'}}]\nroute: {receiver: p}",
			`receivers[0].pagerduty.routing_key: <secret> is the placeholder of a redacted policy, not a secret: give the secret`, false},
		{"bad duration", recv + "route: {receiver: ops, group_wait: 5x}",
			`route.group_wait: bad duration "5x"`, false},
		{"negative duration", recv + "route: {receiver: ops, group_wait: -5m}",
			`route.group_wait: negative duration`, false},
		{"duration not a string", recv + "route: {receiver: ops, routes: [{group_interval: [5m]}]}",
			`route.routes[0].group_interval: expected a duration such as 30s, 5m or 4h`, false},
		{"zero group interval", recv + "route: {receiver: ops, group_interval: 0s}",
			`route.group_interval: must be at least 1s`, false},
		{"tiny repeat interval", recv + "route: {receiver: ops, routes: [{repeat_interval: 10ms}]}",
			`route.routes[0].repeat_interval: must be at least 1s`, false},
		{"unknown top-level field", recv + "route: {receiver: ops}\nglobal: {resolve_timeout: 5m}",
			`unknown field "global"`, false},
		{"unknown route field", recv + "route: {receiver: ops, routes: [{matcher: {a: b}}]}",
			`route.routes[0]: unknown field "matcher"`, false},
		{"unknown receiver field", "receivers: [{name: ops, webhook: {urll: 'https://h.example'}}]\nroute: {receiver: ops}",
			`receivers[0].webhook: unknown field "urll"`, false},
		{"unknown receiver type", "receivers: [{name: ops, opsgenie: {api_key: k}}]\nroute: {receiver: ops}",
			`receivers[0]: unknown field "opsgenie"`, false},
		{"missing route", recv, `route: required`, false},
		{"root without receiver", recv + "route: {group_by: [rule]}", `route.receiver: required`, false},
		{"root matchers", recv + "route: {receiver: ops, matchers: {severity: critical}}",
			`route.matchers: not allowed on the root route, which takes every alert`, false},
		{"root continue", recv + "route: {receiver: ops, continue: true}",
			`route.continue: not allowed on the root route`, false},
		{"matcher of a mapping", recv + "route: {receiver: ops, routes: [{matchers: {severity: {$in: [a]}}}]}",
			`route.routes[0].matchers.severity: expected a string or a list of strings`, false},
		{"matcher list of lists", recv + "route: {receiver: ops, routes: [{matchers: {severity: [[a]]}}]}",
			`route.routes[0].matchers.severity[0]: expected a string or a list of strings`, false},
		{"matcher empty list", recv + "route: {receiver: ops, routes: [{matchers: {severity: []}}]}",
			`route.routes[0].matchers.severity: empty list`, false},
		{"matchers not a mapping", recv + "route: {receiver: ops, routes: [{matchers: [severity=critical]}]}",
			`route.routes[0].matchers: expected a mapping of label names to a value or a list of values`, false},
		{"group_by duplicate", recv + "route: {receiver: ops, group_by: [rule, rule]}",
			`route.group_by[1]: duplicate label "rule"`, false},
		{"group_by all and more", recv + "route: {receiver: ops, group_by: [rule, '...']}",
			`route.group_by[1]: "..." (every label) stands alone`, false},
		{"group_by not a list", recv + "route: {receiver: ops, group_by: rule}",
			`route.group_by: expected a list of label names`, false},
		{"continue not a bool", recv + "route: {receiver: ops, routes: [{continue: 'yes'}]}",
			`route.routes[0].continue: expected true or false`, false},
		{"routes not a list", recv + "route: {receiver: ops, routes: {receiver: ops}}",
			`route.routes: expected a list of routes`, false},
		{"receivers not a list", "receivers: {name: ops}\nroute: {receiver: ops}",
			`receivers: expected a list`, false},
		{"receiver not a mapping", "receivers: [ops]\nroute: {receiver: ops}",
			`receivers[0]: expected a mapping`, false},
		{"not a mapping", "- receivers", `the policy must be a mapping with receivers and route`, false},
		{"empty", "  \n", `the policy is empty`, false},
		{"comments only", "# nothing\n", `the policy is empty`, false},
		{"two documents", recv + "route: {receiver: ops}\n---\nroute: {}\n", `invalid YAML: more than one document`, false},
		{"yaml duplicate key", recv + "route: {receiver: ops}\nroute: {receiver: ops}",
			`invalid YAML: line 3: duplicate key "route"`, false},
		{"yaml syntax", "receivers: [\n", `invalid YAML: line 1: did not find expected node content`, false},
		{"yaml anchors", "receivers:\n  - {name: a, slack: &s {url: 'https://h.example'}}\n  - {name: b, teams: *s}\nroute: {receiver: c}\n",
			`route.receiver: unknown receiver "c"`, false},
		{"yaml merge key", "receivers:\n  - {name: a, slack: &s {url: 'https://h.example'}}\n  - name: b\n    teams:\n      <<: *s\nroute: {receiver: a}\n",
			`invalid YAML: line 5: merge keys (<<) are not supported`, false},

		{"json unknown field", `{"receivers": [{"name": "ops", "slack": {"url": "https://h.example"}}], "route": {"receiver": "ops", "group_wiat": "1m"}}`,
			`route: unknown field "group_wiat"`, true},
		{"json number for a string", `{"receivers": [{"name": "ops", "slack": {"url": 12}}], "route": {"receiver": "ops"}}`,
			`receivers[0].slack.url: expected a string`, true},
		{"json duplicate key", `{"route": {"receiver": "a"}, "route": {}}`,
			`invalid JSON: duplicate key "route"`, true},
		{"json trailing data", `{"route": {"receiver": "a"}} {}`,
			`invalid JSON: data after the policy`, true},
		{"json syntax", `{"route": {"receiver": "a",}}`,
			`invalid JSON at byte 27: invalid character '}' looking for beginning of object key string`, true},
		{"json truncated", `{"route": {"receiver": `,
			`invalid JSON: unexpected end of the document`, true},
		{"json not an object", `[1, 2]`, `the policy must be a mapping with receivers and route`, true},
		{"json bool for continue", `{"receivers": [{"name": "ops", "slack": {"url": "https://h.example"}}], "route": {"receiver": "ops", "routes": [{"continue": "true"}]}}`,
			`route.routes[0].continue: expected true or false`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := "application/yaml"
			if tt.json {
				ct = "application/json"
			}
			p, err := ParsePolicy([]byte(tt.doc), ct)
			require.Nil(t, p)
			require.EqualError(t, err, tt.want)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "a *FieldError")
			require.NotContains(t, err.Error(), "token-abc", "no secret in errors")
		})
	}
}

func TestParsePolicyBounds(t *testing.T) {
	big := make([]byte, MaxPolicyBytes+1)
	_, err := ParsePolicy(big, "")
	require.EqualError(t, err, "the policy is larger than 1048576 bytes")

	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	_, err = ParsePolicy([]byte(deep), "")
	require.EqualError(t, err, "invalid JSON: nested deeper than 64 levels")

	// A billion laughs: aliases are expanded against the bound.
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'j'; i++ {
		prev := string(i - 1)
		laughs += string(i) + ": &" + string(i) + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
			", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
	}
	_, err = ParsePolicy([]byte(laughs), "application/yaml")
	require.EqualError(t, err, "invalid YAML: more than 100000 values")
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "5m": 5 * time.Minute, "4h": 4 * time.Hour, "1h30m": 90 * time.Minute,
		"1.5s": 1500 * time.Millisecond, "1d": 24 * time.Hour, "1w": 7 * 24 * time.Hour, "0": 0, "0s": 0,
		"250ms": 250 * time.Millisecond,
	} {
		d, err := ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, time.Duration(d), in)
		// String reads back.
		back, err := ParseDuration(d.String())
		require.NoError(t, err, d.String())
		require.Equal(t, d, back)
	}
	for in, want := range map[string]string{
		"5x": `bad duration "5x"`, "": `bad duration ""`, "-5m": "negative duration", "m": `bad duration "m"`,
	} {
		_, err := ParseDuration(in)
		require.EqualError(t, err, want, in)
	}
	require.Equal(t, "4h", Duration(4*time.Hour).String())
	require.Equal(t, "1h30m", Duration(90*time.Minute).String())
	require.Equal(t, "1.5µs", Duration(1500).String())
}

func TestLoadPolicyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.json")
	doc := `{"receivers": [{"name": "a", "slack": {"url": "https://h.example/x"}}], "route": {"receiver": "a"}}`
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	p, err := LoadPolicyFile(path)
	require.NoError(t, err)
	data, media := p.Source()
	require.Equal(t, doc, string(data))
	require.Equal(t, MediaJSON, media)

	// A .json file is read as JSON only: a YAML document in it is an error.
	require.NoError(t, os.WriteFile(path, []byte("route: {receiver: a}"), 0o600))
	_, err = LoadPolicyFile(path)
	require.EqualError(t, err, path+": invalid JSON at byte 1: invalid character 'r' looking for beginning of value")

	bad := filepath.Join(dir, "policy.yml")
	require.NoError(t, os.WriteFile(bad, []byte("receivers: []\nroute: {receiver: a}\n"), 0o600))
	_, err = LoadPolicyFile(bad)
	require.EqualError(t, err, bad+`: route.receiver: unknown receiver "a"`)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)

	_, err = LoadPolicyFile(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
