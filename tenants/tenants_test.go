package tenants_test

import (
	"errors"
	"testing"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/tenants"
)

func TestStore(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.ConnectJetStream(t, srv)
	ctx := t.Context()
	s, err := tenants.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("empty bucket: %v %v", list, err)
	}
	if ok, err := s.Known(ctx, "maersk"); err != nil || ok {
		t.Fatalf("known before it exists: %v %v", ok, err)
	}
	for _, bad := range []tenants.Tenant{{ID: "", Name: "x"}, {ID: "Maersk", Name: "x"}, {ID: "a.b", Name: "x"}, {ID: "maersk"}} {
		var fe *fielderr.Error
		if _, err := s.Create(ctx, bad); !errors.As(err, &fe) {
			t.Errorf("create %+v: %v, want a field error", bad, err)
		}
	}
	if _, err := s.Create(ctx, tenants.Tenant{ID: "maersk", Name: "Maersk Line", ExternalID: "MAEU"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, tenants.Tenant{ID: "maersk", Name: "again"}); !errors.Is(err, tenants.ErrExists) {
		t.Errorf("create twice: %v, want ErrExists", err)
	}
	// The router's position shares the bucket under a key no tenant id can be: never listed.
	if _, err := s.KV().Put(ctx, "quaycast.router", []byte("42")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, tenants.Tenant{ID: "hlag", Name: "Hapag-Lloyd"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "hlag" || list[1].ID != "maersk" || list[1].ExternalID != "MAEU" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if ok, err := s.Known(ctx, "maersk"); err != nil || !ok {
		t.Errorf("known: %v %v", ok, err)
	}
	if err := s.Delete(ctx, "maersk"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "maersk"); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if ok, _ := s.Known(ctx, "maersk"); ok {
		t.Error("known after this gateway deleted it")
	}
	if err := s.Delete(ctx, "maersk"); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}
