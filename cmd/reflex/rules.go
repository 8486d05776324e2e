package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

const rulesUsage = `Usage: reflex rules <command> [flags]

Manages trigger rules and response templates through the Event Processing
Service's rule API (docs/api.md).

Commands:
  apply -f FILE        create or update the rules and templates of FILE, by name
  list                 list the trigger rules and response templates
  test ID --event FILE try rule ID against the event of FILE (the webhook's payload)

Run 'reflex rules <command> --help' for its flags.
`

func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return errors.New("rules: a command is required")
	}
	switch args[0] {
	case "apply":
		return runRulesApply(ctx, args[1:], stdout, stderr)
	case "list":
		return runRulesList(ctx, args[1:], stdout, stderr)
	case "test":
		return runRulesTest(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, rulesUsage)
		return nil
	}
	fmt.Fprint(stderr, rulesUsage)
	return fmt.Errorf("rules: unknown command %q", args[0])
}

// rulesFile is the file of `reflex rules apply`: rules and templates by
// name, a template naming its rule by name (trigger_rule) or id.
type rulesFile struct {
	Rules     []fileRule     `yaml:"rules"`
	Responses []fileResponse `yaml:"responses"`
}

type fileRule struct {
	Name               string         `yaml:"name"`
	Description        string         `yaml:"description"`
	Conditions         map[string]any `yaml:"conditions"`
	SeverityThreshold  string         `yaml:"severity_threshold"`
	TimeWindowMinutes  *int           `yaml:"time_window_minutes"`
	MinCount           *int           `yaml:"min_count"`
	GroupBy            []string       `yaml:"group_by"`
	MaxTriggersPerHour *int           `yaml:"max_triggers_per_hour"`
	Active             *bool          `yaml:"active"`
}

type fileResponse struct {
	Name                    string           `yaml:"name"`
	Type                    string           `yaml:"type"`
	TriggerRule             string           `yaml:"trigger_rule"`
	TriggerRuleID           *int64           `yaml:"trigger_rule_id"`
	Actions                 []map[string]any `yaml:"actions"`
	ApprovalRequired        bool             `yaml:"approval_required"`
	RollbackSupported       bool             `yaml:"rollback_supported"`
	MaxExecutionTimeMinutes *int             `yaml:"max_execution_time_minutes"`
	Active                  *bool            `yaml:"active"`
}

// The API's defaults for what a file leaves out (docs/api.md): a PUT
// replaces the whole object, so an absent field means its default.
const (
	defaultMinCount           = 1
	defaultMaxTriggersPerHour = 10
	defaultMaxExecutionMins   = 30
)

var defaultGroupBy = []string{"source_host"}

func loadRulesFile(path string) (*rulesFile, error) {
	data, err := os.ReadFile(path) //nolint:gosec // the file the operator named
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, r := range f.Rules {
		if r.Name == "" {
			return nil, fmt.Errorf("%s: rules[%d]: name is required", path, i)
		}
		if seen["rule "+r.Name] {
			return nil, fmt.Errorf("%s: rules[%d]: rule %q appears twice", path, i, r.Name)
		}
		seen["rule "+r.Name] = true
	}
	for i, r := range f.Responses {
		switch {
		case r.Name == "":
			return nil, fmt.Errorf("%s: responses[%d]: name is required", path, i)
		case seen["response "+r.Name]:
			return nil, fmt.Errorf("%s: responses[%d]: response %q appears twice", path, i, r.Name)
		case r.TriggerRule == "" && r.TriggerRuleID == nil:
			return nil, fmt.Errorf("%s: responses[%d]: trigger_rule (a rule's name) or trigger_rule_id is required", path, i)
		case r.TriggerRule != "" && r.TriggerRuleID != nil:
			return nil, fmt.Errorf("%s: responses[%d]: give trigger_rule or trigger_rule_id, not both", path, i)
		}
		seen["response "+r.Name] = true
	}
	return &f, nil
}

// request is a rule or template as the API takes it (and, for comparing,
// as it answers it), decoded into plain JSON values.
type request map[string]any

func (r fileRule) request() (request, error) {
	out := request{
		"name":                  r.Name,
		"description":           r.Description,
		"conditions":            r.Conditions,
		"severity_threshold":    r.SeverityThreshold,
		"time_window_minutes":   deref(r.TimeWindowMinutes, 0),
		"min_count":             deref(r.MinCount, defaultMinCount),
		"group_by":              r.GroupBy,
		"max_triggers_per_hour": deref(r.MaxTriggersPerHour, defaultMaxTriggersPerHour),
		"active":                deref(r.Active, true),
	}
	if len(r.GroupBy) == 0 {
		out["group_by"] = defaultGroupBy
	}
	return plain(out)
}

