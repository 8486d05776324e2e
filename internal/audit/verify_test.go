package audit_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
)

// countingReader records the limits Verify reads with.
type countingReader struct {
	audit.Reader
	limits []int
}

func (c *countingReader) AuditRecords(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	c.limits = append(c.limits, limit)
	return c.Reader.AuditRecords(ctx, after, limit)
}

// TestVerifyPages: a log longer than a page is read a page at a time,
// and a problem is found across a page boundary.
func TestVerifyPages(t *testing.T) {
	m := &memStore{}
	l := newLog(t, m, testKey)
	fill(t, l, 1203)
	cr := &countingReader{Reader: m}
	rep, err := audit.Verify(t.Context(), cr, testKey)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, 1203, rep.Records)
	require.Equal(t, int64(1203), rep.Head.Seq)
	require.Len(t, cr.limits, 3)
	for _, n := range cr.limits {
		require.LessOrEqual(t, n, 500)
	}

	// A forged record inserted at the end of the first page, the original
	// ones renumbered: the original record 500 is on the next page.
	orig := append([]audit.Record(nil), m.records...)
	forged := orig[499]
	forged.Subject = "forged"
	m.records = append(append(append([]audit.Record(nil), orig[:499]...), forged), orig[499:]...)
	for i := 500; i < len(m.records); i++ {
		m.records[i].Seq++
	}
	rep, err = audit.Verify(t.Context(), m, testKey)
	require.NoError(t, err)
	require.Equal(t, &audit.Problem{Seq: 500, Kind: audit.KindInserted,
		Detail: "record 500 does not belong to the chain: record 501 holds what was written as record 500"}, rep.FirstBad)
	require.Equal(t, 499, rep.Records)
	require.Equal(t, "audit log: record 500 inserted: record 500 does not belong to the chain: record 501 holds what was written as record 500; 499 records verified before it",
		rep.String())

	// A change on the third page.
	m.records = append([]audit.Record(nil), orig...)
	m.records[1100].Actor = "someone"
	rep, err = audit.Verify(t.Context(), m, testKey)
	require.NoError(t, err)
	require.Equal(t, int64(1101), rep.FirstBad.Seq)
	require.Equal(t, audit.KindChanged, rep.FirstBad.Kind)
}

func TestVerifyNeedsKey(t *testing.T) {
	_, err := audit.Verify(t.Context(), &memStore{}, audit.Key{})
	require.Error(t, err)
}

func TestVerifyNotedHeadOfEmptyLog(t *testing.T) {
	rep, err := audit.Verify(t.Context(), &memStore{}, testKey, audit.Head{Seq: 3, Hash: audit.Genesis})
	require.NoError(t, err)
	require.Equal(t, audit.KindTruncated, rep.FirstBad.Kind)
	require.Equal(t, int64(1), rep.FirstBad.Seq)
}

func TestParseHead(t *testing.T) {
	h := audit.Head{Seq: 42, Hash: "ab" + audit.Genesis[2:]}
	got, err := audit.ParseHead(" " + h.String() + "\n")
	require.NoError(t, err)
	require.Equal(t, h, got)
	got, err = audit.ParseHead("42:AB" + audit.Genesis[2:])
	require.NoError(t, err)
	require.Equal(t, h, got, "hex in any case")
	for _, s := range []string{"", "42", "42:", "x:" + audit.Genesis, "0:" + audit.Genesis, "42:" + audit.Genesis[1:], "42:g" + audit.Genesis[1:]} {
		_, err := audit.ParseHead(s)
		require.Error(t, err, s)
	}
}
