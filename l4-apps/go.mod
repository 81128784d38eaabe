module github.com/mycelium-mesh/mycelium/l4-apps

go 1.26

replace (
	github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
	github.com/mycelium-mesh/mycelium/l2-seq => ../l2-seq
	github.com/mycelium-mesh/mycelium/l3-route => ../l3-route
)
