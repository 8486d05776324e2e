// Package logtmpl mines log templates online, in the manner of Drain (He
// et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree",
// ICWS 2017): a message is masked (numbers, addresses, ids become <*>),
// split into tokens (at white space and around '=', '(' and ')'), and
// routed through a tree of fixed depth (first by its token count, then by
// its first tokens) to a leaf that holds a few templates. It joins the
// most similar one, turning the positions that differ into <*>, when the
// weighted share of the template's constant tokens it equals reaches a
// threshold: tokens that differ only in digits, punctuation or masked
// parts cost nothing, two different words cost WordWeight, anything else
// 1. A message that differs from its best template in one word only
// starts a template of its own; once WordValues templates differ from
// each other in that one position only, they fold into the oldest, with
// <*> there (a word is a parameter once it shows enough values). A Miner
// is bounded (templates, children per node) and safe for concurrent use.
package logtmpl

import (
	"slices"
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
	// Similarity is the weighted share of a template's constant tokens
	// that a message must equal to join it (default 0.6).
	Similarity float64
	// WordWeight is what a constant word (letters only) that the message
	// has another word in place of counts against the similarity, where
	// any other difference counts 1 and a difference in digits,
	// punctuation or masked parts only counts 0 (default 3: in a short
	// template one other word makes another event).
	WordWeight float64
	// WordValues is how many templates that differ from each other in
	// one word position only it takes to fold them into one with a
	// parameter there; until then a message that differs from its best
	// template in one word only starts a template of its own (default 4;
	// 1 turns this off: such a message joins by similarity alone).
	WordValues int
	// MaxChildren bounds the children of a token node; tokens beyond it
	// share a wildcard child (default 100).
	MaxChildren int
	// MaxTemplates bounds the templates of the miner; beyond it new
	// messages are matched against the existing ones only (their best
	// match, however low) (default 100,000).
	MaxTemplates int
	// MaxLeafTemplates bounds the templates of one leaf (one token count
	// and leading tokens): a message is compared with every template of
	// its leaf, so a flood of messages that join nothing (distinct words
	// in several places) would make each one cost more than the last.
	// Beyond it a message of that leaf joins its best match, however low
	// (default 100; the largest leaf of the 24,000 loghub lines mined by one
	// miner holds 6).
	MaxLeafTemplates int
	// Masks replace the parts of a message that are parameters by <*>
	// before it is split; nil means DefaultMasks.
	Masks []Mask
}

// Template is a mined template.
type Template struct {
	ID    int64  `json:"id"`
	Text  string `json:"text"`
	Count int64  `json:"count"`
	// FoldedInto is, for a template folded into another, the id of the
	// live template (whose text Text is; Count is 0: its messages count
	// there); 0 for a live template.
	FoldedInto int64 `json:"folded_into,omitempty"`
}

// Miner mines templates.
type Miner struct {
	opts  Options
	masks []Mask

	mu       sync.Mutex
	root     map[int]*node // by token count
	clusters []*cluster    // by id - 1
	tokens   []string      // Add's buffers, reused under mu
	glued    []bool
}

type node struct {
	children map[string]*node
	leaf     []*cluster
}

type cluster struct {
	id     int64
	tokens []string
	glued  []bool // glued[i]: no space before tokens[i] in the text (tokenize gives both)
	count  int64
	into   *cluster // the template this one was folded into, or nil
}

// New returns an empty Miner.
func New(opts Options) *Miner {
	if opts.Depth < 3 {
		opts.Depth = 4
	}
	if opts.Similarity <= 0 || opts.Similarity > 1 {
		opts.Similarity = 0.6
	}
	if opts.WordWeight <= 0 {
		opts.WordWeight = 3
	}
	if opts.WordValues <= 0 {
		opts.WordValues = 4
	}
	if opts.MaxChildren <= 0 {
		opts.MaxChildren = 100
	}
	if opts.MaxLeafTemplates <= 0 {
		opts.MaxLeafTemplates = 100
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
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens, m.glued = tokenizeInto(masked, m.tokens[:0], m.glued[:0])
	tokens := m.tokens
	leaf := m.leafOf(tokens)
	best, words, ok := m.bestMatch(leaf.leaf, tokens)
	if ok && words == 1 && m.opts.WordValues > 1 {
		ok = false // one other word: another event until the word shows values enough
	}
	if best != nil && (ok || len(m.clusters) >= m.opts.MaxTemplates || len(leaf.leaf) >= m.opts.MaxLeafTemplates) {
		merge(best, tokens)
		best.count++
		return best.template(), false
	}
	c := &cluster{id: int64(len(m.clusters) + 1), tokens: slices.Clone(tokens), glued: slices.Clone(m.glued), count: 1}
	m.clusters = append(m.clusters, c)
	leaf.leaf = append(leaf.leaf, c)
	if m.opts.WordValues > 1 {
		if live := m.fold(leaf, c); live != nil {
			return live.template(), false
		}
	}
	return c.template(), true
}

// Resolve returns the id of the live template that the template id was
// folded into, id itself when it was not (or is unknown).
func (m *Miner) Resolve(id int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id < 1 || id > int64(len(m.clusters)) {
		return id
	}
	return m.clusters[id-1].live().id
}

// Templates returns the templates mined so far, by id (index id-1),
// folded ones included (with FoldedInto set).
func (m *Miner) Templates() []Template {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Template, len(m.clusters))
	for i, c := range m.clusters {
		if c.into == nil {
			out[i] = c.template()
			continue
		}
		live := c.live()
		out[i] = Template{ID: c.id, Text: live.template().Text, FoldedInto: live.id}
	}
	return out
}

