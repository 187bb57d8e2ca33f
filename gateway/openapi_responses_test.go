package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Every answer a test in this package gets from the API is checked against openapi.json (the
// document the gateway embeds and serves): its status is documented for the operation, its
// content type is one the response lists, and a JSON body validates against the response's
// schema — read closed: an object schema that does not say otherwise takes no property it does
// not list, so a field added to a view struct and not to the document fails too. The API's view
// structs and the document cannot drift apart unnoticed.

// docURL names the document for the schema compiler; nothing is fetched from it.
const docURL = "https://quaycast.invalid/openapi.json"

// documentedResponse is one response of one operation.
type documentedResponse struct {
	mediaTypes []string           // none: no body
	schema     *jsonschema.Schema // of application/json, if documented
}

// apiDocument holds every documented response, by "METHOD /template" and status ("default" too).
type apiDocument struct {
	templates []string                                 // path templates, "/v1/endpoints/{id}"
	responses map[string]map[string]documentedResponse // "GET /v1/endpoints/{id}" -> status -> response
}

var loadAPIDocument = sync.OnceValues(func() (*apiDocument, error) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	tree, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	closeObjects(tree)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's schema dialect
	c.AssertFormat()
	if err := c.AddResource(docURL, tree); err != nil {
		return nil, err
	}
	type response struct {
		Ref     string                     `json:"$ref"`
		Content map[string]json.RawMessage `json:"content"`
	}
	out := &apiDocument{responses: map[string]map[string]documentedResponse{}}
	for path, item := range doc.Paths {
		out.templates = append(out.templates, path)
		for method, rawOp := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Responses map[string]response `json:"responses"`
			}
			if err := json.Unmarshal(rawOp, &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			key := strings.ToUpper(method) + " " + path
			out.responses[key] = map[string]documentedResponse{}
			for status, r := range op.Responses {
				at := "#/paths/" + jsonPointerToken(path) + "/" + method + "/responses/" + status
				if r.Ref != "" {
					name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
					if !ok || doc.Components.Responses[name] == nil {
						return nil, fmt.Errorf("%s %s: response %s: $ref %s does not resolve", method, path, status, r.Ref)
					}
					at = r.Ref
					r = response{}
					if err := json.Unmarshal(doc.Components.Responses[name], &r); err != nil {
						return nil, err
					}
				}
				var dr documentedResponse
				for mt, rawMedia := range r.Content {
					dr.mediaTypes = append(dr.mediaTypes, mt)
					var media struct {
						Schema json.RawMessage `json:"schema"`
					}
					if err := json.Unmarshal(rawMedia, &media); err != nil {
						return nil, err
					}
					if mt == "application/json" && media.Schema != nil {
						if dr.schema, err = c.Compile(docURL + at + "/content/" + jsonPointerToken(mt) + "/schema"); err != nil {
							return nil, fmt.Errorf("%s %s: response %s: %w", method, path, status, err)
						}
					}
				}
				out.responses[key][status] = dr
			}
		}
	}
	// Literal segments first: /v1/endpoints/x/test is the test operation, not a longer {id}.
	slices.SortFunc(out.templates, func(a, b string) int { return strings.Count(a, "{") - strings.Count(b, "{") })
	return out, nil
})

// closeObjects makes every object schema in the document that lists properties, and says
// nothing of others, refuse others (the document uses no allOf, which this would break).
func closeObjects(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, listed := v["properties"].(map[string]any); listed && v["type"] == "object" {
			if _, said := v["additionalProperties"]; !said {
				v["additionalProperties"] = false
			}
		}
		for _, c := range v {
			closeObjects(c)
		}
	case []any:
		for _, c := range v {
			closeObjects(c)
		}
	}
}

func jsonPointerToken(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }

