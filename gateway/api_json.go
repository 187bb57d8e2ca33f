package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/service"
)

// The API's JSON in and out: request bodies decoded strictly, answers and errors written one way,
// and the steps the handlers share around a service call.

// Whether an operation's body may be left out; then the operation gets the zero input.
const (
	bodyRequired = false
	bodyOptional = true
)

// callWithBody decodes the request's body into an In and calls op with it, the caller and the
// path's id. ok is false once it has answered an error: the body's or op's.
func callWithBody[In, Out any](a *api, w http.ResponseWriter, r *http.Request, optional bool, op func(context.Context, service.Caller, string, In) (Out, error)) (out Out, ok bool) {
	var in In
	if (!optional || r.ContentLength != 0) && !decodeJSON(w, r, &in) {
		return out, false
	}
	out, err := op(r.Context(), callerOf(r), r.PathValue("id"), in)
	if err != nil {
		a.fail(w, r, err)
		return out, false
	}
	return out, true
}

// callCreate decodes the request's body into an In and calls op with it and the caller, for a
// credential whose secret op returns this once. ok is false once it has answered an error.
func callCreate[In, R any](a *api, w http.ResponseWriter, r *http.Request, op func(context.Context, service.Caller, In) (string, R, error)) (secret string, rec R, ok bool) {
	var in In
	if !decodeJSON(w, r, &in) {
		return "", rec, false
	}
	secret, rec, err := op(r.Context(), callerOf(r), in)
	if err != nil {
		a.fail(w, r, err)
		return "", rec, false
	}
	return secret, rec, true
}

// deleted is the handler of an operation that deletes what the path's id names: 204, or its
// error.
func (a *api) deleted(op func(context.Context, service.Caller, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := op(r.Context(), callerOf(r), r.PathValue("id")); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// listed is the handler of an operation that lists: every item as view shows it, under key.
func listed[T, V any](a *api, key string, list func(context.Context, service.Caller) ([]T, error), view func(T) V) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items, err := list(r.Context(), callerOf(r))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := make([]V, len(items))
		for i, it := range items {
			out[i] = view(it)
		}
		writeJSON(w, http.StatusOK, map[string]any{key: out})
	}
}

// writePage answers one page of a list: its items under key, and the cursor of the next page
// if there is one.
func writePage(w http.ResponseWriter, key string, items any, next string) {
	resp := map[string]any{key: items}
	if next != "" {
		resp["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeJSON reads a bounded JSON object into v (a pointer to a struct with json tags),
// answering 400 naming the field when it cannot.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("larger than %d bytes", maxAPIBody))
		return false
	}
	if timedOut(err) {
		writeError(w, http.StatusRequestTimeout, "body", "not received in time")
		return false
	}
	var fields map[string]json.RawMessage
	if err != nil || json.Unmarshal(body, &fields) != nil || fields == nil {
		writeError(w, http.StatusBadRequest, "body", "not a JSON object")
		return false
	}
	if fe := checkFields(body, reflect.TypeOf(v), ""); fe != nil {
		writeError(w, http.StatusBadRequest, fe.Field, fe.Reason)
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			writeError(w, http.StatusBadRequest, typeErr.Field, "must be a JSON "+jsonKind(typeErr.Type))
			return false
		}
		writeError(w, http.StatusBadRequest, "body", "not a JSON object")
		return false
	}
	return true
}

// checkFields refuses, in a JSON value to be decoded into a t, object keys that name no field of
// its structs, at any depth, and strings that are not valid UTF-8, naming the field with its path
// ("signing.algo"). Values that do not fit t are left to the decoder, which names them too.
func checkFields(raw []byte, t reflect.Type, path string) *fielderr.Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.RawMessage]() || t.Kind() == reflect.String {
		// The decoder would turn invalid UTF-8 into U+FFFD: refuse it instead of storing that.
		if !utf8.Valid(raw) {
			return &fielderr.Error{Field: strings.TrimSuffix(path, "."), Reason: "must be valid UTF-8"}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return nil
		}
		byName := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			f, ok := byName[k]
			if !ok {
				return &fielderr.Error{Field: path + k, Reason: "unknown field"}
			}
			if fe := checkFields(fields[k], f.Type, path+k+"."); fe != nil {
				return fe
			}
		}
	case reflect.Map:
		var items map[string]json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for _, k := range slices.Sorted(maps.Keys(items)) {
			if fe := checkFields(items[k], t.Elem(), path+k+"."); fe != nil {
				return fe
			}
		}
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for i, it := range items {
			if fe := checkFields(it, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out[name] = f
	}
	return out
}

// timedOut reports a read that ended at its deadline.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// jsonKind names a Go type as the JSON a client should send.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "array of " + jsonKind(t.Elem()) + "s"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "number"
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// writeError is the one place that writes JSON errors.
func writeError(w http.ResponseWriter, status int, field, msg string) {
	if field != "" {
		msg = field + ": " + msg
	}
	writeJSON(w, status, errorBody{Error: msg, Field: field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
