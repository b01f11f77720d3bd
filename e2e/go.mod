module github.com/rickmorty/rickmorty/e2e

go 1.26.8