// operation is the documented "METHOD /template" that method and path call, "" if none: an
// undocumented route answers the catch-all 404.
func (d *apiDocument) operation(method, path string) string {
	segs := strings.Split(path, "/")
	for _, tpl := range d.templates {
		tsegs := strings.Split(tpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		match := true
		for i, ts := range tsegs {
			if !(strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") && segs[i] != "") && ts != segs[i] {
				match = false
				break
			}
		}
		if key := method + " " + tpl; match && d.responses[key] != nil {
			return key
		}
	}
	return ""
}

// check reports how an answer differs from the document.
func (d *apiDocument) check(method, path string, status int, contentType string, body []byte) error {
	op := d.operation(method, path)
	if op == "" {
		return nil
	}
	r, ok := d.responses[op][strconv.Itoa(status)]
	if !ok {
		if r, ok = d.responses[op]["default"]; !ok {
			return fmt.Errorf("%s: status %d is not documented", op, status)
		}
	}
	if len(r.mediaTypes) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("%s: status %d is documented without a body, got %q", op, status, body)
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !slices.Contains(r.mediaTypes, mt) {
		return fmt.Errorf("%s: status %d: content type %q, documented %v", op, status, contentType, r.mediaTypes)
	}
	if mt != "application/json" || r.schema == nil {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: status %d: body is not JSON: %v", op, status, err)
	}
	if err := r.schema.Validate(v); err != nil {
		return fmt.Errorf("%s: status %d: body does not match the documented schema:\n%v", op, status, err)
	}
	return nil
}

// checkedTransport is an http.RoundTripper that fails t when an answer of the API does not
// match openapi.json (see above); next makes the requests.
type checkedTransport struct {
	t    testing.TB
	next http.RoundTripper
}

// checkedClient is an HTTP client whose answers are checked against openapi.json.
func checkedClient(t testing.TB, next http.RoundTripper) *http.Client {
	if next == nil {
		next = http.DefaultTransport
	}
	return &http.Client{Transport: checkedTransport{t: t, next: next}}
}

func (c checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil // the caller reads what came; there is nothing whole to check
	}
	doc, err := loadAPIDocument()
	if err != nil {
		c.t.Errorf("openapi.json: %v", err)
		return resp, nil
	}
	if err := doc.check(req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
		c.t.Errorf("%s %s answered %d, which openapi.json does not allow: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}

// The check itself: it passes a documented answer, and fails one that drifts — an undocumented
// status, a field of the wrong type, a missing required field, a body where none is documented.
func TestResponsesCheckedAgainstOpenAPI(t *testing.T) {
	t.Parallel()
	doc, err := loadAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	const errJSON = "application/json"
	tests := []struct {
		name, method, path string
		status             int
		ctype, body        string
		wantErr            bool
	}{
		{"health", "GET", "/healthz", 200, errJSON, `{"status":"ok"}`, false},
		{"error body", "GET", "/v1/endpoints/ep_x", 404, errJSON, `{"error":"id: no endpoint with this id","field":"id"}`, false},
		{"deleted", "DELETE", "/v1/endpoints/ep_x", 204, "", ``, false},
		{"undocumented route", "GET", "/v1/nothing", 404, errJSON, `{"error":"no route"}`, false},
		{"undocumented status", "GET", "/v1/endpoints", 418, errJSON, `{"error":"teapot"}`, true},
		{"error without its message", "GET", "/v1/endpoints/ep_x", 404, errJSON, `{"field":"id"}`, true},
		{"field of the wrong type", "GET", "/healthz", 200, errJSON, `{"status":1}`, true},
		{"body where none is documented", "DELETE", "/v1/endpoints/ep_x", 204, errJSON, `{}`, true},
		{"wrong content type", "GET", "/healthz", 200, "text/plain", `ok`, true},
		{"endpoint list of strings", "GET", "/v1/endpoints", 200, errJSON, `{"endpoints":["ep_x"]}`, true},
		{"undocumented field", "GET", "/healthz", 200, errJSON, `{"status":"ok","uptime":3}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := doc.check(tc.method, tc.path, tc.status, tc.ctype, []byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Errorf("check = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
