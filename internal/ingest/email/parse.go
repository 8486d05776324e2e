package email

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes the usual charsets (ISO-8859-*, Windows-125x, KOI8, Shift_JIS ...)
	gomail "github.com/emersion/go-message/mail"
)

// Bounds of what a mail contributes to its event.
const (
	// MaxBodyBytes bounds the text of the event (description and message):
	// a longer text is cut, and body_truncated says so.
	MaxBodyBytes = 64 << 10
	// MaxParts is the most MIME parts read; the rest are ignored.
	MaxParts = 100
	// MaxDepth is the deepest nesting of multiparts read.
	MaxDepth = 8
	// MaxHeaders is the most extra headers kept in event_data.
	MaxHeaders = 32
	// maxHeaderValue bounds each header value kept, in bytes.
	maxHeaderValue = 1000
	// maxAddresses bounds the addresses kept of a To or Cc header.
	maxAddresses = 50
	// maxHeaderBytes bounds the header of the message and of each part.
	maxHeaderBytes = 256 << 10
)

// ErrParse is wrapped by Parse's errors: the message has no readable
// header.
var ErrParse = errors.New("email: cannot parse message")

// Mail is what Parse reads from a message.
type Mail struct {
	From      string   `json:"from,omitempty"`
	To        []string `json:"to,omitempty"`
	Cc        []string `json:"cc,omitempty"`
	Subject   string   `json:"subject,omitempty"`
	MessageID string   `json:"message_id,omitempty"`
	// Date is the Date header as sent.
	Date string `json:"date,omitempty"`
	// Headers are the headers kept beside those above: the ones in
	// keptHeaders, then X-* headers, up to MaxHeaders, by canonical name
	// (the first value of a repeated header).
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the text: the first text/plain part, or else the first
	// text/html part converted to text, decoded to UTF-8.
	Body string `json:"body,omitempty"`
	// BodyType is the content type Body came from.
	BodyType      string `json:"body_type,omitempty"`
	BodyTruncated bool   `json:"body_truncated,omitempty"`
	// Attachments lists the parts that are not the text (they are not
	// kept).
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Attachment is a part of a mail that the event lists but does not keep.
type Attachment struct {
	Name string `json:"name,omitempty"`
	Type string `json:"type"`
	// Size is the decoded size in bytes.
	Size int64 `json:"size"`
}

// keptHeaders are the headers kept in Mail.Headers before any X-* one.
var keptHeaders = []string{"Reply-To", "Sender", "In-Reply-To", "References", "Importance", "Priority", "Auto-Submitted", "Precedence", "User-Agent"}

// skippedHeaders are X-* headers that say nothing about the alert.
var skippedHeaders = []string{"X-Received", "X-Google-Dkim-Signature", "X-Gm-Message-State", "X-Google-Smtp-Source", "X-Ms-Exchange-Organization-Authas"}

// Parse reads a mail: its addresses, subject, id and date, its selected
// headers, its text and the list of its other parts. It is lenient: a
// part it cannot decode (an unknown charset or transfer encoding) is read
// as it is, a malformed address is kept as text, and a broken multipart
// ends the walk with what was read so far. It fails only when the message
// has no header (ErrParse).
func Parse(raw []byte) (*Mail, error) { return ParseReader(bytes.NewReader(raw)) }

// ParseReader is Parse reading the message from r, as it goes: the
// attachments are counted, not kept, so that the memory it takes is
// bounded by the text kept, whatever the message's size. It may leave the
// end of r unread.
func ParseReader(r io.Reader) (*Mail, error) {
	e, err := message.ReadWithOptions(r, &message.ReadOptions{MaxHeaderBytes: maxHeaderBytes})
	if err != nil && e == nil {
		return nil, fmt.Errorf("%w: %w", ErrParse, err)
	}
	if e == nil || e.Header.Len() == 0 {
		return nil, fmt.Errorf("%w: no header", ErrParse)
	}
	h := gomail.Header{Header: e.Header}
	m := &Mail{
		From:      addresses(h, "From", 1).first(),
		To:        addresses(h, "To", maxAddresses),
		Cc:        addresses(h, "Cc", maxAddresses),
		Subject:   headerText(h, "Subject"),
		MessageID: strings.Trim(clip(text(h.Get("Message-Id")), maxHeaderValue), "<> \t"),
		Date:      clip(text(strings.TrimSpace(h.Get("Date"))), 200),
	}
	m.Headers = keptHeaderValues(h)

	w := walker{mail: m}
	w.walk(e, 0)
	if m.Body == "" && w.html != "" {
		m.Body, m.BodyType = w.html, "text/html"
	}
	if len(m.Body) > MaxBodyBytes {
		m.Body = cutUTF8(m.Body, MaxBodyBytes)
		m.BodyTruncated = true
	}
	m.Body = strings.TrimRight(m.Body, " \t\r\n")
	return m, nil
}

type addrList []string

func (l addrList) first() string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// addresses reads an address header: each address as "Name <addr>" or
// addr, or the header's decoded text when it does not parse.
func addresses(h gomail.Header, key string, n int) addrList {
	if h.Get(key) == "" {
		return nil
	}
	list, err := h.AddressList(key)
	if err != nil || len(list) == 0 {
		if s := headerText(h, key); s != "" {
			return addrList{s}
		}
		return nil
	}
	out := make(addrList, 0, min(len(list), n))
	for _, a := range list[:min(len(list), n)] {
		s := a.Address
		if a.Name != "" {
			s = a.Name + " <" + a.Address + ">"
		}
		out = append(out, clip(text(s), maxHeaderValue))
	}
	return out
}

// headerText is a header's value with its encoded words decoded (or as
// sent when they do not decode), made valid UTF-8, unfolded and cut.
func headerText(h gomail.Header, key string) string {
	v, err := h.Text(key)
	if err != nil {
		v = h.Get(key)
	}
	return clip(strings.Join(strings.Fields(text(v)), " "), maxHeaderValue)
}

func keptHeaderValues(h gomail.Header) map[string]string {
	out := make(map[string]string)
	for _, k := range keptHeaders {
		if v := headerText(h, k); v != "" {
			out[k] = v
		}
	}
	fields := h.Fields()
	for fields.Next() && len(out) < MaxHeaders {
		k := headerName(fields.Key())
		if !strings.HasPrefix(k, "X-") || slices.Contains(skippedHeaders, k) {
			continue
		}
		if _, ok := out[k]; ok {
			continue
		}
		if v := headerText(h, k); v != "" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// headerName canonicalizes a header name ("x-priority" is X-Priority),
// keeping only printable ASCII.
func headerName(k string) string {
	k = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || r == ':' {
			return -1
		}
		return r
	}, k)
	return clip(textproto.CanonicalMIMEHeaderKey(k), 100)
}

// walker collects the text and the attachments of a message's parts.
type walker struct {
	mail  *Mail
	html  string // the first text/html part, as text
	parts int
}

func (w *walker) walk(e *message.Entity, depth int) {
	w.parts++
	if mr := e.MultipartReader(); mr != nil {
		if depth >= MaxDepth {
			return
		}
		for w.parts < MaxParts {
			p, err := mr.NextPart()
			if err != nil && (p == nil || !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
				return // io.EOF, or a broken multipart: keep what was read
			}
			w.walk(p, depth+1)
		}
		return
	}
	w.leaf(e)
}

// leaf reads one part that is not a multipart.
func (w *walker) leaf(e *message.Entity) {
	ct, params, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	disp, dparams, _ := e.Header.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	attachment := disp == "attachment" || name != "" && disp != "inline"
	isText := !attachment && (ct == "text/plain" || ct == "text/html")
	if isText && ct == "text/plain" && w.mail.Body == "" {
		b, _ := readText(e.Body)
		w.mail.Body, w.mail.BodyType = normalizeNewlines(b), "text/plain"
		return
	}
	if isText && ct == "text/html" && w.html == "" {
		b, _ := readText(e.Body)
		w.html = HTMLToText(b)
		return
	}
	if isText {
		_, _ = io.Copy(io.Discard, e.Body)
		return
	}
	n, _ := io.Copy(io.Discard, e.Body)
	if name != "" {
		if d, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
			name = d
		}
	}
	w.mail.Attachments = append(w.mail.Attachments, Attachment{
		Name: clip(strings.Join(strings.Fields(text(name)), " "), 255),
		Type: clip(text(ct), 100),
		Size: n,
	})
}

// readText reads a part's decoded body, at most twice MaxBodyBytes (HTML
// shrinks when converted); a read error keeps what was read.
func readText(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4*MaxBodyBytes))
	_, _ = io.Copy(io.Discard, r)
	return text(string(b)), err
}

// normalizeNewlines turns CRLF and lone CR into LF.
func normalizeNewlines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// text makes s valid UTF-8 without NUL bytes, storable in every column.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutUTF8(s, n)
}

func cutUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
