package email

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHTMLToText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain text", "hello", "hello"},
		{"entities", "a &amp; b &lt;c&gt; &quot;d&quot; &#233;&eacute; &nbsp;x", `a & b <c> "d" éé x`},
		{"whitespace collapses", "<p>a\n   b\t\tc</p>", "a b c"},
		{"br and paragraphs", "<p>one<br>two</p><p>three</p>", "one\ntwo\n\nthree"},
		{"divs make lines", "<div>a</div><div>b</div>", "a\nb"},
		{"script and style dropped", "<style>x{}</style><script>var a = '<p>';</script>text<noscript>no</noscript>", "text"},
		{"head and title dropped", "<html><head><title>T</title></head><body>B</body></html>", "B"},
		{"list items", "<ul><li>a</li><li>b</li></ul>", "- a\n- b"},
		{"table rows", "<table><tr><td>k</td><td>v</td></tr><tr><td>k2</td><td>v2</td></tr></table>", "k v\nk2 v2"},
		{"pre keeps spaces", "<pre>a  b\n  c</pre>", "a  b\n  c"},
		{"link address", `<a href="https://x.example/d">Open</a>`, "Open (https://x.example/d)"},
		{"link whose text is the address", `<a href="https://x.example/">https://x.example/</a>`, "https://x.example/"},
		{"javascript link not shown", `<a href="javascript:alert(1)">x</a>`, "x"},
		{"unclosed tags", "<p>a<b>b<i>c", "abc"},
		{"comments dropped", "a<!-- <p>hidden</p> -->b", "ab"},
		{"inline elements keep spaces", "<b>bold</b> <i>it</i>", "bold it"},
		{"blank lines collapse", "<p></p><p></p><p>x</p><br><br><br><p>y</p>", "x\n\ny"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, HTMLToText(tc.in))
		})
	}
}

func TestParseBounds(t *testing.T) {
	t.Run("nesting deeper than MaxDepth is not read", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Subject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n")
		for i := range 50 {
			fmt.Fprintf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i, i+1)
		}
		b.WriteString("--b50\nContent-Type: text/plain\n\ndeep text\n")
		m, err := Parse([]byte(b.String()))
		require.NoError(t, err)
		require.Equal(t, "deep", m.Subject)
		require.Empty(t, m.Body)
	})
	t.Run("parts beyond MaxParts are not read", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Subject: many\nContent-Type: multipart/mixed; boundary=b\n\n")
		for i := range 2 * MaxParts {
			fmt.Fprintf(&b, "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=f%d\n\nx\n", i)
		}
		b.WriteString("--b--\n")
		m, err := Parse([]byte(b.String()))
		require.NoError(t, err)
		require.Len(t, m.Attachments, MaxParts-1, "the multipart itself counts as a part")
	})
	t.Run("long text is cut", func(t *testing.T) {
		m, err := Parse([]byte("Subject: long\n\n" + strings.Repeat("é", MaxBodyBytes)))
		require.NoError(t, err)
		require.True(t, m.BodyTruncated)
		require.LessOrEqual(t, len(m.Body), MaxBodyBytes)
		require.True(t, strings.HasSuffix(m.Body, "é"), "cut on a rune boundary")
	})
	t.Run("headers are bounded", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Subject: hdrs\n")
		for i := range 100 {
			fmt.Fprintf(&b, "X-H%d: %s\n", i, strings.Repeat("v", 2*maxHeaderValue))
		}
		b.WriteString("\nbody\n")
		m, err := Parse([]byte(b.String()))
		require.NoError(t, err)
		require.Len(t, m.Headers, MaxHeaders)
		for _, v := range m.Headers {
			require.LessOrEqual(t, len(v), maxHeaderValue)
		}
	})
}

func TestParseLeniency(t *testing.T) {
	t.Run("unknown charset is read as it is", func(t *testing.T) {
		m, err := Parse([]byte("Subject: x\nContent-Type: text/plain; charset=x-unknown\n\nHost: a-1\xff\n"))
		require.NoError(t, err)
		require.Equal(t, "Host: a-1\uFFFD", m.Body)
	})
	t.Run("unknown transfer encoding is read as it is", func(t *testing.T) {
		m, err := Parse([]byte("Subject: x\nContent-Transfer-Encoding: x-rot13\n\nuryyb\n"))
		require.NoError(t, err)
		require.Equal(t, "uryyb", m.Body)
	})
	t.Run("broken multipart keeps what was read", func(t *testing.T) {
		m, err := Parse([]byte("Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n--b\nbroken header line\n"))
		require.NoError(t, err)
		require.Equal(t, "first", m.Body)
	})
	t.Run("malformed addresses are kept as text", func(t *testing.T) {
		m, err := Parse([]byte("From: not an address\nTo: <<>>\nSubject: s\n\nb\n"))
		require.NoError(t, err)
		require.Equal(t, "not an address", m.From)
		require.Equal(t, []string{"<<>>"}, m.To)
	})
	t.Run("encoded attachment names and CRLF", func(t *testing.T) {
		m, err := Parse([]byte("Subject: =?UTF-8?B?w6l0w6k=?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"=?UTF-8?Q?caf=C3=A9.png?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n"))
		require.NoError(t, err)
		require.Equal(t, "été", m.Subject)
		require.Equal(t, "line 1\nline 2", m.Body)
		require.Equal(t, []Attachment{{Name: "café.png", Type: "image/png", Size: 8}}, m.Attachments)
	})
	t.Run("NUL bytes are dropped", func(t *testing.T) {
		m, err := Parse([]byte("Subject: a\x00b\n\nc\x00d\n"))
		require.NoError(t, err)
		require.Equal(t, "ab", m.Subject)
		require.Equal(t, "cd", m.Body)
	})
	t.Run("no header", func(t *testing.T) {
		_, err := Parse(nil)
		require.ErrorIs(t, err, ErrParse)
	})
}
