package email

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTMLToText converts an HTML mail body to plain text: tags are dropped
// (with the contents of script, style, head, title and template), entities
// decoded, runs of white space collapsed as a browser would, and line
// breaks kept where the markup makes them (br, p, div, headings, list
// items, table rows ...). A link to an http(s) address whose text is not
// the address is followed by it in parentheses. It reads with the
// tokenizer of golang.org/x/net/html, which builds no tree: the work and
// the memory are linear in the input.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var c converter
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return c.String()
		case html.TextToken:
			if c.skip == 0 {
				c.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			if skipped(a) {
				if tt == html.StartTagToken {
					c.skip++
				}
				continue
			}
			if c.skip > 0 {
				continue
			}
			href := ""
			if a == atom.A && hasAttr {
				href = attr(z, "href")
			}
			c.start(a, href)
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skipped(a) {
				if c.skip > 0 {
					c.skip--
				}
				continue
			}
			if c.skip == 0 {
				c.end(a)
			}
		}
	}
}

func skipped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript:
		return true
	}
	return false
}

// blocks are the elements that begin and end a line.
var blocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.H1: true, atom.H2: true, atom.H3: true,
	atom.H4: true, atom.H5: true, atom.H6: true, atom.Ul: true, atom.Ol: true,
	atom.Dl: true, atom.Dt: true, atom.Dd: true, atom.Table: true, atom.Tr: true,
	atom.Blockquote: true, atom.Pre: true, atom.Hr: true, atom.Section: true,
	atom.Article: true, atom.Header: true, atom.Footer: true, atom.Address: true,
	atom.Center: true, atom.Form: true, atom.Fieldset: true, atom.Body: true,
	atom.Main: true, atom.Nav: true, atom.Aside: true, atom.Caption: true,
}

// paragraphs are the blocks set apart by an empty line.
var paragraphs = map[atom.Atom]bool{
	atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true,
	atom.H5: true, atom.H6: true, atom.Table: true, atom.Blockquote: true,
	atom.Pre: true, atom.Ul: true, atom.Ol: true,
}

type converter struct {
	b     strings.Builder
	skip  int    // inside skipped elements
	pre   int    // inside pre
	space bool   // a space is pending before the next text
	href  string // of the open link
	ltext strings.Builder
}

func (c *converter) start(a atom.Atom, href string) {
	switch {
	case a == atom.Br:
		c.newline()
	case a == atom.Li:
		c.newline()
		c.b.WriteString("- ")
		c.space = false
	case a == atom.Td || a == atom.Th:
		c.space = c.b.Len() > 0 && !c.atLineStart()
	case a == atom.A:
		c.href = href
		c.ltext.Reset()
	case blocks[a]:
		if paragraphs[a] {
			c.paragraph()
		} else {
			c.newline()
		}
		if a == atom.Pre {
			c.pre++
		}
	}
}

func (c *converter) end(a atom.Atom) {
	switch {
	case a == atom.A:
		h := c.href
		c.href = ""
		if (strings.HasPrefix(h, "http://") || strings.HasPrefix(h, "https://")) && strings.TrimSpace(c.ltext.String()) != h {
			c.write(" (" + h + ")")
		}
	case blocks[a]:
		if a == atom.Pre && c.pre > 0 {
			c.pre--
		}
		if paragraphs[a] {
			c.paragraph()
		} else {
			c.newline()
		}
	}
}

// text writes a text token (entities are already decoded).
func (c *converter) text(s string) {
	if c.href != "" {
		c.ltext.WriteString(s)
	}
	if c.pre > 0 {
		c.b.WriteString(strings.ReplaceAll(s, "\r\n", "\n"))
		c.space = false
		return
	}
	if s == "" {
		return
	}
	lead := isSpace(s[0])
	trail := isSpace(s[len(s)-1])
	words := strings.Fields(s)
	if len(words) == 0 {
		c.space = c.space || lead
		return
	}
	if lead {
		c.space = true
	}
	c.write(strings.Join(words, " "))
	c.space = trail
}

func (c *converter) write(s string) {
	if c.space && !c.atLineStart() {
		c.b.WriteByte(' ')
	}
	c.space = false
	c.b.WriteString(s)
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' }

func (c *converter) atLineStart() bool {
	s := c.b.String()
	return s == "" || s[len(s)-1] == '\n'
}

// newline ends the current line, if it has text.
func (c *converter) newline() {
	c.space = false
	if !c.atLineStart() {
		c.b.WriteByte('\n')
	}
}

// paragraph ends the current line and leaves an empty one.
func (c *converter) paragraph() {
	c.newline()
	s := c.b.String()
	if s != "" && !strings.HasSuffix(s, "\n\n") {
		c.b.WriteByte('\n')
	}
}

// String is the text, each line without trailing space, with at most one
// empty line in a row and none at either end.
func (c *converter) String() string {
	lines := strings.Split(c.b.String(), "\n")
	out := make([]string, 0, len(lines))
	blank := true // drops leading empty lines
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\u00a0")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}

func attr(z *html.Tokenizer, key string) string {
	for {
		k, v, more := z.TagAttr()
		if string(k) == key {
			return strings.TrimSpace(string(v))
		}
		if !more {
			return ""
		}
	}
}
