package logtmpl

import (
	"errors"
	"fmt"
	"strings"
)

// Saved is a template as a store keeps it, to restore a Miner: its id,
// text and count, and the first message that formed it, which routes it
// through the tree as that message did.
type Saved struct {
	ID      int64
	Text    string
	Count   int64
	Example string
}

// Restore fills an empty miner with saved templates under their own ids,
// so that a template keeps its id across restarts: a message that joined
// template 7 before joins template 7 after, and new templates take the
// ids after the largest restored one. Each template goes to the leaf its
// example routes to (its text's own when the example no longer has the
// text's token count, for example after a change of masks). Ids missing
// from saved (a template created but not stored before a crash) stay
// unused: Templates lists them with an empty text and a zero count. It
// fails on a miner that has templates already, on an id below 1, and on an
// id given twice.
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
		clusters[s.ID-1] = &cluster{id: s.ID, tokens: strings.Fields(s.Text), count: s.Count}
		examples[s.ID-1] = s.Example
	}
	for i, c := range clusters {
		if c == nil { // a hole: kept out of the tree
			clusters[i] = &cluster{id: int64(i + 1)}
			continue
		}
		route := c.tokens
		if ex := strings.Fields(m.mask(examples[i])); len(ex) == len(c.tokens) {
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
