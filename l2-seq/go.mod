module github.com/mycelium-mesh/mycelium/l2-seq

go 1.26

replace github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
