// Package enrich holds reflex's asset inventory and the pipeline stage that
// adds what the inventory knows about an event's host (environment,
// criticality, owner, team, service, dependencies) to the event.
package enrich

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/reflex-ops/reflex/internal/store"
)

// AssetLister is the part of store.Store that Load needs.
type AssetLister interface {
	Assets(ctx context.Context) ([]store.Asset, error)
}

// Inventory is the in-memory asset inventory, keyed by lowercased host. It
// is safe for concurrent use: the pipeline reads it on every event while
// the assets API writes it.
type Inventory struct {
	mu     sync.RWMutex
	assets map[string]store.Asset
	// dependents counts, per lowercased host, the assets that list it
	// among their dependencies.
	dependents map[string]int
}

// NewInventory returns an empty inventory.
func NewInventory() *Inventory {
	return &Inventory{assets: make(map[string]store.Asset), dependents: make(map[string]int)}
}

// count adds d to the dependents of each dependency of a. inv.mu is held.
func (inv *Inventory) count(a store.Asset, d int) {
	for _, dep := range a.Dependencies {
		if inv.dependents[dep] += d; inv.dependents[dep] <= 0 {
			delete(inv.dependents, dep)
		}
	}
}

// HasDependents reports whether some asset lists host (matched without
// regard to case) among its dependencies.
func (inv *Inventory) HasDependents(host string) bool {
	host = strings.ToLower(strings.TrimSpace(host))
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return inv.dependents[host] > 0
}

// Set adds or replaces the asset of a.Host. The host and the dependencies
// are lowercased; the slices are copied, so the caller may reuse a. Set does
// not validate: use ValidateAsset first for input from users.
func (inv *Inventory) Set(a store.Asset) {
	a = normalized(a)
	inv.mu.Lock()
	if old, ok := inv.assets[a.Host]; ok {
		inv.count(old, -1)
	}
	inv.assets[a.Host] = a
	inv.count(a, 1)
	inv.mu.Unlock()
}

// Delete removes the asset of host, if any.
func (inv *Inventory) Delete(host string) {
	host = strings.ToLower(strings.TrimSpace(host))
	inv.mu.Lock()
	if old, ok := inv.assets[host]; ok {
		inv.count(old, -1)
		delete(inv.assets, host)
	}
	inv.mu.Unlock()
}

// Get returns the asset of host (matched without regard to case). The
// returned slices are shared with the inventory and must not be modified.
func (inv *Inventory) Get(host string) (store.Asset, bool) {
	if host == "" {
		return store.Asset{}, false
	}
	inv.mu.RLock()
	a, ok := inv.assets[host]
	inv.mu.RUnlock()
	if !ok && hasUpper(host) {
		inv.mu.RLock()
		a, ok = inv.assets[strings.ToLower(host)]
		inv.mu.RUnlock()
	}
	return a, ok
}

// Len returns the number of assets.
func (inv *Inventory) Len() int {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return len(inv.assets)
}

// Load replaces the inventory's contents with the assets s lists. On error
// the inventory is left unchanged.
func (inv *Inventory) Load(ctx context.Context, s AssetLister) error {
	list, err := s.Assets(ctx)
	if err != nil {
		return fmt.Errorf("enrich: load assets: %w", err)
	}
	m := make(map[string]store.Asset, len(list))
	for _, a := range list {
		a = normalized(a)
		m[a.Host] = a
	}
	inv.mu.Lock()
	inv.assets = m
	inv.dependents = make(map[string]int)
	for _, a := range m {
		inv.count(a, 1)
	}
	inv.mu.Unlock()
	return nil
}

// normalized returns a copy of a with a lowercased host and dependencies and
// its own slices.
func normalized(a store.Asset) store.Asset {
	a.Host = strings.ToLower(strings.TrimSpace(a.Host))
	a.Criticality = strings.ToLower(strings.TrimSpace(a.Criticality))
	if a.Dependencies != nil {
		deps := make([]string, len(a.Dependencies))
		for i, d := range a.Dependencies {
			deps[i] = strings.ToLower(strings.TrimSpace(d))
		}
		a.Dependencies = deps
	}
	a.Tags = slices.Clone(a.Tags)
	return a
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}
