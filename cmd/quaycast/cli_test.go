package main

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// parse parses args with the CLI's grammar, in-process, without running the command.
func parse(t *testing.T, args ...string) (*kong.Context, error) {
	t.Helper()
	parser, err := newParser(&cli{}, kong.Exit(func(code int) { t.Fatalf("kong exited with %d for %q", code, args) }))
	if err != nil {
		t.Fatal(err)
	}
	return parser.Parse(args)
}

// bodyOf parses args and returns the API body the selected endpoint command would send.
func bodyOf(t *testing.T, args ...string) (map[string]any, error) {
	t.Helper()
	k, err := parse(t, args...)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	cmd, ok := k.Selected().Target.Addr().Interface().(interface {
		body() (map[string]any, error)
	})
	if !ok {
		t.Fatalf("%s has no body method", k.Selected().Path())
	}
	return cmd.body()
}

// openAPISchema returns a schema of gateway/openapi.json's components, $refs resolved on use.
type openAPISchema struct {
	Ref        string                    `json:"$ref"`
	Properties map[string]*openAPISchema `json:"properties"`
}

func loadSchemas(t *testing.T) map[string]*openAPISchema {
	t.Helper()
	raw, err := os.ReadFile("../../gateway/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]*openAPISchema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas
}

func resolve(schemas map[string]*openAPISchema, s *openAPISchema) *openAPISchema {
	for s != nil && s.Ref != "" {
		s = schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s
}

// fieldPaths lists the fields of an object schema, descending into objects with properties of
// their own (signing.profile); a map such as headers is one field.
func fieldPaths(schemas map[string]*openAPISchema, s *openAPISchema, prefix string) []string {
	var out []string
	for name, p := range resolve(schemas, s).Properties {
		if sub := resolve(schemas, p); sub != nil && len(sub.Properties) > 0 {
			out = append(out, fieldPaths(schemas, sub, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	sort.Strings(out)
	return out
}

// bodyFields lists the fields of a request body the way fieldPaths lists a schema's, with their
// values as JSON decodes them.
func bodyFields(schemas map[string]*openAPISchema, s *openAPISchema, body map[string]any, prefix string, out map[string]any) {
	props := resolve(schemas, s).Properties
	for name, v := range body {
		sub := resolve(schemas, props[name])
		if m, ok := v.(map[string]any); ok && sub != nil && len(sub.Properties) > 0 {
			bodyFields(schemas, sub, m, prefix+name+".", out)
			continue
		}
		out[prefix+name] = v
	}
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// commandNode finds a command in the CLI's model.
func commandNode(t *testing.T, path ...string) *kong.Node {
	t.Helper()
	parser, err := newParser(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	node := parser.Model.Node
	for _, name := range path {
		var next *kong.Node
		for _, c := range node.Children {
			if c.Name == name {
				next = c
			}
		}
		if next == nil {
			t.Fatalf("no command %q", path)
		}
		node = next
	}
	return node
}

// sampleArgs sets one flag to a value other than its default.
func sampleArgs(f *kong.Flag) []string {
	switch {
	case f.IsBool():
		return []string{"--" + f.Name}
	case f.Enum != "":
		for _, v := range f.EnumSlice() {
			if v != "" && v != f.Default {
				return []string{"--" + f.Name, v}
			}
		}
	}
	return []string{"--" + f.Name + "=X-Sample=1"}
}

// Every field of the API's endpoint input has a flag on `endpoints add`, and every field of its
// patch one on `endpoints edit`: each flag is set alone (beside the required ones), and together
// they must put every field of the OpenAPI schema into the body — so a field added to the API
// later fails here until the CLI can send it.
func TestEndpointFlagsCoverTheAPI(t *testing.T) {
	t.Parallel()
	schemas := loadSchemas(t)
	for _, tc := range []struct {
		cmd    []string
		schema string
	}{
		{[]string{"endpoints", "add"}, "EndpointInput"},
		{[]string{"endpoints", "edit"}, "EndpointPatch"},
	} {
		t.Run(strings.Join(tc.cmd, "-"), func(t *testing.T) {
			t.Parallel()
			schema := schemas[tc.schema]
			if schema == nil {
				t.Fatalf("no schema %s in gateway/openapi.json", tc.schema)
			}
			want := fieldPaths(schemas, schema, "")
			if len(want) < 5 {
				t.Fatalf("%s has only the fields %v: the walk is wrong", tc.schema, want)
			}

			// The command's node, its required flags and positional arguments.
			node := commandNode(t, tc.cmd...)
			base := slices.Clone(tc.cmd)
			for range node.Positional {
				base = append(base, "ep_sample")
			}
			var optional []*kong.Flag
			for _, f := range node.Flags {
				switch {
				case f.Name == "api" || f.Name == "token" || f.Name == "help":
				case f.Required:
					base = append(base, "--"+f.Name, "sample")
				default:
					optional = append(optional, f)
				}
			}

			// A flag sets a field when the field gets a value that is not empty and not what it
			// is without the flag (--profile sends the whole signing object: only its profile
			// counts).
			got := map[string][]string{} // field -> the flags that set it
			fields := func(args []string) map[string]any {
				body, err := bodyOf(t, args...)
				if err != nil {
					t.Fatalf("%q: %v", args, err)
				}
				raw, _ := json.Marshal(body)
				var decoded map[string]any
				if err := json.Unmarshal(raw, &decoded); err != nil {
					t.Fatal(err)
				}
				out := map[string]any{}
				bodyFields(schemas, schema, decoded, "", out)
				return out
			}
			baseline := fields(base)
			for p := range baseline {
				got[p] = append(got[p], "(required)")
			}
			for _, f := range optional {
				for p, v := range fields(append(slices.Clone(base), sampleArgs(f)...)) {
					if !isZero(v) && !reflect.DeepEqual(v, baseline[p]) {
						got[p] = append(got[p], "--"+f.Name)
					}
				}
			}
			for _, field := range want {
				if len(got[field]) == 0 {
					t.Errorf("%s: no flag of `quaycast %s` sets %q", tc.schema, strings.Join(tc.cmd, " "), field)
				}
			}
			for field, flags := range got {
				if !slices.Contains(want, field) {
					t.Errorf("%v send %q, which %s does not have", flags, field, tc.schema)
				}
			}
		})
	}
}

// --header is repeatable and takes its value as it is: no split at ';' or ','.
func TestHeaderFlag(t *testing.T) {
	t.Parallel()
	body, err := bodyOf(t, "endpoints", "add", "--url", "https://x.example/h", "--types", "*",
		"--header", "X-A=1;X-B=2", "--header", "X-C=a,b", "--header", "X-Eq=k=v")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"X-A": "1;X-B=2", "X-C": "a,b", "X-Eq": "k=v"}
	if !reflect.DeepEqual(body["headers"], want) {
		t.Errorf("headers %v, want %v", body["headers"], want)
	}
	for _, bad := range []string{"X-A", "=1"} {
		if _, err := bodyOf(t, "endpoints", "add", "--url", "https://x.example/h", "--types", "*", "--header", bad); err == nil || !strings.Contains(err.Error(), "--header") {
			t.Errorf("--header %q: %v, want an error naming --header", bad, err)
		}
	}
	if _, err := bodyOf(t, "endpoints", "add", "--url", "https://x.example/h", "--types", "*", "--header", "X-A=1", "--header", "x-a=2"); err == nil {
		t.Error("the same header twice (ignoring case): no error")
	}
}

// endpoints edit sends only what its flags name.
func TestEndpointsEditSendsOnlyTheFlagsGiven(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `{}`},
		{[]string{"--disable"}, `{"enabled":false}`},
		{[]string{"--enable", "--reply-format", "alerts"}, `{"enabled":true,"reply_format":"alerts"}`},
		{[]string{"--description", ""}, `{"description":""}`},
		{[]string{"--disable", "--clear-headers", "--reply-format", ""}, `{"enabled":false,"headers":{},"reply_format":""}`},
		{[]string{"--clear-headers"}, `{"headers":{}}`},
		{[]string{"--header", "X-Tenant=acme"}, `{"headers":{"X-Tenant":"acme"}}`},
		{[]string{"--profile", "hub"}, `{"signing":{"header_name":"","hex_case":"","profile":"hub"}}`},
		{[]string{"--types", "cargo_loaded,group:gate"}, `{"event_types":["cargo_loaded","group:gate"]}`},
		{[]string{"--condition", `entity.startsWith("MSCU")`}, `{"condition":"entity.startsWith(\"MSCU\")"}`},
		{[]string{"--condition", ""}, `{"condition":""}`},
	} {
		body, err := bodyOf(t, append([]string{"endpoints", "edit", "ep_x"}, tc.args...)...)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if got, _ := json.Marshal(body); string(got) != tc.want {
			t.Errorf("%q: body %s, want %s", tc.args, got, tc.want)
		}
	}
	if _, err := parse(t, "endpoints", "edit", "ep_x", "--enable", "--disable"); err == nil {
		t.Error("--enable with --disable: no error")
	}
}
