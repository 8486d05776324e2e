package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// decodeJSON reads a small JSON request body into dst strictly: the
// Content-Type must be JSON (or absent), unknown fields and trailing data
// are errors, and the body is limited to maxBytes bytes (413).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64) *fieldError {
	if ct := r.Header.Get("Content-Type"); strings.TrimSpace(ct) != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &fieldError{status: http.StatusUnsupportedMediaType, field: "Content-Type",
				msg: fmt.Sprintf("unsupported media type %q: want application/json", clip(ct, 100))}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, maxBytes)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return jsonError(err, maxBytes)
		}
		return &fieldError{msg: "the body must hold one JSON object and nothing after it"}
	}
	return nil
}

// jsonError converts an error of json.Decoder into a client error that
// names the field at fault when it can.
func jsonError(err error, maxBytes int64) *fieldError {
	var (
		syntax    *json.SyntaxError
		typ       *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		unknownFx = "json: unknown field "
	)
	switch {
	case errors.As(err, &tooLarge):
		return &fieldError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body larger than %d bytes", maxBytes)}
	case isReadTimeout(err):
		return &fieldError{status: http.StatusRequestTimeout, msg: readTimeoutMsg}
	case errors.Is(err, io.EOF):
		return &fieldError{msg: "empty body: want a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &fieldError{msg: "invalid JSON: unexpected end of the body"}
	case errors.As(err, &syntax):
		return &fieldError{msg: fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax)}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &fieldError{msg: fmt.Sprintf("the body must be a JSON object, not %s", typ.Value)}
		}
		return badField(typ.Field, "must be %s, not %s", jsonType(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), unknownFx):
		name := strings.Trim(strings.TrimPrefix(err.Error(), unknownFx), `"`)
		return badField(clip(name, 60), "unknown field")
	}
	return &fieldError{msg: "invalid JSON: " + err.Error()}
}

// jsonType names a Go kind the way a JSON user would.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	}
	return "of another type"
}
