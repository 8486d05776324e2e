package logtmpl

import (
	"errors"
	"fmt"
	"slices"
)

// Saved is a template as a store keeps it, to restore a Miner: its id,
// its tokens and their glue (the tree's own form of it), its count, the
// template it was folded into (0: none), and the first message that formed
// it, which routes it through the tree as that message did. Text is the
// template's text (the live template's for a folded one), for the store;
// Restore does not read it.
type Saved struct {
	ID         int64
	Text       string
	Tokens     []string
	Glued      []bool
	Count      int64
	FoldedInto int64
	Example    string
}

// Len returns the number of template ids the miner has allocated: the
// largest id.
func (m *Miner) Len() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.clusters))
}

// Snapshot returns the state of the templates ids, in the order given;
// unknown ids are left out.
func (m *Miner) Snapshot(ids []int64) []Saved {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Saved, 0, len(ids))
	for _, id := range ids {
		if id >= 1 && id <= int64(len(m.clusters)) {
			out = append(out, m.saved(m.clusters[id-1]))
		}
	}
	return out
}

// Changed returns the state of the templates with ids above after and,
// for each of them that was folded into another, of that template and of
// every template folded into it (a fold happens when a template is
// created); and the largest id. A caller that keeps a copy of the
// templates calls it with the largest id it has.
func (m *Miner) Changed(after int64) ([]Saved, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	top := int64(len(m.clusters))
	if after < 0 {
		after = 0
	}
	var out []Saved
	seen := map[int64]bool{}
	var lives []*cluster
	for _, c := range m.clusters[min(after, top):] {
		seen[c.id] = true
		out = append(out, m.saved(c))
		if c.into != nil {
			lives = append(lives, c.live())
		}
	}
	if len(lives) > 0 {
		for _, c := range m.clusters[:min(after, top)] {
			if !seen[c.id] && (slices.Contains(lives, c) || (c.into != nil && slices.Contains(lives, c.live()))) {
				seen[c.id] = true
				out = append(out, m.saved(c))
			}
		}
	}
	return out, top
}

// saved is c's state. m.mu is held.
func (m *Miner) saved(c *cluster) Saved {
	s := Saved{ID: c.id, Tokens: slices.Clone(c.tokens), Glued: slices.Clone(c.glued), Count: c.count}
	if c.into != nil {
		live := c.live()
		s.FoldedInto, s.Text = live.id, live.template().Text
	} else if c.tokens != nil {
		s.Text = c.template().Text
	}
	return s
}

// Restore fills an empty miner with saved templates under their own ids,
// so that a template keeps its id across restarts: a message that joined
// template 7 before joins template 7 after, and new templates take the
// ids after the largest restored one. Each live template goes to the leaf
// its example routes to (its tokens' own when the example no longer has
// as many tokens, for example after a change of masks); a folded one
// stays out of the tree, folded into its template (which must have a
// smaller id, as folds make them). Ids missing from saved (a template
// created but not stored before a crash) stay unused: Templates lists
// them with an empty text and a zero count. It fails on a miner that has
// templates already, on an id below 1, an id given twice, and a fold into
// an unknown or later id.
func (m *Miner) Restore(saved []Saved) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.clusters) > 0 {
		return errors.New("logtmpl: restore: the miner is not empty")
	}
	var top int64
	for _, s := range saved {
		if s.ID < 1 {
			return fmt.Errorf("logtmpl: restore: template id %d is not positive", s.ID)
		}
		top = max(top, s.ID)
	}
	if top > int64(len(saved))+int64(m.opts.MaxTemplates) {
		return fmt.Errorf("logtmpl: restore: template id %d is far beyond the %d templates given", top, len(saved))
	}
	clusters := make([]*cluster, top)
	examples := make([]string, top)
	for _, s := range saved {
		if clusters[s.ID-1] != nil {
			return fmt.Errorf("logtmpl: restore: template id %d given twice", s.ID)
		}
		glued := s.Glued
		if len(glued) != len(s.Tokens) {
			glued = nil // spaces between the tokens
		}
		clusters[s.ID-1] = &cluster{id: s.ID, tokens: slices.Clone(s.Tokens), glued: slices.Clone(glued), count: s.Count}
		examples[s.ID-1] = s.Example
	}
	for _, s := range saved {
		if s.FoldedInto == 0 {
			continue
		}
		if s.FoldedInto < 1 || s.FoldedInto >= s.ID || clusters[s.FoldedInto-1] == nil {
			return fmt.Errorf("logtmpl: restore: template %d is folded into %d, which is not an earlier template", s.ID, s.FoldedInto)
		}
		clusters[s.ID-1].into = clusters[s.FoldedInto-1]
	}
	for i, c := range clusters {
		if c == nil { // a hole: kept out of the tree
			clusters[i] = &cluster{id: int64(i + 1)}
			continue
		}
		if c.into != nil || c.tokens == nil {
			continue
		}
		route := c.tokens
		if ex, _ := tokenize(m.mask(examples[i])); len(ex) == len(c.tokens) {
			route = ex
		}
		leaf := m.leafOf(route)
		leaf.leaf = append(leaf.leaf, c)
	}
	m.clusters = clusters
	return nil
}

// mask masks msg as Add does.
func (m *Miner) mask(msg string) string {
	if m.masks != nil {
		return Apply(m.masks, msg)
	}
	return maskDefault(msg)
}
