package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"time"

	"github.com/quaycast/quaycast/gateway/signature"
)

// verifyCmd checks a saved webhook request against a secret, as a receiver would.
type verifyCmd struct {
	Request   string        `name:"request" short:"r" help:"A saved raw HTTP request: request line, headers, blank line, body (- for stdin)." xor:"input"`
	Headers   string        `name:"headers" help:"A file of 'Name: value' header lines (with --body)." xor:"input"`
	Body      string        `name:"body" help:"The raw body, exactly as received (with --headers)."`
	Secret    string        `name:"secret" env:"QUAYCAST_VERIFY_SECRET" required:"" help:"The endpoint's secret."`
	Previous  []string      `name:"previous-secret" help:"Another secret that may have signed (during a rotation)."`
	Profile   string        `name:"profile" default:"standard" enum:"standard,hub,hex" help:"Signing profile."`
	SigHeader string        `name:"signature-header" help:"hub and hex: the signature header."`
	Tolerance time.Duration `name:"tolerance" default:"5m" help:"standard: how far the timestamp may be from now."`
	At        int64         `name:"at" help:"standard: check the timestamp against this Unix time instead of now (a request saved earlier)."`
}

func (c *verifyCmd) Run() error {
	h, body, err := c.read()
	if err != nil {
		return err
	}
	v := signature.Verifier{Profile: signature.Profile(c.Profile), Options: signature.Options{HeaderName: c.SigHeader}, Tolerance: c.Tolerance}
	if c.At != 0 {
		v.Now = func() time.Time { return time.Unix(c.At, 0) }
	}
	if err := v.Verify(h, body, append([]string{c.Secret}, c.Previous...)...); err != nil {
		return fmt.Errorf("invalid (%s): %w", signature.Reason(err), err)
	}
	fmt.Printf("valid: %d-byte body, %s profile\n", len(body), c.Profile)
	return nil
}

// read loads the headers and raw body of the saved request.
func (c *verifyCmd) read() (http.Header, []byte, error) {
	if c.Request != "" {
		raw, err := readInput(c.Request)
		if err != nil {
			return nil, nil, err
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return nil, nil, fmt.Errorf("--request: not an HTTP request: %w", err)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, nil, fmt.Errorf("--request: body: %w", err)
		}
		return req.Header, body, nil
	}
	if c.Headers == "" || c.Body == "" {
		return nil, nil, errors.New("give --request, or --headers and --body")
	}
	hb, err := readInput(c.Headers)
	if err != nil {
		return nil, nil, err
	}
	mh, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.TrimRight(hb, "\r\n"), "\r\n\r\n"...)))).ReadMIMEHeader()
	if err != nil {
		return nil, nil, fmt.Errorf("--headers: %w", err)
	}
	body, err := readInput(c.Body)
	return http.Header(mh), body, err
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
