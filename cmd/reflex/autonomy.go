package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/server"
	"github.com/reflex-ops/reflex/internal/store"
)

const approvalsUsage = `Usage: reflex approvals COMMAND [flags]

Works the approval queue of the Autonomous Response Service.

Commands:
  list                 list the approvals waiting
  approve ID           approve one and run the step it approves (--execute=false: print its token only)
  reject ID            reject one (its execution is cancelled)

The autonomous service is reached at --autonomous-url (env
REFLEX_AUTONOMOUS_URL; default: the host of --url or REFLEX_URL on port 3011).
`

func runApprovals(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, approvalsUsage)
		return errors.New("approvals: a command is required")
	}
	switch args[0] {
	case "list":
		return runApprovalsList(ctx, args[1:], stdout, stderr)
	case "approve", "reject":
		return runApprovalDecide(ctx, args[0], args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, approvalsUsage)
		return nil
	}
	fmt.Fprint(stderr, approvalsUsage)
	return fmt.Errorf("approvals: unknown command %q", args[0])
}

func runApprovalsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("approvals list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af autonomousFlags
	af.register(fs)
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := af.resolve(); err != nil {
		return fmt.Errorf("approvals list: %w", err)
	}
	var list struct {
		Approvals []store.Approval `json:"approvals"`
	}
	if err := af.client(ctx).do(http.MethodGet, "/api/v1/autonomous/approvals", nil, &list); err != nil {
		return fmt.Errorf("approvals list: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(list)
	}
	if len(list.Approvals) == 0 {
		fmt.Fprintln(stdout, "no approvals waiting")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDECISION\tEXECUTION\tACTION\tRISK\tEXPIRES\tPARAMETERS\tREASON")
	for _, a := range list.Approvals {
		exec := "-"
		if a.ExecutionID != nil {
			exec = strconv.FormatInt(*a.ExecutionID, 10)
		}
		params, _ := json.Marshal(a.Parameters)
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.DecisionID, exec, a.ActionName, a.RiskLevel,
			a.ExpiresAt.Local().Format(time.DateTime), params, a.Reason)
	}
	return tw.Flush()
}

func runApprovalDecide(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("approvals "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af autonomousFlags
	af.register(fs)
	comment := fs.String("comment", "", "why (recorded in the audit log)")
	execute := fs.Bool("execute", true, "approve: also run the approved step with the token (false: print the token only)")
	id, rest, err := leadingID(args)
	if err != nil {
		return fmt.Errorf("approvals %s: %w", verb, err)
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if id == 0 {
		if fs.NArg() != 1 {
			return fmt.Errorf("approvals %s: give one approval ID", verb)
		}
		if id, err = strconv.ParseInt(fs.Arg(0), 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("approvals %s: %q is not an approval ID", verb, fs.Arg(0))
		}
	}
	if err := af.resolve(); err != nil {
		return fmt.Errorf("approvals %s: %w", verb, err)
	}
	c := af.client(ctx)
	var ans struct {
		Token    string         `json:"approval_token"`
		Approval store.Approval `json:"approval"`
	}
	if err := c.do(http.MethodPost, "/api/v1/autonomous/approvals/"+strconv.FormatInt(id, 10)+"/"+verb, map[string]string{"comment": *comment}, &ans); err != nil {
		return fmt.Errorf("approvals %s: %w", verb, err)
	}
	if verb == "reject" {
		fmt.Fprintf(stdout, "approval %d rejected\n", id)
		return nil
	}
	if !*execute {
		fmt.Fprintf(stdout, "approval %d approved; its single-use token (POST /api/v1/autonomous/execute):\n%s\n", id, ans.Token)
		return nil
	}
	var x struct {
		ExecutionID int64  `json:"execution_id"`
		Status      string `json:"status"`
	}
	req := map[string]any{"decision_id": ans.Approval.DecisionID, "action_id": ans.Approval.ActionID, "approval_token": ans.Token}
	if err := c.do(http.MethodPost, "/api/v1/autonomous/execute", req, &x); err != nil {
		return fmt.Errorf("approvals approve: approved, but the execution failed: %w", err)
	}
	fmt.Fprintf(stdout, "approval %d approved: execution %d %s (reflex executions watch %d)\n", id, x.ExecutionID, x.Status, x.ExecutionID)
	return nil
}

// leadingID takes an ID given before the flags ("approve 12 --comment x").
func leadingID(args []string) (int64, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return 0, args, nil
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, nil, fmt.Errorf("%q is not an ID", args[0])
	}
	return id, args[1:], nil
}

const executionsUsage = `Usage: reflex executions watch ID [flags]

Follows an execution of the Autonomous Response Service live: each step's
state as it changes, until the execution ends. Exits 0 when it completed,
1 when it failed, was rolled back or cancelled.
`

func runExecutions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "watch" {
		fmt.Fprint(stderr, executionsUsage)
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errors.New("executions: the command is watch ID")
	}
	fs := flag.NewFlagSet("executions watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af autonomousFlags
	af.register(fs)
	id, rest, err := leadingID(args[1:])
	if err != nil {
		return fmt.Errorf("executions watch: %w", err)
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if id == 0 {
		if fs.NArg() != 1 {
			return errors.New("executions watch: give one execution ID")
		}
		if id, err = strconv.ParseInt(fs.Arg(0), 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("executions watch: %q is not an execution ID", fs.Arg(0))
		}
	}
	if err := af.resolve(); err != nil {
		return fmt.Errorf("executions watch: %w", err)
	}
	x, err := watchExecution(ctx, af, id, stdout)
	if err != nil {
		return fmt.Errorf("executions watch: %w", err)
	}
	if x.Status != store.ExecCompleted {
		return fmt.Errorf("execution %d ended %s", id, x.Status)
	}
	return nil
}

// watchExecution reads the execution's event stream and prints each
// change of a step; it returns the last state.
func watchExecution(ctx context.Context, af autonomousFlags, id int64, out io.Writer) (store.Execution, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(af.autonomous, "/")+"/api/v1/autonomous/executions/"+strconv.FormatInt(id, 10)+"/stream", nil) //nolint:gosec // the server the operator named
	if err != nil {
		return store.Execution{}, err
	}
	req.Header.Set("Authorization", "Bearer "+af.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req) //nolint:gosec // the server the operator named
	if err != nil {
		return store.Execution{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return store.Execution{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var last store.Execution
	seen := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "execution":
			var x store.Execution
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &x); err != nil {
				return last, fmt.Errorf("unreadable event: %w", err)
			}
			printChanges(out, x, seen)
			last = x
		case strings.HasPrefix(line, "data: ") && event == "end":
			fmt.Fprintf(out, "%s execution %d %s\n", time.Now().Format(time.TimeOnly), last.ID, last.Status)
			return last, nil
		}
	}
	if err := sc.Err(); err != nil {
		return last, err
	}
	return last, errors.New("the stream ended before the execution did")
}

func printChanges(out io.Writer, x store.Execution, seen map[string]string) {
	now := time.Now().Format(time.TimeOnly)
	if seen["#"] != x.Status {
		fmt.Fprintf(out, "%s execution %d: %s\n", now, x.ID, x.Status)
		seen["#"] = x.Status
	}
	show := func(prefix string, st store.StepState) {
		key := prefix + st.Name
		if seen[key] == st.Status {
			return
		}
		seen[key] = st.Status
		line := fmt.Sprintf("%s   %s%-24s %s", now, prefix, st.Name, st.Status)
		if st.ExitCode != nil {
			line += fmt.Sprintf(" (exit %d)", *st.ExitCode)
		}
		if st.Error != "" {
			line += ": " + st.Error
		}
		fmt.Fprintln(out, line)
		if st.Output != "" && (st.Status == store.StepFailed || st.Status == store.StepSucceeded) {
			for _, l := range strings.Split(strings.TrimRight(st.Output, "\n"), "\n") {
				fmt.Fprintf(out, "%s     | %s\n", now, l)
			}
		}
	}
	for _, st := range x.Steps {
		show("", st)
	}
	for _, st := range x.Rollback {
		show("rollback ", st)
	}
}

const feedbackUsage = `Usage: reflex feedback DECISION_ID helpful|not_helpful|incorrect [--notes TEXT] [--suggestions TEXT]

Tells the Autonomous Response Service what you think of a decision. It
updates the decision, the firing's rule execution and the learning data:
the next decision on the same pattern reflects it. "incorrect" records a
human override, with --notes as its reason.
`

func runFeedback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("feedback", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af autonomousFlags
	af.register(fs)
	notes := fs.String("notes", "", "what happened")
	suggestions := fs.String("suggestions", "", "what would have been better")
	fs.Usage = func() { fmt.Fprint(stderr, feedbackUsage+"\nFlags:\n"); fs.PrintDefaults() }
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	pos = append(pos, fs.Args()...)
	if len(pos) != 2 {
		fs.Usage()
		return errors.New("feedback: give a decision ID and helpful, not_helpful or incorrect")
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("feedback: %q is not a decision ID", pos[0])
	}
	if err := af.resolve(); err != nil {
		return fmt.Errorf("feedback: %w", err)
	}
	var d store.Decision
	body := map[string]any{"decision_id": id, "feedback": pos[1], "notes": *notes, "suggestions": *suggestions}
	if err := af.client(ctx).do(http.MethodPost, "/api/v1/autonomous/feedback", body, &d); err != nil {
		return fmt.Errorf("feedback: %w", err)
	}
	fmt.Fprintf(stdout, "feedback %s recorded on decision %d\n", d.Feedback, d.ID)
	return nil
}

const auditUsage = `Usage: reflex audit verify [flags]

Verifies the audit log's hash chain with its key, reading the database
directly (--data-dir or --database-url, as the server). Exits 0 when every
record is intact, 1 naming the first bad record when one was changed,
removed or inserted, 2 when it cannot verify (no key, no database).
`

// exitCode is an error with the process's exit status.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string { return e.err.Error() }
func (e *exitCode) Unwrap() error { return e.err }

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return &exitCode{2, errors.New("audit: the command is verify")}
	}
	cfg, _, err := config.Load("audit", args[1:], os.Getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitCode{2, err}
	}
	keyFile := cfg.AuditKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, audit.KeyFileName)
	}
	key, err := audit.LoadKey(keyFile)
	if err != nil {
		return &exitCode{2, fmt.Errorf("audit verify: %w", err)}
	}
	log := newLogger(cfg, stderr)
	st, err := server.OpenStore(ctx, cfg, log, time.Now)
	if err != nil {
		return &exitCode{2, fmt.Errorf("audit verify: %w", err)}
	}
	defer func() { _ = st.Close() }()
	rep, err := audit.Verify(ctx, st, key)
	if err != nil {
		return &exitCode{2, fmt.Errorf("audit verify: %w", err)}
	}
	fmt.Fprintln(stdout, rep.String())
	if !rep.OK() {
		return &exitCode{1, errors.New("audit verify: the audit log was tampered with")}
	}
	return nil
}
