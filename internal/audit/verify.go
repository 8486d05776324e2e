package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Kind is what is wrong with a record, as Verify names it.
type Kind string

// The problems Verify names.
const (
	// KindChanged: the record's hash does not match its content: a field
	// was changed, or the record was forged in its place.
	KindChanged Kind = "changed"
	// KindRemoved: records are missing: a gap in the sequence, a record
	// renumbered into the place of removed ones, or a record chained to
	// another one than the record before it.
	KindRemoved Kind = "removed"
	// KindInserted: an extra record that does not belong to the chain:
	// the original records continue after it (renumbered), it is a copy
	// of an earlier record, or it claims to follow the record before it
	// under a wrong number.
	KindInserted Kind = "inserted"
	// KindReordered: authentic records stored in the wrong order (their
	// numbers exchanged).
	KindReordered Kind = "reordered"
	// KindWrongKey: the records were made with another key than the one
	// given (their key id says which).
	KindWrongKey Kind = "wrong_key"
	// KindTruncated: a noted head is not in the log: the log ends before
	// it, or holds another record under its number (the newest records
	// were removed, and maybe others appended in their place).
	KindTruncated Kind = "truncated"
)

// Problem is the first bad record Verify found.
type Problem struct {
	// Seq is the number of the bad record (for KindRemoved and
	// KindTruncated, the first missing one).
	Seq    int64  `json:"seq"`
	Kind   Kind   `json:"kind"`
	Detail string `json:"detail"`
}

// Report is the outcome of Verify.
type Report struct {
	// Records is how many records verified, in order from record 1,
	// before the first problem (all of them when there is none).
	Records int `json:"records"`
	// Head is the last record that verified (Seq 0 and Genesis when
	// none did).
	Head Head `json:"head"`
	// FirstBad is the first problem, nil when the log verified.
	FirstBad *Problem `json:"first_bad,omitempty"`
}

// OK reports whether the log verified.
func (r Report) OK() bool { return r.FirstBad == nil }

// String says in one line whether the log verified and, when not, names
// the first bad record: "audit log: record 5 removed: records 5 to 5
// are missing (the next stored record is 6); 4 records verified before
// it".
func (r Report) String() string {
	if r.FirstBad == nil {
		if r.Records == 0 {
			return "audit log verified: empty"
		}
		return fmt.Sprintf("audit log verified: %d records, head %s", r.Records, r.Head)
	}
	p := r.FirstBad
	return fmt.Sprintf("audit log: record %d %s: %s; %d records verified before it", p.Seq, strings.ReplaceAll(string(p.Kind), "_", " "), p.Detail, r.Records)
}

// verifyPage is how many records Verify reads at a time: its memory is
// one page, whatever the size of the log.
const verifyPage = 500

// maxShift bounds how far Verify looks, around the first record that
// does not authenticate, for where it came from (records renumbered,
// reordered or inserted): that many numbers either side and that many
// records ahead.
const maxShift = 64

// Verify walks the whole log in Seq order, a page at a time, recomputes
// every record's hash with key and checks the chain: record 1 follows
// Genesis, each next record has the next number and the previous
// record's hash. It stops at the first problem and names it in the
// report: a record changed (its hash does not match), removed (a gap, or
// a renumbered record), inserted (an extra record), reordered, or made
// with another key. Each Head in noted (an operator's earlier Log.Head)
// must be in the log as it was noted; otherwise the newest records were
// removed (KindTruncated), which the log by itself cannot show. The
// error is for a log that could not be read, not for a bad one.
func Verify(ctx context.Context, rd Reader, key Key, noted ...Head) (Report, error) {
	if !key.Valid() {
		return Report{}, errors.New("audit: verify: no key")
	}
	v := verifier{rd: rd, key: key, want: map[int64]string{}}
	var last Head
	for _, h := range noted {
		v.want[h.Seq] = strings.ToLower(h.Hash)
		if h.Seq > last.Seq {
			last = h
		}
	}
	rep := Report{Head: Head{Hash: Genesis}}
	var after int64
	for {
		page, err := rd.AuditRecords(ctx, after, verifyPage)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: read records after %d: %w", after, err)
		}
		for _, r := range page {
			p, err := v.check(ctx, rep.Head, r)
			if err != nil {
				return rep, err
			}
			if p != nil {
				rep.FirstBad = p
				return rep, nil
			}
			rep.Records++
			rep.Head = Head{Seq: r.Seq, Hash: r.Hash}
		}
		if len(page) < verifyPage {
			break
		}
		after = page[len(page)-1].Seq
	}
	if last.Seq > rep.Head.Seq {
		rep.FirstBad = &Problem{Seq: rep.Head.Seq + 1, Kind: KindTruncated, Detail: fmt.Sprintf(
			"the log ends at record %d but record %d was noted (hash %s): %s removed",
			rep.Head.Seq, last.Seq, short(last.Hash), span(rep.Head.Seq+1, last.Seq, "was", "were"))}
	}
	return rep, nil
}

type verifier struct {
	rd   Reader
	key  Key
	want map[int64]string // noted heads: seq to hash
}

