package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/server"
)

const actionsUsage = `Usage: reflex actions COMMAND [flags]

Manages the action definitions of the Autonomous Response Service (what a
response template's step names by its "script").

Commands:
  apply -f FILE   create or update the definitions of a YAML file, by name
  list            list the definitions

The autonomous service is reached at --autonomous-url (env
REFLEX_AUTONOMOUS_URL; default: the host of --url or REFLEX_URL on port 3011).
`

// defaultAutonomousPort is the Autonomous Response Service's port.
const defaultAutonomousPort = "3011"

// autonomousFlags are clientFlags with the autonomous service's URL.
type autonomousFlags struct {
	clientFlags
	autonomous string
}

func (a *autonomousFlags) register(fs *flag.FlagSet) {
	a.clientFlags.register(fs)
	fs.StringVar(&a.autonomous, "autonomous-url", "", "Autonomous Response Service URL (env REFLEX_AUTONOMOUS_URL; default: the host of --url on port "+defaultAutonomousPort+")")
}

// resolve fills the URLs and the token after parsing.
func (a *autonomousFlags) resolve() error {
	a.clientFlags.resolve()
	if a.autonomous == "" {
		a.autonomous = os.Getenv("REFLEX_AUTONOMOUS_URL")
	}
	if a.autonomous != "" {
		return nil
	}
	u, err := url.Parse(a.url)
	if err != nil || u.Host == "" {
		return fmt.Errorf("cannot derive the autonomous service's URL from %q: set --autonomous-url", a.url)
	}
	u.Host = net.JoinHostPort(u.Hostname(), defaultAutonomousPort)
	u.Path, u.RawQuery = "", ""
	a.autonomous = u.String()
	return nil
}

func (a *autonomousFlags) client(ctx context.Context) *apiClient {
	return &apiClient{ctx: ctx, cf: clientFlags{url: a.autonomous, token: a.token}}
}

func runActions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, actionsUsage)
		return errors.New("actions: a command is required")
	}
	switch args[0] {
	case "apply":
		return runActionsApply(ctx, args[1:], stdout, stderr)
	case "list":
		return runActionsList(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, actionsUsage)
		return nil
	}
	fmt.Fprint(stderr, actionsUsage)
	return fmt.Errorf("actions: unknown command %q", args[0])
}

func runActionsApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("actions apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af autonomousFlags
	af.register(fs)
	file := fs.String("f", "", "YAML file of action definitions (required)")
	dry := fs.Bool("dry-run", false, "check the file and print what would change, change nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex actions apply -f FILE [flags]\n\nCreates or updates the action definitions of FILE, matched by action_name,\nand prints what it created, changed or left unchanged. Definitions on the\nserver that FILE does not name are left alone. Each definition is checked\nhere first, with the same rules as the server's.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		fs.Usage()
		return errors.New("actions apply: -f FILE is required")
	}
	if err := af.resolve(); err != nil {
		return fmt.Errorf("actions apply: %w", err)
	}
	fh, err := os.Open(*file)
	if err != nil {
		return fmt.Errorf("actions apply: %w", err)
	}
	defer func() { _ = fh.Close() }()
	f, err := actions.ParseFile(fh)
	if err != nil {
		return fmt.Errorf("actions apply: %s: %w", *file, err)
	}
	vs := server.ExecutorValidators()
	for i := range f.Actions {
		if err := f.Actions[i].Validate(vs); err != nil {
			return fmt.Errorf("actions apply: %s: action %q: %w", *file, f.Actions[i].Name, err)
		}
	}
	c := af.client(ctx)
	current, err := listActions(c)
	if err != nil {
		return fmt.Errorf("actions apply: %w", err)
	}
	at := make(map[string]actions.Definition, len(current))
	for _, d := range current {
		at[d.Name] = d
	}
	counts := map[string]int{}
	for _, want := range f.Actions {
		cur, exists := at[want.Name]
		var outcome string
		id := cur.ID
		switch {
		case exists && actions.Equal(want, cur):
			outcome = "unchanged"
		case *dry && exists:
			outcome = "would change"
		case *dry:
			outcome = "would create"
		case exists:
			if err := c.do(http.MethodPut, "/api/v1/autonomous/actions/"+strconv.FormatInt(cur.ID, 10), want, nil); err != nil {
				return fmt.Errorf("actions apply: action %q: %w", want.Name, err)
			}
			outcome = "changed"
		default:
			var created actions.Definition
			if err := c.do(http.MethodPost, "/api/v1/autonomous/actions", want, &created); err != nil {
				return fmt.Errorf("actions apply: action %q: %w", want.Name, err)
			}
			outcome, id = "created", created.ID
		}
		counts[outcome]++
		if id != 0 {
			fmt.Fprintf(stdout, "action %q (id %d): %s\n", want.Name, id, outcome)
		} else {
			fmt.Fprintf(stdout, "action %q: %s\n", want.Name, outcome)
		}
	}
	if *dry {
		fmt.Fprintf(stdout, "dry run: %d would be created, %d changed, %d unchanged\n", counts["would create"], counts["would change"], counts["unchanged"])
		return nil
	}
	fmt.Fprintf(stdout, "%d created, %d changed, %d unchanged\n", counts["created"], counts["changed"], counts["unchanged"])
	return nil
}

func listActions(c *apiClient) ([]actions.Definition, error) {
	var l struct {
		Actions []actions.Definition `json:"actions"`
	}
	if err := c.do(http.MethodGet, "/api/v1/autonomous/actions", nil, &l); err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	return l.Actions, nil
}

func runActionsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("actions list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af autonomousFlags
	af.register(fs)
	asJSON := fs.Bool("json", false, "print the definitions as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: reflex actions list [flags]\n\nLists the action definitions.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := af.resolve(); err != nil {
		return fmt.Errorf("actions list: %w", err)
	}
	list, err := listActions(af.client(ctx))
	if err != nil {
		return fmt.Errorf("actions list: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tRISK\tAPPROVAL\tROLLBACK\tEXECUTOR\tENABLED")
	for _, d := range list {
		var spec struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(d.Executor, &spec)
		rollback := d.Rollback
		if rollback == "" {
			rollback = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%s\t%s\t%v\n", d.ID, d.Name, d.Type, d.RiskLevel, d.ApprovalRequired, rollback, spec.Type, d.Enabled)
	}
	return tw.Flush()
}
