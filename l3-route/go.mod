module github.com/mycelium-mesh/mycelium/l3-route

go 1.26

require (
	github.com/mycelium-mesh/mycelium/l1-link v0.0.0
	github.com/mycelium-mesh/mycelium/l2-seq v0.0.0
)

replace (
	github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
	github.com/mycelium-mesh/mycelium/l2-seq => ../l2-seq
)
