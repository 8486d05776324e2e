// Package logtmpl mines log templates online, in the manner of Drain (He
// et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree",
// ICWS 2017): a message is masked (numbers, addresses, ids become <*>),
// split into tokens, and routed through a tree of fixed depth (first by
// its token count, then by its first tokens) to a leaf that holds a few
// templates; it joins the most similar one when the share of equal tokens
// reaches a threshold, turning the positions that differ into <*>, or
// starts a new template. A Miner is bounded (templates per leaf, children
// per node) and safe for concurrent use.
package logtmpl

import (
	"strings"
	"sync"
)

// Wildcard stands for a parameter in a template.
const Wildcard = "<*>"

// Options configure a Miner. The zero value takes the defaults.
type Options struct {
	// Depth is the depth of the tree: 2 for the token count and the
	// leaf, plus Depth-2 levels of leading tokens (default 4).
	Depth int
	// Similarity is the share of a template's tokens that a message must
	// equal to join it (default 0.4).
	Similarity float64
	// MaxChildren bounds the children of a token node; tokens beyond it
	// share a wildcard child (default 100).
	MaxChildren int
	// MaxTemplates bounds the templates of the miner; beyond it new
	// messages are matched against the existing ones only (their best
	// match, however low) (default 100,000).
	MaxTemplates int
	// Masks replace the parts of a message that are parameters by <*>
	// before it is split; nil means DefaultMasks.
	Masks []Mask
}

// Template is a mined template.
type Template struct {
	ID    int64  `json:"id"`
	Text  string `json:"text"`
	Count int64  `json:"count"`
}

// Miner mines templates.
type Miner struct {
	opts  Options
	masks []Mask

	mu       sync.Mutex
	root     map[int]*node // by token count
	clusters []*cluster    // by id - 1
}

type node struct {
	children map[string]*node
	leaf     []*cluster
}

type cluster struct {
	id     int64
	tokens []string
	count  int64
}

// New returns an empty Miner.
func New(opts Options) *Miner {
	if opts.Depth < 3 {
		opts.Depth = 4
	}
	if opts.Similarity <= 0 || opts.Similarity > 1 {
		opts.Similarity = 0.4
	}
	if opts.MaxChildren <= 0 {
		opts.MaxChildren = 100
	}
	if opts.MaxTemplates <= 0 {
		opts.MaxTemplates = 100_000
	}
	return &Miner{opts: opts, masks: opts.Masks, root: map[int]*node{}}
}

// Add mines msg and returns its template (after msg joined it) and
// whether the template is new.
func (m *Miner) Add(msg string) (Template, bool) {
	masked := maskDefault(msg) // DefaultMasks, without regular expressions
	if m.masks != nil {
		masked = Apply(m.masks, msg)
	}
	tokens := strings.Fields(masked)
	m.mu.Lock()
	defer m.mu.Unlock()
	leaf := m.leafOf(tokens)
	best, sim := bestMatch(leaf.leaf, tokens)
	if best != nil && (sim >= m.opts.Similarity || len(m.clusters) >= m.opts.MaxTemplates) {
		merge(best, tokens)
		best.count++
		return best.template(), false
	}
	c := &cluster{id: int64(len(m.clusters) + 1), tokens: tokens, count: 1}
	m.clusters = append(m.clusters, c)
	leaf.leaf = append(leaf.leaf, c)
	return c.template(), true
}

// Templates returns the templates mined so far, by id.
func (m *Miner) Templates() []Template {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Template, len(m.clusters))
	for i, c := range m.clusters {
		out[i] = c.template()
	}
	return out
}

// leafOf walks (and grows) the tree to the leaf of tokens. m.mu is held.
func (m *Miner) leafOf(tokens []string) *node {
	n := m.root[len(tokens)]
	if n == nil {
		n = &node{children: map[string]*node{}}
		m.root[len(tokens)] = n
	}
	for i := 0; i < m.opts.Depth-2 && i < len(tokens); i++ {
		key := tokens[i]
		if hasDigit(key) {
			key = Wildcard
		}
		child := n.children[key]
		if child == nil {
			if len(n.children) >= m.opts.MaxChildren {
				key = Wildcard
				child = n.children[key]
			}
			if child == nil {
				child = &node{children: map[string]*node{}}
				n.children[key] = child
			}
		}
		n = child
	}
	return n
}

// bestMatch returns the template of leaf most similar to tokens and its
// similarity: the share of positions where the template's token equals the
// message's; of equal similarity, the one with fewer wildcards.
func bestMatch(leaf []*cluster, tokens []string) (*cluster, float64) {
	var best *cluster
	bestSim, bestWild := -1.0, 0
	for _, c := range leaf {
		same, wild := 0, 0
		for i, t := range c.tokens {
			switch t {
			case Wildcard:
				wild++
			case tokens[i]:
				same++
			}
		}
		sim := 1.0
		if len(tokens) > 0 {
			sim = float64(same) / float64(len(tokens))
		}
		if sim > bestSim || (sim == bestSim && wild < bestWild) {
			best, bestSim, bestWild = c, sim, wild
		}
	}
	return best, bestSim
}

// merge turns the positions where c and tokens differ into wildcards.
func merge(c *cluster, tokens []string) {
	for i, t := range c.tokens {
		if t != tokens[i] {
			c.tokens[i] = Wildcard
		}
	}
}

func (c *cluster) template() Template {
	return Template{ID: c.id, Text: strings.Join(c.tokens, " "), Count: c.count}
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}
