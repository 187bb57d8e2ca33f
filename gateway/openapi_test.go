package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/service"
)

// The OpenAPI document (openapi.json, embedded as openAPI) is written by hand; these tests hold it
// to the router: the same routes, each documented well enough to be usable.

// openAPIDoc is the part of an OpenAPI 3.1 document the tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"` // path -> method (or "parameters", ...) -> object
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type openAPIOperation struct {
	OperationID   string                     `json:"operationId"`
	Summary       string                     `json:"summary"`
	Parameters    []openAPIParam             `json:"parameters"`
	Responses     map[string]json.RawMessage `json:"responses"`
	Security      *[]map[string][]string     `json:"security"`
	RequiredScope *string                    `json:"x-required-scope"`
}

// openAPIMethods are the keys of a path item that are operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// parseOpenAPI reads the embedded document, failing the test if it is not valid JSON, has a
// duplicated key anywhere (encoding/json would silently keep the last), or is not OpenAPI 3.1.
func parseOpenAPI(t *testing.T) (openAPIDoc, any) {
	t.Helper()
	if !json.Valid(openAPI) {
		t.Fatal("openapi.json is not valid JSON")
	}
	if err := checkNoDuplicateKeys(openAPI); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var tree any
	if err := json.Unmarshal(openAPI, &tree); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi.json: openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("openapi.json: info.title (%q) and info.version (%q) are required", doc.Info.Title, doc.Info.Version)
	}
	return doc, tree
}

// checkNoDuplicateKeys reports the first object key that appears twice in the JSON document b.
func checkNoDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				if seen[key] {
					return fmt.Errorf("key %q appears twice in %s", key, path)
				}
				seen[key] = true
				if err := walk(path + "/" + jsonPointerEscape(key)); err != nil {
					return err
				}
			}
			_, err = dec.Token() // '}'
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(path + "/" + strconv.Itoa(i)); err != nil {
					return err
				}
			}
			_, err = dec.Token() // ']'
			return err
		}
		return nil
	}
	if err := walk("#"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the document")
	}
	return nil
}

// jsonPointerEscape escapes a key as a JSON pointer token: "~" as "~0", "/" as "~1".
func jsonPointerEscape(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}

// documentedRoute is one operation of the document as a router pattern, "GET /v1/endpoints/{id}".
type documentedRoute struct {
	pattern string
	path    string
	op      openAPIOperation
}

func documentedRoutes(t *testing.T, doc openAPIDoc) []documentedRoute {
	t.Helper()
	var out []documentedRoute
	for path, item := range doc.Paths {
		for key, raw := range item {
			if !slices.Contains(openAPIMethods, key) {
				continue // parameters, summary, description, servers
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("openapi.json: %s %s: %v", key, path, err)
				continue
			}
			out = append(out, documentedRoute{pattern: strings.ToUpper(key) + " " + path, path: path, op: op})
		}
	}
	slices.SortFunc(out, func(a, b documentedRoute) int { return strings.Compare(a.pattern, b.pattern) })
	return out
}

// openAPIPattern turns a ServeMux pattern into "METHOD /openapi/path": "{id...}" becomes "{id}",
// and the "{$}" end anchor is dropped.
func openAPIPattern(pattern string) (string, error) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("route %q: want \"METHOD /path\"", pattern)
	}
	path = strings.TrimSuffix(path, "{$}")
	path = strings.ReplaceAll(path, "...}", "}")
	return method + " " + path, nil
}

