module github.com/mycelium-mesh/mycelium/l1-link

go 1.26
