package bench

import "testing"

// A NATS node serves the harness on this machine only.
func TestNATSNodeOptions(t *testing.T) {
	t.Parallel()
	n := NATSNode{Name: "n1", Listen: "127.0.0.1:4222", Cluster: "127.0.0.1:6222", Routes: []string{"127.0.0.1:6222", "127.0.0.1:6223"}, StoreDir: t.TempDir()}
	o, err := n.options()
	if err != nil {
		t.Fatal(err)
	}
	if o.ServerName != "n1" || o.Port != 4222 || !o.JetStream || o.Cluster.Port != 6222 || o.Cluster.Name != natsClusterName || len(o.Routes) != 2 || o.Routes[1].Host != "127.0.0.1:6223" {
		t.Errorf("options %+v", o)
	}
	for _, bad := range []NATSNode{
		{Name: "n1", Listen: "0.0.0.0:4222", Cluster: n.Cluster, Routes: n.Routes},
		{Name: "n1", Listen: n.Listen, Cluster: "10.0.0.1:6222", Routes: n.Routes},
		{Name: "n1", Listen: n.Listen, Cluster: n.Cluster, Routes: []string{"example.com:6222"}},
		{Name: "n1", Listen: "127.0.0.1", Cluster: n.Cluster, Routes: n.Routes},
	} {
		if _, err := bad.options(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