// check returns the problem of r, which comes after prev (the last record
// that verified), or nil.
func (v *verifier) check(ctx context.Context, prev Head, r Record) (*Problem, error) {
	expected := prev.Seq + 1
	ok := v.key.authentic(r)
	switch {
	case r.Seq < expected:
		return &Problem{Seq: r.Seq, Kind: KindInserted, Detail: fmt.Sprintf("record %d is out of sequence after record %d", r.Seq, prev.Seq)}, nil
	case r.Seq > expected:
		if !ok && r.PrevHash == prev.Hash {
			return &Problem{Seq: r.Seq, Kind: KindInserted, Detail: fmt.Sprintf(
				"record %d does not authenticate and claims to follow record %d: it was forged", r.Seq, prev.Seq)}, nil
		}
		return &Problem{Seq: expected, Kind: KindRemoved, Detail: fmt.Sprintf(
			"%s missing (the next stored record is %d)", span(expected, r.Seq-1, "is", "are"), r.Seq)}, nil
	case !ok:
		return v.classify(ctx, prev, r)
	case r.PrevHash != prev.Hash:
		return &Problem{Seq: r.Seq, Kind: KindRemoved, Detail: fmt.Sprintf(
			"it was chained to a record %d with hash %s, not to the stored one (%s): records before it were removed or replaced",
			prev.Seq, short(r.PrevHash), short(prev.Hash))}, nil
	}
	if h, noted := v.want[r.Seq]; noted && h != r.Hash {
		return &Problem{Seq: r.Seq, Kind: KindTruncated, Detail: fmt.Sprintf(
			"record %d is not the one noted (hash %s, noted %s): the records from %d on were removed and others appended in their place",
			r.Seq, short(r.Hash), short(h), r.Seq)}, nil
	}
	return nil, nil
}

// classify names the problem of r, which has the expected number but does
// not authenticate, from the records around it.
func (v *verifier) classify(ctx context.Context, prev Head, r Record) (*Problem, error) {
	ahead, err := v.rd.AuditRecords(ctx, r.Seq, maxShift)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: read records after %d: %w", r.Seq, err)
	}
	if r.KeyID != v.key.ID() && (len(ahead) == 0 || ahead[0].KeyID == r.KeyID) {
		return &Problem{Seq: r.Seq, Kind: KindWrongKey, Detail: fmt.Sprintf(
			"the record was made with key %s, not with this key (%s): verify with the key the log was written with",
			r.KeyID, v.key.ID())}, nil
	}
	if t := v.origin(r); t != 0 {
		if t < r.Seq {
			return &Problem{Seq: r.Seq, Kind: KindInserted, Detail: fmt.Sprintf(
				"it is a copy of record %d under another number", t)}, nil
		}
		for _, a := range ahead {
			if v.origin(a) == r.Seq {
				return &Problem{Seq: r.Seq, Kind: KindReordered, Detail: fmt.Sprintf(
					"it holds what was written as record %d, and record %d holds what was written as record %d", t, a.Seq, r.Seq)}, nil
			}
		}
		return &Problem{Seq: r.Seq, Kind: KindRemoved, Detail: fmt.Sprintf(
			"it holds what was written as record %d: %s removed and the later ones renumbered", t, span(r.Seq, t-1, "was", "were"))}, nil
	}
	for _, a := range ahead {
		if a.PrevHash == prev.Hash && v.authenticAs(a, r.Seq) {
			return &Problem{Seq: r.Seq, Kind: KindInserted, Detail: fmt.Sprintf(
				"%s not belong to the chain: record %d holds what was written as record %d", span(r.Seq, a.Seq-1, "does", "do"), a.Seq, r.Seq)}, nil
		}
	}
	if len(ahead) == 0 {
		return &Problem{Seq: r.Seq, Kind: KindChanged, Detail: "its hash does not match its content: the newest record was changed, or forged and appended"}, nil
	}
	return &Problem{Seq: r.Seq, Kind: KindChanged, Detail: "its hash does not match its content: it was changed, or forged in its place"}, nil
}

// origin is the number, within maxShift of its own, under which r
// authenticates (it was written under that number and moved), or 0.
func (v *verifier) origin(r Record) int64 {
	for d := int64(1); d <= maxShift; d++ {
		if v.authenticAs(r, r.Seq+d) {
			return r.Seq + d
		}
		if r.Seq-d >= 1 && v.authenticAs(r, r.Seq-d) {
			return r.Seq - d
		}
	}
	return 0
}

// authenticAs reports whether r authenticates when numbered seq.
func (v *verifier) authenticAs(r Record, seq int64) bool {
	r.Seq = seq
	return v.key.authentic(r)
}

// span is "record a <one>" or "records a to b <many>".
func span(a, b int64, one, many string) string {
	if a == b {
		return fmt.Sprintf("record %d %s", a, one)
	}
	return fmt.Sprintf("records %d to %d %s", a, b, many)
}

// short is the start of a hash, enough to tell hashes apart in a message.
func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}
