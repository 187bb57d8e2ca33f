package tokens_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/seal"
	"github.com/quaycast/quaycast/tokens"
)

func newStore(t *testing.T, key *seal.Key) (*tokens.Store, jetstream.KeyValue) {
	t.Helper()
	_, js := natstest.ConnectJetStream(t, natstest.Start(t))
	s, err := tokens.New(t.Context(), js, 1, key)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), tokens.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return s, kv
}

func testKey(t *testing.T) *seal.Key {
	t.Helper()
	k, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A token is checked by its secret, which the bucket never holds; revoked, it is refused.
func TestCreateCheckRevoke(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, kv := newStore(t, testKey(t))
	secret, tok, err := s.Create(ctx, "reader", []string{"endpoints:read"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Check(ctx, secret)
	if err != nil || got.ID != tok.ID || got.Name != "reader" || !got.Has("endpoints:read") || got.Has("endpoints:write") {
		t.Fatalf("Check(new token) = %+v, %v; want %s with endpoints:read only", got, err, tok.ID)
	}
	entry, err := kv.Get(ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(strings.TrimPrefix(secret, "qct_"), "_")
	if bytes.Contains(entry.Value(), []byte(sec)) {
		t.Error("the bucket holds the token's secret")
	}

	wrong := secret[:len(secret)-1] + "x"
	if secret[len(secret)-1] == 'x' {
		wrong = secret[:len(secret)-1] + "y"
	}
	for _, bad := range []string{"", "qct_", "qct_short_x", strings.Replace(secret, "qct_", "qcp_", 1), wrong,
		"qct_00112233445566778899_" + sec} {
		if _, err := s.Check(ctx, bad); !errors.Is(err, tokens.ErrInvalid) {
			t.Errorf("Check(%q) = %v, want ErrInvalid", bad, err)
		}
	}

	if err := s.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, secret); !errors.Is(err, tokens.ErrInvalid) {
		t.Errorf("Check(revoked) = %v, want ErrInvalid", err)
	}
	if err := s.Revoke(ctx, tok.ID); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("Revoke(revoked) = %v, want ErrNotFound", err)
	}
}

// A record edited in the bucket (one more scope) no longer verifies: Check refuses it and List
// marks it forged; the others are listed oldest first.
func TestEditedRecordIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, kv := newStore(t, testKey(t))
	secret, first, err := s.Create(ctx, "first", []string{"endpoints:read"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, "second", []string{"endpoints:write"}); err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	widened := bytes.Replace(entry.Value(), []byte(`["endpoints:read"]`), []byte(`["endpoints:read","endpoints:delete"]`), 1)
	if _, err := kv.Put(ctx, first.ID, widened); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, secret); !errors.Is(err, tokens.ErrInvalid) {
		t.Errorf("Check(edited) = %v, want ErrInvalid", err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "first" || list[1].Name != "second" || !list[0].Forged || list[1].Forged {
		t.Errorf("List = %+v, want first (forged) then second", list)
	}
}

// Records an earlier release stored unbound are bound once, and keep working; a record carrying a
// binding that does not verify stays refused.
func TestBindAll(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, kv := newStore(t, testKey(t))
	const secret = "c2VjcmV0LW9mLWFuLWVhcmxpZXItcmVsZWFzZQ"
	sum := sha256.Sum256([]byte(secret))
	put := func(id, binding string) {
		t.Helper()
		b, _ := json.Marshal(tokens.Token{ID: id, Name: id, Scopes: []string{"endpoints:read"}, CreatedAt: time.Now().UTC(), Hash: hex.EncodeToString(sum[:]), Binding: binding})
		if _, err := kv.Put(ctx, id, b); err != nil {
			t.Fatal(err)
		}
	}
	put("tok_00112233445566778899", "")
	put("tok_99887766554433221100", "Zm9yZ2Vk")

	if _, err := s.Check(ctx, "qct_00112233445566778899_"+secret); !errors.Is(err, tokens.ErrInvalid) {
		t.Fatalf("unbound record before BindAll: %v, want ErrInvalid", err)
	}
	if n, err := s.BindAll(ctx); err != nil || n != 1 {
		t.Fatalf("BindAll = %d, %v; want 1 bound", n, err)
	}
	if _, err := s.Check(ctx, "qct_00112233445566778899_"+secret); err != nil {
		t.Errorf("bound record: %v", err)
	}
	if _, err := s.Check(ctx, "qct_99887766554433221100_"+secret); !errors.Is(err, tokens.ErrInvalid) {
		t.Errorf("record with a bad binding: %v, want ErrInvalid", err)
	}
	put("tok_aabbccddeeff00112233", "") // written after the marker: not bound by a second run
	if n, err := s.BindAll(ctx); err != nil || n != 0 {
		t.Errorf("second BindAll = %d, %v; want 0", n, err)
	}
}
