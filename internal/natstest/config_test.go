package natstest

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestClusterConfig: the three-node configuration docs/NATS.md shows is one
// nats-server reads as a JetStream cluster of three, each write synced.
func TestClusterConfig(t *testing.T) {
	for i := 1; i <= 3; i++ {
		path := fmt.Sprintf("../../docs/nats/n%d.conf", i)
		o, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o.ServerName != fmt.Sprintf("n%d", i) || !o.JetStream || !o.SyncAlways || o.Cluster.Name != "parley" || o.Cluster.Port != 6222 || len(o.Routes) != 3 || o.Port != 4222 {
			t.Errorf("%s: server %q, jetstream %v, sync always %v, cluster %q on %d, %d routes, clients on %d",
				path, o.ServerName, o.JetStream, o.SyncAlways, o.Cluster.Name, o.Cluster.Port, len(o.Routes), o.Port)
		}
	}
}
