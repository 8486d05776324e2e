package loadgen

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTP mode's envelope: a server that loads with smtp-recipients must
// accept SMTPRecipient.
const (
	SMTPSender    = "loadgen@reflex.test"
	SMTPRecipient = "alerts@reflex.test"
)

// smtpMarkers are the subject markers of the severities, as the email
// adapter's built-in rules read them.
var smtpMarkers = map[string]string{
	"critical": "[CRITICAL]", "high": "[ERROR]", "medium": "[WARNING]", "low": "[LOW]", "info": "[INFO]",
}

// dialSMTP opens one SMTP session to target: each Send is one mail
// (MAIL, RCPT, DATA) on it, answered once the server stored it.
func dialSMTP(ctx context.Context, target string) (Sender, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	if err := c.Hello("loadgen.reflex.test"); err != nil {
		_ = c.Close()
		return nil, err
	}
	return &smtpSender{c: c, conn: conn}, nil
}

type smtpSender struct {
	c    *smtp.Client
	conn net.Conn
}

func (s *smtpSender) Send(ctx context.Context, m Message) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = s.conn.SetDeadline(dl.Add(30 * time.Second))
	}
	if err := s.c.Mail(SMTPSender, nil); err != nil {
		return s.reset(err)
	}
	if err := s.c.Rcpt(SMTPRecipient, nil); err != nil {
		return s.reset(err)
	}
	w, err := s.c.Data()
	if err != nil {
		return s.reset(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s <%s>\r\nTo: %s\r\nSubject: %s %s\r\nDate: %s\r\nMessage-ID: <%d@loadgen.reflex.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHost: %s\r\n%s\r\n",
		m.Source, SMTPSender, SMTPRecipient, smtpMarkers[m.Severity], m.Text, m.Time.Format(time.RFC1123Z), m.Seq, m.Host, m.Text)
	if _, err := w.Write([]byte(b.String())); err != nil {
		return err
	}
	return w.Close() // the server's reply to the message: 250 once stored
}

// reset ends a refused transaction so that the session can go on.
func (s *smtpSender) reset(err error) error {
	_ = s.c.Reset()
	return err
}

func (s *smtpSender) Close() error {
	_ = s.c.Quit()
	return s.c.Close()
}