func (r fileResponse) request(ruleID int64) (request, error) {
	// The API leaves out a step's empty fields (false, "", []): so does
	// the comparison.
	actions := make([]map[string]any, len(r.Actions))
	for i, a := range r.Actions {
		actions[i] = map[string]any{}
		for k, v := range a {
			if v != nil && v != false && v != "" && !reflect.DeepEqual(v, []any{}) {
				actions[i][k] = v
			}
		}
	}
	return plain(request{
		"name":                       r.Name,
		"type":                       r.Type,
		"trigger_rule_id":            ruleID,
		"actions":                    actions,
		"approval_required":          r.ApprovalRequired,
		"rollback_supported":         r.RollbackSupported,
		"max_execution_time_minutes": deref(r.MaxExecutionTimeMinutes, defaultMaxExecutionMins),
		"active":                     deref(r.Active, true),
	})
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// plain turns r into what encoding/json decodes its encoding into, so that
// a file's values and the server's answer compare as documents.
func plain(r request) (request, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var out request
	return out, json.Unmarshal(b, &out)
}

// same reports whether the server's object cur already is want: the
// fields of want, compared as JSON documents.
func same(want, cur request) bool {
	for k, v := range want {
		if !reflect.DeepEqual(v, cur[k]) {
			return false
		}
	}
	return true
}

// apiClient calls a reflex API (the rule API, the autonomous API).
type apiClient struct {
	ctx context.Context
	cf  clientFlags
}

// apiError is a non-2xx answer.
type apiError struct {
	status string
	body   string
}

func (e *apiError) Error() string { return e.status + ": " + e.body }

func (c *apiClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, strings.TrimRight(c.cf.url, "/")+path, rd) //nolint:gosec // the server the operator named (--url)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.cf.token)
	resp, err := http.DefaultClient.Do(req) //nolint:gosec // the server the operator named (--url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &apiError{status: resp.Status, body: msg}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (c *apiClient) list() (rules, responses []request, err error) {
	var tr struct {
		Triggers []request `json:"triggers"`
	}
	if err := c.do(http.MethodGet, "/api/v1/rules/triggers", nil, &tr); err != nil {
		return nil, nil, fmt.Errorf("list trigger rules: %w", err)
	}
	var rr struct {
		Responses []request `json:"responses"`
	}
	if err := c.do(http.MethodGet, "/api/v1/rules/responses", nil, &rr); err != nil {
		return nil, nil, fmt.Errorf("list response templates: %w", err)
	}
	return tr.Triggers, rr.Responses, nil
}

func byName(objs []request) map[string]request {
	m := make(map[string]request, len(objs))
	for _, o := range objs {
		if n, ok := o["name"].(string); ok {
			m[n] = o
		}
	}
	return m
}

func idOf(o request) int64 {
	f, _ := o["id"].(float64)
	return int64(f)
}

// upsert creates want under path, or replaces the object cur when it
// differs, and says which it did.
func (c *apiClient) upsert(path string, want, cur request) (outcome string, id int64, err error) {
	if cur == nil {
		var created request
		if err := c.do(http.MethodPost, path, want, &created); err != nil {
			return "", 0, err
		}
		return "created", idOf(created), nil
	}
	id = idOf(cur)
	if same(want, cur) {
		return "unchanged", id, nil
	}
	if err := c.do(http.MethodPut, path+"/"+strconv.FormatInt(id, 10), want, nil); err != nil {
		return "", 0, err
	}
	return "changed", id, nil
}

func runRulesApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	file := fs.String("f", "", "YAML file of rules and responses (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex rules apply -f FILE [flags]\n\nCreates or updates the trigger rules and response templates of FILE, matched\nby name, and prints what it created, changed or left unchanged. A second\napply of the same file changes nothing. Rules and templates on the server\nthat FILE does not name are left alone.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		fs.Usage()
		return errors.New("rules apply: -f FILE is required")
	}
	cf.resolve()
	f, err := loadRulesFile(*file)
	if err != nil {
		return fmt.Errorf("rules apply: %w", err)
	}
	c := &apiClient{ctx: ctx, cf: cf}
	rules, responses, err := c.list()
	if err != nil {
		return fmt.Errorf("rules apply: %w", err)
	}
	ruleAt, respAt := byName(rules), byName(responses)
	ruleIDs := make(map[string]int64, len(ruleAt))
	for n, o := range ruleAt {
		ruleIDs[n] = idOf(o)
	}
	counts := map[string]int{}
	for i, r := range f.Rules {
		want, err := r.request()
		if err != nil {
			return fmt.Errorf("rules apply: rules[%d] %q: %w", i, r.Name, err)
		}
		outcome, id, err := c.upsert("/api/v1/rules/triggers", want, ruleAt[r.Name])
		if err != nil {
			return fmt.Errorf("rules apply: rule %q: %w", r.Name, err)
		}
		ruleIDs[r.Name] = id
		counts[outcome]++
		fmt.Fprintf(stdout, "rule %q (id %d): %s\n", r.Name, id, outcome)
	}
	for i, r := range f.Responses {
		ruleID := deref(r.TriggerRuleID, 0)
		if r.TriggerRule != "" {
			id, ok := ruleIDs[r.TriggerRule]
			if !ok {
				return fmt.Errorf("rules apply: responses[%d] %q: no trigger rule named %q in the file or on the server", i, r.Name, r.TriggerRule)
			}
			ruleID = id
		}
		want, err := r.request(ruleID)
		if err != nil {
			return fmt.Errorf("rules apply: responses[%d] %q: %w", i, r.Name, err)
		}
		outcome, id, err := c.upsert("/api/v1/rules/responses", want, respAt[r.Name])
		if err != nil {
			return fmt.Errorf("rules apply: response %q: %w", r.Name, err)
		}
		counts[outcome]++
		fmt.Fprintf(stdout, "response %q (id %d): %s\n", r.Name, id, outcome)
	}
	fmt.Fprintf(stdout, "%d created, %d changed, %d unchanged\n", counts["created"], counts["changed"], counts["unchanged"])
	return nil
}

func runRulesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex rules list [flags]\n\nLists the trigger rules and response templates.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cf.resolve()
	c := &apiClient{ctx: ctx, cf: cf}
	rules, responses, err := c.list()
	if err != nil {
		return fmt.Errorf("rules list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tNAME\tACTIVE\tWINDOW\tMIN\tMAX/H\tFIRED\tSUPPRESSED\tCONDITIONS")
	for _, r := range rules {
		conds, _ := json.Marshal(r["conditions"])
		fmt.Fprintf(tw, "%d\t%v\t%v\t%vm\t%v\t%v\t%v\t%v\t%s\n", idOf(r), r["name"], r["active"], r["time_window_minutes"],
			r["min_count"], r["max_triggers_per_hour"], r["firings"], r["suppressed_firings"], conds)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "RESPONSE\tNAME\tTYPE\tRULE\tACTIONS\tACTIVE")
	for _, r := range responses {
		acts, _ := r["actions"].([]any)
		fmt.Fprintf(tw, "%d\t%v\t%v\t%v\t%d\t%v\n", idOf(r), r["name"], r["type"], r["trigger_rule_id"], len(acts), r["active"])
	}
	return tw.Flush()
}

func runRulesTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	eventFile := fs.String("event", "", "JSON file of one event as the webhook takes it ('-' for standard input; required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex rules test ID --event FILE [flags]\n\nTries trigger rule ID against one event, without firing it, and prints\nwhether it matched and, if not, which condition failed.\n\nFlags:")
		fs.PrintDefaults()
	}
	// The id may come before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if _, err := strconv.ParseInt(id, 10, 64); err != nil || *eventFile == "" {
		fs.Usage()
		return errors.New("rules test: a rule ID and --event FILE are required")
	}
	cf.resolve()
	var data []byte
	var err error
	if *eventFile == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*eventFile)
	}
	if err != nil {
		return fmt.Errorf("rules test: %w", err)
	}
	if !json.Valid(data) {
		return fmt.Errorf("rules test: %s is not JSON", *eventFile)
	}
	c := &apiClient{ctx: ctx, cf: cf}
	var out struct {
		Matched bool   `json:"matched"`
		Reason  string `json:"reason"`
	}
	if err := c.do(http.MethodPost, "/api/v1/rules/triggers/"+id+"/test", map[string]json.RawMessage{"event": data}, &out); err != nil {
		return fmt.Errorf("rules test: %w", err)
	}
	if out.Matched {
		fmt.Fprintf(stdout, "matched: %s\n", out.Reason)
	} else {
		fmt.Fprintf(stdout, "not matched: %s\n", out.Reason)
	}
	return nil
}
