// Package impact is the autonomous service's impact analyzer: the blast
// radius of acting on a host, from the asset inventory's dependencies
// (which hosts depend on it, directly and transitively, and their
// services) and the host's criticality. A large radius or a critical host
// requires approval; the radius and its reason go into the decision's
// reasoning.
package impact

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/reflex-ops/reflex/internal/store"
)

// Assets is the part of store.AssetStore the analyzer reads. It must be
// safe for concurrent use.
type Assets interface {
	// Assets lists every asset.
	Assets(ctx context.Context) ([]store.Asset, error)
}

var _ Assets = store.AssetStore(nil)

// Defaults of Options.
const (
	DefaultMaxDepth  = 5
	DefaultMaxAssets = 1000
	// DefaultMaxDependents is the number of dependents from which acting
	// on a host requires approval.
	DefaultMaxDependents = 5
	// DefaultHighDependents is the number of dependents from which acting
	// on a host of high criticality requires approval.
	DefaultHighDependents = 1
)

// Criticalities of the asset inventory.
const (
	Critical = "critical"
	High     = "high"
)

// Options configure New. Only Assets is required; the zero value of every
// other field is its default.
type Options struct {
	// Assets is the inventory. Required.
	Assets Assets
	// MaxDepth bounds how many hops of dependencies are followed
	// (default 5).
	MaxDepth int
	// MaxAssets bounds the dependents collected (default 1000); a radius
	// that reaches it is Truncated.
	MaxAssets int
	// Rules say when the radius requires approval.
	Rules Rules
}

// Rules say when acting on a host requires approval.
type Rules struct {
	// Criticalities always require approval (default: critical).
	Criticalities []string
	// MaxDependents: this many dependents or more require approval
	// (default 5; negative: never).
	MaxDependents int
	// HighDependents: a host of high criticality with this many
	// dependents or more requires approval (default 1; negative: never).
	HighDependents int
}

// Analyzer computes blast radii. It is safe for concurrent use.
type Analyzer struct {
	assets    Assets
	maxDepth  int
	maxAssets int
	rules     Rules
}

