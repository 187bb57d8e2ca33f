package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/service"
)

// A request body trickled slower than the API's read timeout does not hold a connection: the
// server answers 408 and closes it, on every route that reads a body.
func TestTrickledBodyIsCutOff(t *testing.T) {
	t.Parallel()
	a := &api{svc: service.New(service.Deps{}), metrics: newMetrics(), log: zerolog.New(zerolog.NewTestWriter(t)), readTimeout: 200 * time.Millisecond}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(srv.Close)

	for _, path := range []string{"/v1/endpoints", "/v1/events"} {
		t.Run(strings.TrimPrefix(path, "/v1/"), func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: quaycast\r\nContent-Type: application/json\r\nContent-Length: 600\r\n\r\n{"); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() { // one byte every 100 ms: a minute for the whole body
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			// Wait, with a deadline, for the server to answer and close the connection.
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer before the connection was closed or the 20 s wait ended: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"field": "body"`) {
				t.Errorf("answer %d %s, want 408 naming the body", resp.StatusCode, body)
			}
			_, err = br.ReadByte()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection is still open after 20 s")
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
				t.Errorf("after the answer: %v, want the connection closed", err)
			}
		})
	}
}