func (c *cluster) live() *cluster {
	for c.into != nil {
		c = c.into
	}
	return c
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
		if hasDigit(key) || strings.Contains(key, Wildcard) {
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

// bestMatch returns the template of leaf most similar to tokens, how many
// of its constant words the message has other words in place of, and
// whether it is similar enough to join. The similarity is same/(same +
// cost) over the template's constant tokens, where a token that differs
// costs 0 when the two have the same letters or both look like
// parameters, WordWeight when they are two words, else 1; of equal
// similarity, the one with fewer wildcards wins.
func (m *Miner) bestMatch(leaf []*cluster, tokens []string) (*cluster, int, bool) {
	var best *cluster
	bestSim, bestWild, bestWords := -1.0, 0, 0
	for _, c := range leaf {
		same, wild, words, params := 0, 0, 0, 0
		cost := 0.0
		for i, t := range c.tokens {
			switch w := tokens[i]; {
			case t == Wildcard:
				wild++
			case t == w:
				same++
			case sameLetters(t, w):
			case paramPair(t, w):
				params++
			case wordPair(t, w):
				words++
				cost += m.opts.WordWeight
			default:
				cost++
			}
		}
		sim := 1.0
		if d := float64(same) + cost; d > 0 {
			sim = float64(same) / d
		} else if params > 0 && wild+params == len(c.tokens) {
			sim = 0 // joining would leave no constant: nothing says it is the same event
		}
		if sim > bestSim || (sim == bestSim && wild < bestWild) {
			best, bestSim, bestWild, bestWords = c, sim, wild, words
		}
	}
	return best, bestWords, best != nil && bestSim >= m.opts.Similarity
}

// fold folds c and the templates of leaf that differ from it in one word
// position only (the rest equal or parameters) into the oldest of them
// once they are WordValues, and returns it; nil when there are fewer.
func (m *Miner) fold(leaf *node, c *cluster) *cluster {
	for p, t := range c.tokens {
		if !hasLetter(t) {
			continue
		}
		var sib []*cluster
		var values map[string]bool // the distinct words at p
		for _, d := range leaf.leaf {
			if d != c && len(d.tokens) == len(c.tokens) && d.tokens[p] != t && wordPair(t, d.tokens[p]) && sameBut(c.tokens, d.tokens, p) {
				if values == nil {
					values = map[string]bool{t: true}
				}
				sib = append(sib, d)
				values[d.tokens[p]] = true
			}
		}
		if len(values) < m.opts.WordValues {
			continue
		}
		live := c
		for _, d := range sib {
			if d.id < live.id {
				live = d
			}
		}
		sib = append(sib, c)
		for _, d := range sib {
			if d != live {
				merge(live, d.tokens)
				live.count += d.count
				d.count = 0
				d.into = live
			}
		}
		kept := leaf.leaf[:0]
		for _, d := range leaf.leaf {
			if d.into == nil {
				kept = append(kept, d)
			}
		}
		clear(leaf.leaf[len(kept):])
		leaf.leaf = kept
		return live
	}
	return nil
}

// sameBut: a and b agree at every position but p (equal, a wildcard on
// either side, or a pair of parameters).
func sameBut(a, b []string, p int) bool {
	for q, u := range a {
		if q == p {
			continue
		}
		if v := b[q]; u != v && u != Wildcard && v != Wildcard && !paramPair(u, v) {
			return false
		}
	}
	return true
}

// merge turns the positions where c and tokens differ into parameters
// (mergeToken).
func merge(c *cluster, tokens []string) {
	for i, t := range c.tokens {
		if t != tokens[i] {
			c.tokens[i] = mergeToken(t, tokens[i])
		}
	}
}

func (c *cluster) template() Template {
	n := len(c.tokens)
	for _, t := range c.tokens {
		n += len(t)
	}
	var b strings.Builder
	b.Grow(n)
	for i, t := range c.tokens {
		if i > 0 && (i >= len(c.glued) || !c.glued[i]) { // no glue known: a space
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return Template{ID: c.id, Text: b.String(), Count: c.count}
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}
