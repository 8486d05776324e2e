// Package sqlstore is the SQL layer that the sqlite and postgres stores
// share: every table's column lists, the scan function of each row type,
// the filter builder and every query are written here once, in one SQL
// that both databases accept, with ? placeholders. What differs between
// SQLite and PostgreSQL (placeholders, schema-qualified names, the
// encoding of times, arrays and JSON, array membership, case-insensitive
// search) is held by Dialect. How a batch reaches the disk (the SQLite
// single writer with its urgent lane and multi-row inserts, PostgreSQL's
// COPY into daily partitions) stays in each store's package, fed by the
// rows Encode makes here.
package sqlstore

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// Dialect is what differs between the SQL of SQLite and PostgreSQL. The
// two values SQLite and Postgres are the only ones.
type Dialect struct {
	// Name prefixes errors: "sqlite", "postgres".
	Name string
	pg   bool
}

// The two dialects.
var (
	SQLite   = &Dialect{Name: "sqlite"}
	Postgres = &Dialect{Name: "postgres", pg: true}
)

// Table is the name of table in schema as the dialect spells it:
// PostgreSQL qualifies it with the seed's schema (events.raw_events);
// SQLite, with one schema, does not.
func (d *Dialect) Table(schema, table string) string {
	if d.pg {
		return schema + "." + table
	}
	return table
}

// Rebind rewrites the ? placeholders of q as the dialect wants them: $1,
// $2 ... for PostgreSQL. Queries of this package hold no ? in literals.
func (d *Dialect) Rebind(q string) string {
	if !d.pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Time is the stored value of a time column: unix microseconds in SQLite
// (INTEGER), a timestamptz in PostgreSQL, cleaned (store.CleanTime).
func (d *Dialect) Time(t time.Time) any {
	t = store.CleanTime(t)
	if d.pg {
		return t
	}
	return t.UnixMicro()
}

// NullTime is Time, with the zero time stored as NULL.
func (d *Dialect) NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.Time(t)
}

// Strings is the stored value of a text array (each element cleaned and
// cut to maxLen when maxLen > 0): a JSON array in SQLite, TEXT[] in
// PostgreSQL. Empty is an empty array, never NULL.
func (d *Dialect) Strings(ss []string, maxLen int) any {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = store.CleanText(s, maxLen)
	}
	if d.pg {
		return out
	}
	b, _ := json.Marshal(out) // strings always encode
	return string(b)
}

// NullStrings is Strings, with an empty list stored as NULL.
func (d *Dialect) NullStrings(ss []string, maxLen int) any {
	if len(ss) == 0 {
		return nil
	}
	return d.Strings(ss, maxLen)
}

