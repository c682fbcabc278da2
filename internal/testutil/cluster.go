package testutil

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartJSCluster starts n JetStream servers on 127.0.0.1 clustered over free
// loopback route ports, named name-0 … name-(n-1), each with its own
// t.TempDir() store; they are shut down when the test ends. It returns once
// the JetStream meta leader knows every peer: before that, placing an R3
// stream fails with "no suitable peers for placement".
//
// base, when not nil, returns node i's starting options (e.g. loaded from a
// configuration file); StartJSCluster then sets the name, client address, store,
// cluster and routes, and NoSigs. setup, when not nil, is applied to each
// server before it starts (e.g. to install a logger).
func StartJSCluster(t testing.TB, n int, name string, base func(i int) *server.Options, setup func(*server.Server)) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	srvs := make([]*server.Server, n)
	for i := range srvs {
		opts := &server.Options{JetStream: true, NoLog: true}
		if base != nil {
			opts = base(i)
		}
		opts.ServerName = fmt.Sprintf("%s-%d", name, i)
		opts.Host, opts.Port = "127.0.0.1", -1
		opts.StoreDir = t.TempDir()
		opts.NoSigs = true
		opts.Cluster = server.ClusterOpts{Name: name, Host: "127.0.0.1", Port: ports[i]}
		opts.Routes = routes
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		if setup != nil {
			setup(s)
		}
		s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("cluster node %d not ready", i)
		}
		srvs[i] = s
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	Eventually(t, 30*time.Second, "JetStream meta leader that knows every peer", func() bool {
		for _, s := range srvs {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == n {
				return true
			}
		}
		return false
	})
	return srvs
}

// ClusterURLs returns the comma-separated client URLs of srvs (a nats.Connect
// or nats.url value).
func ClusterURLs(srvs []*server.Server) string {
	u := make([]string, 0, len(srvs))
	for _, s := range srvs {
		u = append(u, s.ClientURL())
	}
	return strings.Join(u, ",")
}

// ClusterConn connects to every node of srvs (reconnecting for ever, quickly)
// and closes the connection when the test ends.
func ClusterConn(t testing.TB, srvs []*server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(ClusterURLs(srvs), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ShutdownStreamLeader shuts down the server of srvs that leads stream (a
// stream name, e.g. "KV_holds" for the holds bucket) and returns its name.
func ShutdownStreamLeader(t testing.TB, srvs []*server.Server, js jetstream.JetStream, stream string) string {
	t.Helper()
	var leader string
	Eventually(t, 15*time.Second, "leader of "+stream, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		leader = info.Cluster.Leader
		return true
	})
	for _, s := range srvs {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
			return leader
		}
	}
	t.Fatalf("leader %q of %s is not a cluster node", leader, stream)
	return ""
}
