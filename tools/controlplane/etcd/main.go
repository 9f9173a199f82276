// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 for padlock's local
// control plane (tools/controlplane/build.sh). It is the same entry point as upstream's
// main.go: etcdmain.Main with the process arguments.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
