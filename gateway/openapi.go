package gateway

import (
	_ "embed"
	"net/http"
)

// openAPI is the API's OpenAPI 3 document. Tests hold it and the router to the same routes and
// scopes, and every answer the API tests get to its response schemas (openapi_responses_test.go).
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
