package gateway_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/quaycast/quaycast/gateway/signature"
)

// release2582dc1 describes testdata/release-2582dc1-data.tar.gz: a data dir written by the release
// before NATS was locked down (commit 2582dc1), with secrets in the clear and API tokens stored as
// plain SHA-256 hashes.
type release2582dc1 struct {
	AdminToken string `json:"admin_token"`
	Endpoints  []struct {
		ID, Profile, Secret string
		Previous            string `json:"previous_secret"`
	}
	Token struct{ ID, Token string }
}

// A data dir of the earlier release starts as it was: its API token still works (now bound), its
// endpoints' secrets are sealed in place and their clear revisions are gone from the bucket, and
// deliveries are signed with the same secrets. Starting again changes nothing more.
func TestUpgradeFromRelease2582dc1(t *testing.T) {
	t.Parallel()
	var rel release2582dc1
	b, err := os.ReadFile("testdata/release-2582dc1-data.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rel); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	untar(t, "testdata/release-2582dc1-data.tar.gz", cfg.DataDir)
	cfg.DataDir = filepath.Join(cfg.DataDir, "data")
	cfg.AdminToken = rel.AdminToken
	// The release's endpoints point at a closed port until the first round points them at a
	// receiver; an event sent before that edit reaches the gateway's watch is retried, never
	// stopped by the breaker.
	cfg.BreakerFailures = 1_000_000
	receivers := make([]*receiver, len(rel.Endpoints))
	for i := range receivers {
		receivers[i] = newReceiver(t)
	}

	for round := range 2 { // the second start finds nothing left to migrate
		g := startGateway(t, cfg)
		reader := asToken(g, rel.Token.Token)
		if err := reader.Do(t.Context(), "GET", "/v1/endpoints", nil, nil); err != nil {
			t.Fatalf("round %d: the earlier release's API token: %v", round, err)
		}
		kv := g.endpointsKV(t)
		for _, ep := range rel.Endpoints {
			hist, err := kv.History(t.Context(), ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range hist {
				if bytes.Contains(e.Value(), []byte(ep.Secret)) || ep.Previous != "" && bytes.Contains(e.Value(), []byte(ep.Previous)) {
					t.Errorf("round %d: endpoint %s revision %d holds its secret in the clear", round, ep.ID, e.Revision())
				}
			}
		}

		g.api.Token = rel.AdminToken
		for i, ep := range rel.Endpoints {
			rc := receivers[i]
			if round == 0 {
				if err := g.api.Do(t.Context(), "PATCH", "/v1/endpoints/"+ep.ID, map[string]any{"url": rc.URL}, nil); err != nil {
					t.Fatalf("point %s at a receiver: %v", ep.ID, err)
				}
			}
			typ := map[string]string{"standard": "cargo_loaded", "hub": "cargo_gated_in"}[ep.Profile]
			id := ep.ID + "-" + string(rune('a'+round))
			publishNATS(t, g, event(id, typ, "U1"))
			rc.waitCount(t, round+1)
			got := rc.accepted()[round]
			v := signature.Verifier{Profile: signature.Standard}
			if ep.Profile == "hub" {
				v = signature.Verifier{Profile: signature.Hub}
			}
			if err := v.Verify(got.Header, got.Body, ep.Secret); err != nil {
				t.Errorf("round %d: endpoint %d (%s) signed with another secret: %v", round, i, ep.Profile, err)
			}
		}
		g.Stop(t)
	}
}

// untar unpacks a .tar.gz into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o700)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(path, data, fs.FileMode(h.Mode)&0o600|0o600)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