func routeScopes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rt := range (&api{metrics: newMetrics()}).routeTable() {
		p, err := openAPIPattern(rt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[p]; dup {
			t.Fatalf("routeTable() has %s twice", p)
		}
		out[p] = rt.scope()
	}
	return out
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc, _ := parseOpenAPI(t)
	routes := routeScopes(t)
	documented := map[string]bool{}
	for _, d := range documentedRoutes(t, doc) {
		documented[d.pattern] = true
	}
	var undocumented, unrouted []string
	for p := range routes {
		if !documented[p] {
			undocumented = append(undocumented, p)
		}
	}
	for p := range documented {
		if _, ok := routes[p]; !ok {
			unrouted = append(unrouted, p)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unrouted)
	if len(undocumented)+len(unrouted) > 0 {
		var b strings.Builder
		b.WriteString("openapi.json and routeTable() differ:")
		if len(undocumented) > 0 {
			b.WriteString("\n  in routeTable() but missing from openapi.json:\n    " + strings.Join(undocumented, "\n    "))
		}
		if len(unrouted) > 0 {
			b.WriteString("\n  in openapi.json but not in routeTable():\n    " + strings.Join(unrouted, "\n    "))
		}
		t.Error(b.String())
	}
}

func TestOpenAPIOperations(t *testing.T) {
	t.Parallel()
	doc, tree := parseOpenAPI(t)
	routes := routeScopes(t)
	if _, ok := doc.Components.SecuritySchemes["bearerAuth"]; !ok {
		t.Error("openapi.json: components.securitySchemes has no bearerAuth")
	}
	ids := map[string]string{} // operationId -> route
	for _, d := range documentedRoutes(t, doc) {
		op := d.op
		switch prev, dup := ids[op.OperationID]; {
		case op.OperationID == "":
			t.Errorf("%s: no operationId", d.pattern)
		case dup:
			t.Errorf("%s: operationId %q is also the one of %s", d.pattern, op.OperationID, prev)
		default:
			ids[op.OperationID] = d.pattern
		}
		if op.Summary == "" {
			t.Errorf("%s: no summary", d.pattern)
		}
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses", d.pattern)
		}
		for code := range op.Responses {
			if n, err := strconv.Atoi(code); (err != nil || n < 100 || n > 599) && code != "default" {
				t.Errorf("%s: response %q is not an HTTP status", d.pattern, code)
			}
		}

		// Security: open routes say so with security: []; the others need bearerAuth and name
		// the scope routeTable() gives them.
		scope, routed := routes[d.pattern]
		switch {
		case !routed: // reported by TestOpenAPIMatchesRoutes
		case op.Security == nil:
			t.Errorf("%s: no security (want [] for an open route, [{bearerAuth: []}] otherwise)", d.pattern)
		case scope == scopeNone:
			if len(*op.Security) != 0 || op.RequiredScope != nil {
				t.Errorf("%s: open in routeTable(), but the document asks for security %v / x-required-scope", d.pattern, *op.Security)
			}
		default:
			if len(*op.Security) != 1 || (*op.Security)[0]["bearerAuth"] == nil {
				t.Errorf("%s: security = %v, want [{bearerAuth: []}]", d.pattern, *op.Security)
			}
			if op.RequiredScope == nil || *op.RequiredScope != scope {
				got := "none"
				if op.RequiredScope != nil {
					got = strconv.Quote(*op.RequiredScope)
				}
				t.Errorf("%s: x-required-scope is %s, routeTable() requires %q", d.pattern, got, scope)
			}
			for _, code := range []string{"401", "403"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s: needs a token but documents no %s", d.pattern, code)
				}
			}
		}

		// Path parameters: each {name} of the template declared (in: path, required), none more.
		inTemplate := map[string]bool{}
		for _, m := range regexp.MustCompile(`\{([^{}]+)\}`).FindAllStringSubmatch(d.path, -1) {
			inTemplate[m[1]] = true
		}
		declared := map[string]bool{}
		params := append(pathItemParams(t, doc, d.path), op.Parameters...)
		for _, p := range params {
			if p.Ref != "" {
				target, err := resolveRef(tree, p.Ref)
				if err != nil {
					continue // reported by TestOpenAPIRefsResolve
				}
				b, _ := json.Marshal(target)
				p = openAPIParam{}
				_ = json.Unmarshal(b, &p)
			}
			if p.In != "path" {
				continue
			}
			declared[p.Name] = true
			if !inTemplate[p.Name] {
				t.Errorf("%s: declares path parameter %q, which is not in the path", d.pattern, p.Name)
			}
			if !p.Required {
				t.Errorf("%s: path parameter %q must be required: true", d.pattern, p.Name)
			}
		}
		for name := range inTemplate {
			if !declared[name] {
				t.Errorf("%s: path parameter {%s} is not declared", d.pattern, name)
			}
		}
	}
}

// pathItemParams are the parameters a path item declares for all its operations.
func pathItemParams(t *testing.T, doc openAPIDoc, path string) []openAPIParam {
	t.Helper()
	raw, ok := doc.Paths[path]["parameters"]
	if !ok {
		return nil
	}
	var ps []openAPIParam
	if err := json.Unmarshal(raw, &ps); err != nil {
		t.Errorf("openapi.json: %s parameters: %v", path, err)
	}
	return ps
}