// New returns an analyzer, or an error when Assets is missing.
func New(o Options) (*Analyzer, error) {
	if o.Assets == nil {
		return nil, errors.New("impact: new: Options.Assets is required")
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxAssets <= 0 {
		o.MaxAssets = DefaultMaxAssets
	}
	r := o.Rules
	if len(r.Criticalities) == 0 {
		r.Criticalities = []string{Critical}
	} else {
		r.Criticalities = slices.Clone(r.Criticalities)
	}
	for i, c := range r.Criticalities {
		r.Criticalities[i] = strings.ToLower(strings.TrimSpace(c))
	}
	if r.MaxDependents == 0 {
		r.MaxDependents = DefaultMaxDependents
	}
	if r.HighDependents == 0 {
		r.HighDependents = DefaultHighDependents
	}
	return &Analyzer{assets: o.Assets, maxDepth: o.MaxDepth, maxAssets: o.MaxAssets, rules: r}, nil
}

// Radius is the blast radius of acting on Host.
type Radius struct {
	Host string `json:"host"`
	// Known says the host is in the inventory; Criticality and Service
	// are its asset's ("" when unknown or unset).
	Known       bool   `json:"known"`
	Criticality string `json:"criticality,omitempty"`
	Service     string `json:"service,omitempty"`
	// Dependents are the hosts that depend on Host, directly or through
	// other hosts (at most MaxDepth hops), sorted; Direct counts those
	// that depend on it directly.
	Dependents []string `json:"dependents"`
	Direct     int      `json:"direct"`
	// Services are the services of the dependents, sorted.
	Services []string `json:"services"`
	// Truncated says the dependents reached MaxAssets: there may be more.
	Truncated bool `json:"truncated,omitempty"`
	// RequiresApproval says the radius requires a human's approval, and
	// Reason describes the radius and why, in a sentence.
	RequiresApproval bool   `json:"requires_approval"`
	Reason           string `json:"reason"`
}

func key(host string) string { return strings.ToLower(strings.TrimSpace(host)) }

// Analyze returns the blast radius of acting on host. Dependency cycles
// end the walk where it returns to a host already seen. A host that is
// not in the inventory has no criticality but may still have dependents.
func (a *Analyzer) Analyze(ctx context.Context, host string) (Radius, error) {
	target := key(host)
	if target == "" {
		return Radius{}, errors.New("impact: analyze: empty host")
	}
	list, err := a.assets.Assets(ctx)
	if err != nil {
		return Radius{}, fmt.Errorf("impact: analyze %s: assets: %w", host, err)
	}
	r := Radius{Host: strings.TrimSpace(host), Dependents: []string{}, Services: []string{}}
	byHost := make(map[string]store.Asset, len(list))
	dependents := map[string][]string{} // host -> hosts that depend on it
	for _, as := range list {
		h := key(as.Host)
		byHost[h] = as
		for _, d := range as.Dependencies {
			if d = key(d); d != "" && d != h {
				dependents[d] = append(dependents[d], h)
			}
		}
	}
	if as, ok := byHost[target]; ok {
		r.Known, r.Host = true, as.Host
		r.Criticality = strings.ToLower(strings.TrimSpace(as.Criticality))
		r.Service = as.Service
	}

	seen := map[string]bool{target: true}
	services := map[string]bool{}
	frontier := []string{target}
walk:
	for depth := 1; depth <= a.maxDepth && len(frontier) > 0; depth++ {
		var next []string
		for _, h := range frontier {
			for _, d := range dependents[h] {
				if seen[d] {
					continue
				}
				if len(r.Dependents) == a.maxAssets {
					r.Truncated = true
					break walk
				}
				seen[d] = true
				next = append(next, d)
				if depth == 1 {
					r.Direct++
				}
				as := byHost[d]
				r.Dependents = append(r.Dependents, as.Host)
				if s := strings.TrimSpace(as.Service); s != "" {
					services[s] = true
				}
			}
		}
		frontier = next
	}
	slices.Sort(r.Dependents)
	for s := range services {
		r.Services = append(r.Services, s)
	}
	slices.Sort(r.Services)
	a.judge(&r)
	return r, nil
}

// judge applies the rules and writes the reason.
func (a *Analyzer) judge(r *Radius) {
	var why []string
	if r.Criticality != "" && slices.Contains(a.rules.Criticalities, r.Criticality) {
		why = append(why, "the host is "+r.Criticality)
	}
	n := len(r.Dependents)
	if a.rules.MaxDependents > 0 && n >= a.rules.MaxDependents {
		why = append(why, fmt.Sprintf("%s on it (approval from %d)", dependOn(n, r.Truncated), a.rules.MaxDependents))
	}
	if a.rules.HighDependents > 0 && r.Criticality == High && n >= a.rules.HighDependents {
		why = append(why, fmt.Sprintf("the host is high and %s on it", dependOn(n, r.Truncated)))
	}
	r.RequiresApproval = len(why) > 0

	var parts []string
	switch {
	case !r.Known:
		parts = append(parts, r.Host+" is not in the asset inventory")
	case r.Criticality == "":
		parts = append(parts, r.Host+" has no criticality")
	default:
		parts = append(parts, r.Host+" is "+r.Criticality)
	}
	if n == 0 {
		parts = append(parts, "no host depends on it")
	} else {
		s := fmt.Sprintf("%s on it (%d directly", dependOn(n, r.Truncated), r.Direct)
		if len(r.Services) > 0 {
			s += "; services " + strings.Join(r.Services, ", ")
		}
		parts = append(parts, s+")")
	}
	if r.RequiresApproval {
		parts = append(parts, "approval required: "+strings.Join(why, ", "))
	}
	r.Reason = strings.Join(parts, "; ")
}

// dependOn says "1 host depends" or "7 hosts depend".
func dependOn(n int, truncated bool) string {
	s := fmt.Sprintf("%d hosts depend", n)
	if n == 1 && !truncated {
		s = "1 host depends"
	}
	if truncated {
		s = "at least " + s
	}
	return s
}
