package signature_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/quaycast/quaycast/gateway/signature"
)

// A receiver checks a delivery before acting on it: read the raw body (never
// a re-encoded copy), verify it with the endpoint's secret(s), and answer 401
// on failure. Reason gives a stable category for logs.
func ExampleVerifier_Verify() {
	// The endpoint's secret, shared with the receiver when the endpoint was
	// created. During a rotation the receiver passes the new and the old one.
	secret, err := signature.NewSecret(signature.Standard)
	if err != nil {
		panic(err)
	}

	verifier := signature.Verifier{Profile: signature.Standard}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := verifier.Verify(r.Header, body, secret); err != nil {
			http.Error(w, signature.Reason(err), http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "accepted")
	})

	// What quaycast sends: the gateway side of the same exchange.
	signer, err := signature.NewSigner(signature.Standard, signature.Options{}, secret)
	if err != nil {
		panic(err)
	}
	// deliver signs signed and puts received on the wire.
	deliver := func(signed, received []byte) {
		req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(received))
		signer.SetHeaders(req.Header, "msg_2uQb5n0mR7VYx3kL9pTcW1eZ8dA", time.Now().Unix(), signed)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}

	body := []byte(`{"type":"cargo.gated_in","data":{"container":"MSCU1234565"}}`)
	deliver(body, body)
	deliver(body, append(body, '\n')) // body changed in transit

	// Output:
	// 200 accepted
	// 401 signature_mismatch
}