func TestOpenAPIRefsResolve(t *testing.T) {
	t.Parallel()
	doc, tree := parseOpenAPI(t)
	if len(doc.Components.Schemas) == 0 {
		t.Error("openapi.json: components.schemas is empty")
	}
	var bad []string
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				if !strings.HasPrefix(r, "#/components/") {
					bad = append(bad, fmt.Sprintf("%s: $ref %q is not into #/components/", at, r))
				} else if _, err := resolveRef(tree, r); err != nil {
					bad = append(bad, fmt.Sprintf("%s: $ref %q: %v", at, r, err))
				}
			}
			for k, c := range v {
				walk(c, at+"/"+jsonPointerEscape(k))
			}
		case []any:
			for i, c := range v {
				walk(c, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(tree, "#")
	slices.Sort(bad)
	if len(bad) > 0 {
		t.Errorf("openapi.json has %d $ref that do not resolve:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
}

// resolveRef follows a local JSON pointer ref, "#/components/schemas/Endpoint", in tree.
func resolveRef(tree any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, errors.New("not a local reference")
	}
	cur := tree
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q is not inside an object", tok)
		}
		if cur, ok = obj[tok]; !ok {
			return nil, fmt.Errorf("no %q", tok)
		}
	}
	return cur, nil
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	serveOpenAPI(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || !bytes.Equal(rec.Body.Bytes(), openAPI) {
		t.Errorf("GET /v1/openapi.json = %d %q, %d bytes; want 200 application/json, the document", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

// The schemas of what the API reads and shows list exactly the JSON fields of the Go types behind
// them, so a field added to either is documented and served.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	t.Parallel()
	doc, _ := parseOpenAPI(t)
	tests := []struct {
		schema string
		v      any
	}{
		{"Endpoint", endpointView{}},
		{"EndpointInput", service.EndpointInput{}},
		{"EndpointPatch", service.EndpointInput{}}, // but secret and tenant, refused on PATCH: see below
		{"SigningInput", service.SigningInput{}},
		{"Signing", signingView{}},
		{"LayoutInput", service.LayoutInput{}},
		{"Layout", layoutView{}},
		{"BodyInput", service.BodyInput{}},
		{"EventTypeInput", service.EventTypeInput{}},
		{"EventType", eventTypeView{}},
		{"Body", bodyView{}},
		{"Attempt", Attempt{}},
		{"AttemptRequest", AttemptRequest{}},
		{"AttemptResponse", AttemptResponse{}},
		{"Alert", Alert{}},
		{"DisplayField", DisplayField{}},
		{"Stuck", consumer.Stuck{}},
		{"BreakerStatus", BreakerStatus{}},
		{"Token", tokenView{}},
		{"TokenInput", service.TokenInput{}},
		{"Publisher", publisherView{}},
		{"PublisherInput", service.PublisherInput{}},
		{"RotateInput", service.RotateInput{}},
		{"TestSendInput", service.TestInput{}},
		{"ReplayInput", service.ReplayInput{}},
		{"Published", Published{}},
		{"Error", errorBody{}},
		{"PortalLinkInput", service.PortalLinkInput{}},
		{"PortalLink", portalLinkView{}},
	}
	for _, tc := range tests {
		t.Run(tc.schema, func(t *testing.T) {
			var schema struct {
				Properties map[string]json.RawMessage `json:"properties"`
			}
			if err := json.Unmarshal(doc.Components.Schemas[tc.schema], &schema); err != nil {
				t.Fatal(err)
			}
			inType := map[string]bool{}
			for name := range jsonFields(reflect.TypeOf(tc.v)) {
				if name != "" && name != "-" && !(tc.schema == "EndpointPatch" && (name == "secret" || name == "tenant")) {
					inType[name] = true
				}
			}
			for name := range inType {
				if _, ok := schema.Properties[name]; !ok {
					t.Errorf("%T has field %q, which the schema does not document", tc.v, name)
				}
			}
			for name := range schema.Properties {
				if !inType[name] {
					t.Errorf("the schema documents %q, which %T does not have", name, tc.v)
				}
			}
		})
	}
}
