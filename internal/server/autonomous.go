package server

import (
	"fmt"
	"net/http"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/executor/command"
	httpexec "github.com/reflex-ops/reflex/internal/executor/http"
	"github.com/reflex-ops/reflex/internal/executor/ssh"
)

// ExecutorValidators are the executor types this build runs, each with
// the check of its configuration that action definitions go through.
func ExecutorValidators() actions.Validators {
	return actions.Validators{
		command.Type:  func(s executor.Spec) error { _, err := command.Parse(s); return err },
		httpexec.Type: func(s executor.Spec) error { _, err := httpexec.Parse(s); return err },
		ssh.Type:      func(s executor.Spec) error { _, err := ssh.Parse(s); return err },
	}
}

// autonomousHandler is the handler of the Autonomous Response Service's
// address: its API and the operational endpoints.
func (s *Server) autonomousHandler() (http.Handler, error) {
	h, err := api.NewAutonomous(api.AutonomousOptions{
		Auth:       s.auth,
		Actions:    s.store,
		Validators: ExecutorValidators(),
		Ops:        api.NewOps(api.OpsOptions{Ready: s.Ready, Gatherer: s.reg, Service: "autonomous", Logger: s.log, Registerer: s.reg}),
		Logger:     s.log.With("component", "api", "service", "autonomous"),
		Registerer: s.reg,
		Now:        s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("server: autonomous api: %w", err)
	}
	return h, nil
}
