package notify

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func mustPolicy(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(doc), "application/yaml")
	require.NoError(t, err)
	return p
}

const routingPolicy = `
receivers:
  - {name: default, webhook: {url: "https://h.example/default"}}
  - {name: dba, webhook: {url: "https://h.example/dba"}}
  - {name: dba-pager, pagerduty: {routing_key: key}}
  - {name: audit, webhook: {url: "https://h.example/audit"}}
  - {name: web, slack: {url: "https://h.example/web"}}
  - {name: critical, teams: {url: "https://h.example/critical"}}
route:
  receiver: default
  group_by: [rule]
  routes:
    - matchers: {service: [postgres, mysql]}
      receiver: dba
      group_by: [source_host]
      routes:
        - matchers: {severity: critical}
          receiver: dba-pager
    - matchers: {service: postgres}
      receiver: audit          # never reached for postgres: dba matched first, without continue
    - matchers: {event_type: deploy}
      receiver: audit
      continue: true
    - matchers: {service: nginx}
      receiver: web
    - matchers: {severity: critical}
      receiver: critical
`

func TestRoute(t *testing.T) {
	p := mustPolicy(t, routingPolicy)
	tests := []struct {
		name   string
		labels map[string]string
		want   []string // route paths
	}{
		{"nothing matches: the root", map[string]string{"service": "redis"}, []string{"route"}},
		{"no labels: the root", nil, []string{"route"}},
		{"a child", map[string]string{"service": "mysql", "severity": "high"}, []string{"route.routes[0]"}},
		{"a grandchild", map[string]string{"service": "postgres", "severity": "critical"}, []string{"route.routes[0].routes[0]"}},
		{"first match wins", map[string]string{"service": "postgres"}, []string{"route.routes[0]"}},
		{"continue tries the later siblings", map[string]string{"event_type": "deploy", "service": "nginx"},
			[]string{"route.routes[2]", "route.routes[3]"}},
		{"continue with no later match", map[string]string{"event_type": "deploy"}, []string{"route.routes[2]"}},
		{"a later sibling", map[string]string{"service": "nginx", "severity": "critical"}, []string{"route.routes[3]"}},
		{"the last sibling", map[string]string{"severity": "critical"}, []string{"route.routes[4]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range p.Route(Alert{Labels: tt.labels}) {
				got = append(got, r.Path)
			}
			require.Equal(t, tt.want, got)
		})
	}

	// Settings inherited down the tree.
	pager := p.Route(Alert{Labels: map[string]string{"service": "postgres", "severity": "critical"}})[0]
	require.Equal(t, "dba-pager", pager.Receiver)
	require.Equal(t, []string{"source_host"}, pager.GroupBy, "from its parent, dba")
	require.Equal(t, `{}/{service=["postgres","mysql"]}/{severity=["critical"]}`, pager.Key)

	var nilPolicy *Policy
	require.Nil(t, nilPolicy.Route(Alert{}))
}

func TestMatchers(t *testing.T) {
	a := Alert{RuleID: 7, RuleName: "High CPU", SourceHost: "db-01", Severity: "high",
		Labels: map[string]string{"service": "postgres", "severity": "critical"}}
	tests := []struct {
		m    Matchers
		want bool
	}{
		{Matchers{}, true},
		{Matchers{"service": {"postgres"}}, true},
		{Matchers{"service": {"mysql", "postgres"}}, true},
		{Matchers{"service": {"mysql"}}, false},
		{Matchers{"service": {"postgres"}, "source_host": {"db-02"}}, false},
		{Matchers{"severity": {"critical"}}, true},               // Labels come before the fields
		{Matchers{"severity": {"high"}}, false},                  // the field is not read when the label is there
		{Matchers{"source_host": {"db-01"}}, true},               // from the field
		{Matchers{"rule": {"High CPU"}, "rule_id": {"7"}}, true}, // from the fields
		{Matchers{"team": {""}}, true},                           // a missing label is ""
		{Matchers{"team": {"dba"}}, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.m.Matches(a), tt.m.String())
	}
}

func TestGroupKey(t *testing.T) {
	p := mustPolicy(t, `
receivers: [{name: a, slack: {url: "https://h.example"}}]
route:
  receiver: a
  group_by: [source_host, rule]
  routes:
    - {matchers: {service: web}, group_by: ["..."]}
    - {matchers: {service: db}, group_by: []}
`)
	key := func(labels map[string]string) string {
		a := Alert{Labels: labels}
		return p.Route(a)[0].groupKey(&a)
	}
	require.Equal(t, `{}:{rule="r",source_host="h"}`, key(map[string]string{"rule": "r", "source_host": "h", "x": "y"}))
	require.Equal(t, `{}:{rule="r"}`, key(map[string]string{"rule": "r"}), "labels the alert lacks are left out")
	require.Equal(t, `{}/{service=["web"]}:{a="1",service="web"}`, key(map[string]string{"service": "web", "a": "1"}))
	require.Equal(t, `{}/{service=["db"]}:{}`, key(map[string]string{"service": "db", "rule": "r"}))
	// Values are quoted: no two label sets share a key.
	require.NotEqual(t, key(map[string]string{"rule": `a",source_host="b`}), key(map[string]string{"rule": "a", "source_host": "b"}))
}
