// Command reflex is the reflex server and its command-line client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build does). Without it, versionString reads the module's build info.
var version = "dev"

// versionString describes this binary: the version set at build time, else
// the main module's version and the VCS revision, time and modified flag
// that the go command recorded (go build in a git checkout, go install of
// a tagged version); go run records none of them.
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, bi)
}

// describeBuild is versionString for a given ldflags version and build
// info (nil when the binary has none).
func describeBuild(ldVersion string, bi *debug.BuildInfo) string {
	if ldVersion != "dev" && ldVersion != "" {
		return ldVersion
	}
	if bi == nil {
		return "dev"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	var details []string
	if rev != "" {
		details = append(details, "revision "+rev)
	}
	if at != "" {
		details = append(details, at)
	}
	if modified {
		details = append(details, "modified")
	}
	if rev == "" && v == "dev" {
		details = append(details, "no VCS stamp: go run and -buildvcs=false record none, make build does")
	}
	if bi.GoVersion != "" {
		details = append(details, bi.GoVersion)
	}
	if len(details) == 0 {
		return v
	}
	return v + " (" + strings.Join(details, ", ") + ")"
}

const usage = `reflex: event-driven operations

Usage:
  reflex server [flags]    run the Event Processing (:3009) and Autonomous Response (:3011) services
  reflex migrate [flags]   apply the database migrations and exit
  reflex send [flags]      post an event to a running server
  reflex loadgen [flags]   post events at a set rate and report throughput and latency
                           (--scenario NAME: post a storm with its inventory and ground truth)
  reflex rules <command>   apply, list and test trigger rules and response templates
  reflex actions <command> apply and list the autonomous service's action definitions
  reflex approvals <command>  list, approve and reject the steps waiting for approval
  reflex executions watch ID  follow an execution live
  reflex feedback ID KIND  give feedback on a decision (helpful, not_helpful, incorrect)
  reflex audit verify      verify the audit log's hash chain (exit 1 names the first bad record)
  reflex eval loghub DIR   score log template mining on loghub-style data
  reflex eval nab DIR      score anomaly detection on NAB-style data
  reflex eval storms       score incidents and root causes on storms posted to a server
  reflex version           print the version

Run 'reflex <command> --help' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = runServer(ctx, args[1:], stderr)
	case "migrate":
		err = runMigrate(ctx, args[1:], stderr)
	case "send":
		err = runSend(ctx, args[1:], stdout, stderr)
	case "loadgen":
		err = runLoadgen(ctx, args[1:], stdout, stderr)
	case "rules":
		err = runRules(ctx, args[1:], stdout, stderr)
	case "eval":
		err = runEval(ctx, args[1:], stdout, stderr)
	case "actions":
		err = runActions(ctx, args[1:], stdout, stderr)
	case "approvals":
		err = runApprovals(ctx, args[1:], stdout, stderr)
	case "executions":
		err = runExecutions(ctx, args[1:], stdout, stderr)
	case "feedback":
		err = runFeedback(ctx, args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "reflex %s\n", versionString())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "reflex: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(stderr, "reflex: %v\n", err)
		var ec *exitCode
		if errors.As(err, &ec) {
			return ec.code
		}
		return 1
	}
}
