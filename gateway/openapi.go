package gateway

import (
	_ "embed"
	"net/http"
)

// openAPI is the API's OpenAPI 3 document; a test holds it and the router to the same routes.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