// Ints is the stored value of a BIGINT[] column, or of the argument of
// InList: a JSON array in SQLite, int8[] in PostgreSQL. Nil is NULL.
func (d *Dialect) Ints(ids []int64) any {
	if ids == nil {
		return nil
	}
	if d.pg {
		return ids
	}
	var b strings.Builder
	b.Grow(len(ids)*17 + 2)
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// JSON is the stored value of a JSON document that is valid already
// (store.CleanJSON): TEXT in SQLite, JSONB in PostgreSQL. Nil is NULL.
func (d *Dialect) JSON(b []byte) any {
	if b == nil {
		return nil
	}
	if d.pg {
		return json.RawMessage(b)
	}
	return string(b)
}

// StringsDest is a scan destination for a column written by Strings. A
// stored value that cannot be decoded sets *bad rather than failing the
// scan, so that the row can be skipped as unreadable.
func (d *Dialect) StringsDest(p *[]string, bad *error) any {
	if d.pg {
		return p
	}
	return jsonDest[[]string]{p, bad}
}

// IntsDest is a scan destination for a column written by Ints; bad as
// for StringsDest.
func (d *Dialect) IntsDest(p *[]int64, bad *error) any {
	if d.pg {
		return p
	}
	return jsonDest[[]int64]{p, bad}
}

// InList is a condition that col is one of the ids of one argument made
// by Ints.
func (d *Dialect) InList(col string) string {
	if d.pg {
		return col + " = ANY(?)"
	}
	return col + " IN (SELECT value FROM json_each(?))"
}

// ArrayHas is a condition that the array column col holds the value of
// one argument.
func (d *Dialect) ArrayHas(col string) string {
	if d.pg {
		return "? = ANY(" + col + ")"
	}
	return "EXISTS (SELECT 1 FROM json_each(" + col + ") WHERE value = ?)"
}

// Len is the length of the array column col (NULL for NULL).
func (d *Dialect) Len(col string) string {
	if d.pg {
		return "cardinality(" + col + ")"
	}
	return "json_array_length(" + col + ")"
}

// Greatest is the larger of the expressions a and b, ignoring NULLs (a
// NULL only when both are).
func (d *Dialect) Greatest(a, b string) string {
	if d.pg {
		return "GREATEST(" + a + ", " + b + ")"
	}
	return "CASE WHEN " + b + " IS NULL OR (" + a + " IS NOT NULL AND " + a + " >= " + b + ") THEN " + a + " ELSE " + b + " END"
}

// Binary orders a text expression by bytes, whatever the database's
// collation.
func (d *Dialect) Binary(expr string) string {
	if d.pg {
		return "(" + expr + `) COLLATE "C"`
	}
	return expr // SQLite's default collation is BINARY
}

// HourOf is the first instant of the UTC hour of the time column col, as
// a value of the column's type (Time reads it).
func (d *Dialect) HourOf(col string) string {
	if d.pg {
		return "date_trunc('hour', " + col + ")" // sessions are in UTC
	}
	const h = 3600 * 1000000
	// Floored also before 1970.
	return "(" + col + " - (((" + col + " % " + strconv.Itoa(h) + ") + " + strconv.Itoa(h) + ") % " + strconv.Itoa(h) + "))"
}

// FloorTime is the first instant of the bucket of width every (whole
// seconds, positive) that holds the time column col, buckets starting at
// multiples of every since the Unix epoch, as a value of the column's type
// (Time reads it).
func (d *Dialect) FloorTime(col string, every time.Duration) string {
	if d.pg {
		s := strconv.FormatInt(int64(every/time.Second), 10)
		return "to_timestamp(floor(extract(epoch from " + col + ") / " + s + ") * " + s + ")"
	}
	u := strconv.FormatInt(every.Microseconds(), 10)
	// Floored also before 1970.
	return "(" + col + " - (((" + col + " % " + u + ") + " + u + ") % " + u + "))"
}

// JSONText is the text of the member at path (keys from the root) of the
// JSON column col: a string as it is, a number as its decimal text, NULL
// when absent. The keys are constants of this package, never input.
func (d *Dialect) JSONText(col string, path ...string) string {
	if d.pg {
		expr := col
		for i, k := range path {
			op := "->"
			if i == len(path)-1 {
				op = "->>"
			}
			expr += op + "'" + k + "'"
		}
		return "(" + expr + ")"
	}
	return "CAST(json_extract(" + col + ", '$." + strings.Join(path, ".") + "') AS TEXT)"
}

// ContainsFold adds to w the condition that one of cols holds text,
// case-insensitively (Unicode-aware in both).
func (d *Dialect) ContainsFold(w *Where, text string, cols ...string) {
	var conds []string
	switch {
	case d.pg:
		p := "%" + escapeLike(text) + "%"
		for _, c := range cols {
			conds = append(conds, c+` ILIKE ? ESCAPE '\'`)
			w.args = append(w.args, p)
		}
	case isASCII(text):
		// SQLite's LIKE folds ASCII case, which is all an ASCII needle needs.
		p := "%" + escapeLike(text) + "%"
		for _, c := range cols {
			conds = append(conds, c+` LIKE ? ESCAPE '\'`)
			w.args = append(w.args, p)
		}
	default:
		// reflex_icontains is registered by the sqlite package.
		n := strings.ToLower(text)
		for _, c := range cols {
			conds = append(conds, "reflex_icontains("+c+", ?)")
			w.args = append(w.args, n)
		}
	}
	w.conds = append(w.conds, "("+strings.Join(conds, " OR ")+")")
}

// InsertSQL is a multi-row INSERT of n rows of cols into table that skips
// rows whose key is stored already (a replay).
func (d *Dialect) InsertSQL(table string, cols []string, n int) string {
	return d.ValuesSQL(table, cols, n) + " ON CONFLICT DO NOTHING"
}

// ValuesSQL is a multi-row INSERT of n rows of cols into table, rebound,
// for the caller to end (with an ON CONFLICT clause, RETURNING ...).
func (d *Dialect) ValuesSQL(table string, cols []string, n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	return d.Rebind("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", n), ", "))
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
