// etcd at the version Kubernetes pins (go.mod requires go.etcd.io/etcd/server/v3
// at what k8s.io/kubernetes requires), built here because Debian's etcd is older
// than the apiserver expects.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
